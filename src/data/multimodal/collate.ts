// Multimodal collator and loader: manifest samples → token-budget packed batches with
// placeholder runs for media, like PackedLoader does for text. Platform-neutral.
//
// Each sample becomes one sequence:
//   [BOS?] seg_1 seg_2 … seg_k [EOS?]
// where a text segment contributes its tokenizer ids (special-token strings in the text
// are NOT recognised: "<image>" typed in a caption stays text), and a media segment of
// modality m contributes  <|m_start|> + N × <m> + <|m_end|>  with N = tokenCount(m, input)
// decided by the encoders. Text segments are concatenated as they are (no separator).
//
// Targets (next-token, aligned with ids): targets[i] = ids[i+1] when token i+1 is a loss
// token, else -100. Loss tokens are the tokens of loss-bearing text segments (ManifestSample.loss:
// 'targets' → segments with target: true; 'all' → every text segment; 'none' → none) and the
// EOS when the sample's last segment is loss-bearing. So placeholder positions (<m> runs and
// <|m_start|>) never carry a target; the <|m_end|> position carries one when a target text
// follows the media item directly (it predicts the first caption token). The last position
// of every sequence is -100: nothing crosses a sample boundary.
//
// Batching: samples (each source's repeated `repeat[source]` times, default once) are taken
// in a seeded per-epoch order and appended while the batch's
// token count (all modalities) stays within tokensPerBatch; the first sample that does
// not fit starts the next batch (samples are never split: their media spans must stay
// whole). Batches therefore hold ≤ tokensPerBatch tokens; the last batch of an epoch may
// be small. A sample longer than the budget (or whose media fail to load) is an error
// naming its file and line, or, with skipBad, skipped with a warning and counted.

import { IGNORE_INDEX } from '../packing.ts';
import { SPECIAL_IDS } from '../tokenizer/special.ts';
import { Sfc32, type RngState } from '../rng.ts';
import { resolveMediaPath, segmentModality, type ManifestSample, type MediaModality, type MediaSegment } from './manifest.ts';
import { placeholderTokens } from './modalities.ts';
import type { MediaInput, MediaLoader } from './media.ts';
import { sampleRng, type Augmenter } from './augment.ts';


export class SampleError extends Error {
  override name = 'SampleError';
  constructor(
    message: string,
    readonly file: string,
    readonly line: number,
    readonly sampleId: string,
  ) {
    super(`${file}:${line}: sample ${JSON.stringify(sampleId)}: ${message}`);
  }
}

export class MultimodalLoaderError extends Error {
  override name = 'MultimodalLoaderError';
}

/** Number of placeholder tokens a decoded media item becomes (decided by its encoder). */
export type TokenCountFn = (modality: MediaModality, input: MediaInput) => number;

/** The ids used for special tokens (default SPECIAL_IDS of webomni-trained tokenizers). */
export interface SpecialTokenIds {
  bos: number;
  eos: number;
  image: number;
  audio: number;
  imageStart: number;
  imageEnd: number;
  audioStart: number;
  audioEnd: number;
}

export interface MultimodalLoaderOptions {
  /** Text → ids (a webomni Tokenizer fits); tokenToId finds extra modalities' placeholder tokens. */
  tokenizer: { encode(text: string): number[]; tokenToId?(token: string): number | undefined };
  /** Decodes media (createMediaLoader / createNodeMediaLoader). */
  media: MediaLoader;
  /** Placeholder count per media item. */
  tokenCount: TokenCountFn;
  /** Token budget per batch, counting every modality's tokens. */
  tokensPerBatch: number;
  specialIds?: Partial<SpecialTokenIds>;
  /** Prepend BOS to every sample (default false). */
  bos?: boolean;
  /** Append EOS to every sample (default true). */
  eos?: boolean;
  /** Shuffle samples each epoch (default true). */
  shuffle?: boolean;
  seed?: number;
  /**
   * Perturbs decoded media (training only; createAugmenter). Draws come from a PRNG seeded
   * by (seed, epoch, position in the epoch), so resuming reproduces them exactly.
   */
  augment?: Augmenter;
  /** Describes `augment` in the state fingerprint (a resumed run must use the same). */
  augmentKey?: string;
  /**
   * Times each sample of a source appears per epoch (integer ≥ 1; default 1): mixes sources
   * in other proportions than the manifest's, e.g. { speech: 3 } with augmentation on.
   */
  repeat?: Readonly<Record<string, number>>;
  /** Skip (and count) samples that exceed the budget or fail to load, instead of throwing. */
  skipBad?: boolean;
  /** Receives the skip warnings (default console.warn). */
  onWarning?: (message: string) => void;
}

/** A media item of a batch and the rows its encoder output goes to. */
export interface MediaSpan {
  modality: MediaModality;
  /** First placeholder row (index into ids) and number of placeholder rows. */
  start: number;
  length: number;
  /** Sequence (sample) index within the batch. */
  seq: number;
  input: MediaInput;
  /** Path as written in the manifest and resolved against its directory. */
  path: string;
  resolvedPath: string;
  sampleId: string;
}

export interface MultimodalBatch {
  ids: Int32Array;
  /** Next-token targets, -100 where no loss (see the file header). */
  targets: Int32Array;
  /** Position within the sample (restarts at 0 for each sample). */
  positions: Int32Array;
  /** Sequence boundaries [0, …, numTokens]; one sequence per sample. */
  cuSeqlens: number[];
  maxSeqlen: number;
  numTokens: number;
  /** Targets that are not -100. */
  numTargets: number;
  /** Media items in order of their spans. */
  media: MediaSpan[];
  images: MediaSpan[];
  audio: MediaSpan[];
  /** Per sequence: the sample. */
  samples: { id: string; source: string; file: string; line: number; meta?: Record<string, unknown> }[];
  /** Per sequence: index into sourceNames. */
  seqSources: Int32Array;
  /** Every source of the dataset, sorted (the same list for every batch). */
  sourceNames: readonly string[];
  /** Loss (non -100 target) count per source; every source present, 0 when absent. */
  lossTokensBySource: Record<string, number>;
  /** Token count per modality: text (incl. BOS/EOS), image and audio (incl. start/end markers). */
  tokensByModality: { text: number; image: number; audio: number; [modality: string]: number };
  epoch: number;
  index: number;
  lastInEpoch: boolean;
  /** Samples skipped so far (skipBad). */
  skipped: number;
}

export interface MultimodalLoaderState {
  version: 1;
  kind: 'multimodal';
  epoch: number;
  /** Next sample position in the epoch's order. */
  cursor: number;
  /** PRNG state at the start of `epoch`. */
  rngState: RngState;
  batches: number;
  skipped: number;
  fingerprint: string;
}

/** One sample's token sequence (MultimodalLoader.build). */
export interface BuiltSample {
  ids: number[];
  /** 1 where the token is a loss token. */
  loss: Uint8Array;
  media: { seg: MediaSegment; resolvedPath: string; input: MediaInput; start: number; length: number }[];
  text: number;
  image: number;
  audio: number;
  /** Tokens of registered extra modalities, by name. */
  extra?: Map<string, number>;
}

function fnv1a(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export class MultimodalLoader {
  readonly samples: readonly ManifestSample[];
  readonly sourceNames: readonly string[];
  readonly tokensPerBatch: number;
  private readonly opts: MultimodalLoaderOptions;
  private readonly ids: SpecialTokenIds;
  private readonly sourceIndex: Map<string, number>;
  private readonly fingerprint: string;
  private rng: Sfc32;
  private epochRng: RngState;
  private order: Int32Array;
  /** Sample indices of one epoch before shuffling (sources repeated per `repeat`). */
  private readonly base: number[];
  private epoch = 0;
  private cursor = 0;
  private batches = 0;
  private skipped = 0;
  private pending: { epoch: number; cursor: number; built: BuiltSample } | null = null;
  private busy = false;

  constructor(samples: readonly ManifestSample[], opts: MultimodalLoaderOptions) {
    const T = opts.tokensPerBatch;
    if (!Number.isInteger(T) || T < 1) throw new MultimodalLoaderError(`tokensPerBatch must be a positive integer, got ${T}`);
    if (samples.length === 0) throw new MultimodalLoaderError('no samples');
    if (typeof opts.tokenCount !== 'function') throw new MultimodalLoaderError('tokenCount must be a function (modality, input) => number');
    this.samples = samples;
    this.opts = opts;
    this.tokensPerBatch = T;
    this.ids = { ...SPECIAL_IDS, ...opts.specialIds };
    for (const [k, v] of Object.entries(this.ids))
      if (!Number.isInteger(v) || v < 0) throw new MultimodalLoaderError(`specialIds.${k} must be a non-negative integer, got ${v}`);
    this.sourceNames = [...new Set(samples.map((s) => s.source))].sort();
    const repeat = opts.repeat ?? {};
    for (const [src, r] of Object.entries(repeat)) {
      if (!this.sourceNames.includes(src))
        throw new MultimodalLoaderError(`repeat: unknown source '${src}' (the samples' sources are ${this.sourceNames.join(', ')})`);
      if (!Number.isInteger(r) || r < 1 || r > 1000) throw new MultimodalLoaderError(`repeat.${src} must be an integer from 1 to 1000, got ${r}`);
    }
    this.base = [];
    samples.forEach((s, i) => {
      for (let r = repeat[s.source] ?? 1; r > 0; r--) this.base.push(i);
    });
    this.sourceIndex = new Map(this.sourceNames.map((s, i) => [s, i]));
    let h = 0x811c9dc5;
    for (const s of samples) h = fnv1a(`${s.id}\u0000${s.source}\u0001`, h);
    this.fingerprint = [
      `n=${samples.length}`,
      `ids=${h.toString(16)}`,
      `T=${T}`,
      `shuffle=${opts.shuffle ?? true}`,
      `seed=${opts.seed ?? 0}`,
      `bos=${opts.bos ?? false}`,
      `eos=${opts.eos ?? true}`,
      `special=${Object.values(this.ids).join('/')}`,
      `skipBad=${opts.skipBad ?? false}`,
      ...(Object.keys(repeat).length ? [`repeat=${JSON.stringify(Object.entries(repeat).sort())}`] : []),
      ...(opts.augment ? [`augment=${opts.augmentKey ?? 'custom'}`] : []),
    ].join(',');
    this.rng = Sfc32.fromSeed(opts.seed ?? 0);
    this.epochRng = this.rng.state();
    this.order = this.makeOrder();
  }

  private makeOrder(): Int32Array {
    const o = Int32Array.from(this.base);
    if (this.opts.shuffle ?? true) this.rng.shuffle(o);
    return o;
  }

  private nextEpoch(): void {
    this.epoch++;
    this.cursor = 0;
    this.epochRng = this.rng.state();
    this.order = this.makeOrder();
  }

  /** Token sequence of one sample (decodes its media; `at` = its (epoch, position) for augmentation). */
  async build(s: ManifestSample, at?: { epoch: number; position: number }): Promise<BuiltSample> {
    const augment = this.opts.augment;
    const rng = augment ? sampleRng(this.opts.seed ?? 0, at?.epoch ?? 0, at?.position ?? 0) : null;
    const ids: number[] = [];
    const loss: number[] = [];
    const media: BuiltSample['media'] = [];
    const sp = this.ids;
    let text = 0;
    let image = 0;
    let audio = 0;
    const extra = new Map<string, number>();
    const push = (id: number, l: boolean) => {
      ids.push(id);
      loss.push(l ? 1 : 0);
    };
    if (this.opts.bos) {
      push(sp.bos, false);
      text++;
    }
    let lastLoss = false;
    for (let j = 0; j < s.segments.length; j++) {
      const seg = s.segments[j];
      if (seg.type === 'text') {
        const l = s.loss === 'all' || (s.loss === 'targets' && seg.target);
        const t = this.opts.tokenizer.encode(seg.text);
        for (const id of t) push(id, l);
        text += t.length;
        lastLoss = l;
        continue;
      }
      const resolvedPath = resolveMediaPath(s.baseDir, seg.path);
      let input: MediaInput;
      try {
        input = await this.opts.media.load(seg, resolvedPath);
        if (augment) input = augment(segmentModality(seg), input, rng!);
      } catch (e) {
        throw new SampleError(`segments[${j}] (${segmentModality(seg)} ${seg.path}): ${(e as Error).message}`, s.file, s.line, s.id);
      }
      const modality = segmentModality(seg);
      const n = this.opts.tokenCount(modality, input);
      if (!Number.isInteger(n) || n < 1)
        throw new SampleError(`segments[${j}] (${modality} ${seg.path}): tokenCount returned ${n}, expected a positive integer`, s.file, s.line, s.id);
      const [open, ph, close] =
        seg.type === 'image'
          ? [sp.imageStart, sp.image, sp.imageEnd]
          : seg.type === 'audio'
            ? [sp.audioStart, sp.audio, sp.audioEnd]
            : this.extraPlaceholders(modality, s, j);
      push(open, false);
      const start = ids.length;
      for (let k = 0; k < n; k++) push(ph, false);
      push(close, false);
      media.push({ seg, resolvedPath, input, start, length: n });
      if (seg.type === 'image') image += n + 2;
      else if (seg.type === 'audio') audio += n + 2;
      else extra.set(modality, (extra.get(modality) ?? 0) + n + 2);
      lastLoss = false;
    }
    if (this.opts.eos ?? true) {
      push(sp.eos, lastLoss);
      text++;
    }
    return { ids, loss: Uint8Array.from(loss), media, text, image, audio, extra };
  }

  /** The next batch (the stream is endless: epochs follow each other). Not re-entrant. */
  /** Placeholder ids of a registered extra modality, from the tokenizer. */
  private extraPlaceholders(modality: string, s: ManifestSample, j: number): [number, number, number] {
    const names = placeholderTokens(modality);
    const ids = [names.start, names.item, names.end].map((t) => this.opts.tokenizer.tokenToId?.(t));
    if (ids.some((id) => id === undefined)) {
      throw new SampleError(
        `segments[${j}] (${modality}): the tokenizer has no ${names.start} / ${names.item} / ${names.end} tokens for this modality`,
        s.file,
        s.line,
        s.id,
      );
    }
    return ids as [number, number, number];
  }

  async next(): Promise<MultimodalBatch> {
    if (this.busy) throw new MultimodalLoaderError('next() called again before the previous call finished');
    this.busy = true;
    try {
      return await this.nextInner();
    } finally {
      this.busy = false;
    }
  }

  private warn(msg: string): void {
    (this.opts.onWarning ?? ((m: string) => console.warn(m)))(msg);
  }

  private async nextInner(): Promise<MultimodalBatch> {
    const T = this.tokensPerBatch;
    const parts: { s: ManifestSample; b: BuiltSample }[] = [];
    let used = 0;
    let lastInEpoch = false;
    let epoch = this.epoch;
    let skippedInCall = 0;
    for (;;) {
      if (this.cursor === this.order.length) {
        // The epoch's last samples were skipped (skipBad).
        this.nextEpoch();
        if (parts.length > 0) {
          lastInEpoch = true;
          break;
        }
        epoch = this.epoch; // nothing taken yet: the batch starts in the new epoch
        continue;
      }
      // 2n consecutive skips cover a whole epoch: every sample is bad.
      if (parts.length === 0 && skippedInCall >= 2 * this.order.length) throw new MultimodalLoaderError('every sample was skipped (skipBad): nothing to batch');
      const s = this.samples[this.order[this.cursor]];
      let b: BuiltSample;
      if (this.pending && this.pending.epoch === this.epoch && this.pending.cursor === this.cursor) b = this.pending.built;
      else {
        try {
          b = await this.build(s, { epoch: this.epoch, position: this.cursor });
          if (b.ids.length > T)
            throw new SampleError(`${b.ids.length} tokens (text ${b.text}, image ${b.image}, audio ${b.audio}) exceed tokensPerBatch ${T}`, s.file, s.line, s.id);
        } catch (e) {
          if (!(e instanceof SampleError) || !this.opts.skipBad) throw e;
          this.skipped++;
          skippedInCall++;
          this.warn(`skipping bad sample (${this.skipped} so far): ${e.message}`);
          this.cursor++;
          continue;
        }
      }
      this.pending = null;
      if (used + b.ids.length > T) {
        this.pending = { epoch: this.epoch, cursor: this.cursor, built: b };
        break;
      }
      parts.push({ s, b });
      used += b.ids.length;
      this.cursor++;
      if (this.cursor === this.order.length) {
        lastInEpoch = true;
        this.nextEpoch();
        break;
      }
    }
    return this.assemble(parts, used, epoch, lastInEpoch);
  }

  private assemble(parts: { s: ManifestSample; b: BuiltSample }[], n: number, epoch: number, lastInEpoch: boolean): MultimodalBatch {
    const ids = new Int32Array(n);
    const targets = new Int32Array(n).fill(IGNORE_INDEX);
    const positions = new Int32Array(n);
    const cu = [0];
    const media: MediaSpan[] = [];
    const seqSources = new Int32Array(parts.length);
    const lossTokensBySource: Record<string, number> = {};
    for (const name of this.sourceNames) lossTokensBySource[name] = 0;
    const tokensByModality: MultimodalBatch['tokensByModality'] = { text: 0, image: 0, audio: 0 };
    let maxSeqlen = 0;
    let numTargets = 0;
    let off = 0;
    parts.forEach(({ s, b }, q) => {
      const L = b.ids.length;
      for (let i = 0; i < L; i++) {
        ids[off + i] = b.ids[i];
        positions[off + i] = i;
        if (i + 1 < L && b.loss[i + 1]) {
          targets[off + i] = b.ids[i + 1];
          numTargets++;
          lossTokensBySource[s.source]++;
        }
      }
      for (const m of b.media)
        media.push({
          modality: segmentModality(m.seg),
          start: off + m.start,
          length: m.length,
          seq: q,
          input: m.input,
          path: m.seg.path,
          resolvedPath: m.resolvedPath,
          sampleId: s.id,
        });
      seqSources[q] = this.sourceIndex.get(s.source)!;
      tokensByModality.text += b.text;
      tokensByModality.image += b.image;
      tokensByModality.audio += b.audio;
      for (const [m, c] of b.extra ?? []) tokensByModality[m] = (tokensByModality[m] ?? 0) + c;
      off += L;
      cu.push(off);
      if (L > maxSeqlen) maxSeqlen = L;
    });
    return {
      ids,
      targets,
      positions,
      cuSeqlens: cu,
      maxSeqlen,
      numTokens: n,
      numTargets,
      media,
      images: media.filter((m) => m.modality === 'image'),
      audio: media.filter((m) => m.modality === 'audio'),
      samples: parts.map(({ s }) => (s.meta ? { id: s.id, source: s.source, file: s.file, line: s.line, meta: s.meta } : { id: s.id, source: s.source, file: s.file, line: s.line })),
      seqSources,
      sourceNames: this.sourceNames,
      lossTokensBySource,
      tokensByModality,
      epoch,
      index: this.batches++,
      lastInEpoch,
      skipped: this.skipped,
    };
  }

  /** The remaining batches of the current epoch (through the one with lastInEpoch). */
  async *epochBatches(): AsyncGenerator<MultimodalBatch> {
    for (;;) {
      const b = await this.next();
      yield b;
      if (b.lastInEpoch) return;
    }
  }

  state(): MultimodalLoaderState {
    return {
      version: 1,
      kind: 'multimodal',
      epoch: this.epoch,
      cursor: this.cursor,
      rngState: [...this.epochRng] as RngState,
      batches: this.batches,
      skipped: this.skipped,
      fingerprint: this.fingerprint,
    };
  }

  restore(state: MultimodalLoaderState): void {
    const s = state as Partial<MultimodalLoaderState> | null;
    if (s === null || typeof s !== 'object') throw new MultimodalLoaderError('restore: state must be an object');
    if (s.version !== 1 || s.kind !== 'multimodal') throw new MultimodalLoaderError(`restore: not a multimodal loader state (version ${JSON.stringify(s.version)}, kind ${JSON.stringify(s.kind)})`);
    if (s.fingerprint !== this.fingerprint)
      throw new MultimodalLoaderError(`restore: state belongs to other samples or options (${s.fingerprint} vs ${this.fingerprint})`);
    for (const k of ['epoch', 'cursor', 'batches', 'skipped'] as const)
      if (!Number.isInteger(s[k]) || (s[k] as number) < 0) throw new MultimodalLoaderError(`restore: ${k} must be a non-negative integer`);
    if (!Array.isArray(s.rngState) || s.rngState.length !== 4 || !s.rngState.every((x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32))
      throw new MultimodalLoaderError('restore: rngState must be four uint32 numbers');
    if (s.cursor! >= this.base.length) throw new MultimodalLoaderError(`restore: cursor ${s.cursor} out of range (${this.base.length} samples per epoch)`);
    this.rng = new Sfc32(s.rngState as RngState);
    this.epochRng = this.rng.state();
    this.order = this.makeOrder();
    this.epoch = s.epoch!;
    this.cursor = s.cursor!;
    this.batches = s.batches!;
    this.skipped = s.skipped!;
    this.pending = null;
  }
}

/** Per-token index into batch.sourceNames (expands seqSources over cuSeqlens). */
export function tokenSources(batch: Pick<MultimodalBatch, 'cuSeqlens' | 'seqSources'>): Int32Array {
  const n = batch.cuSeqlens[batch.cuSeqlens.length - 1];
  const out = new Int32Array(n);
  for (let q = 0; q + 1 < batch.cuSeqlens.length; q++) out.fill(batch.seqSources[q], batch.cuSeqlens[q], batch.cuSeqlens[q + 1]);
  return out;
}
