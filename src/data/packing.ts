// Token-budget packing of tokenized documents into varlen batches (cu_seqlens), with a
// seeded per-epoch shuffle and JSON-serialisable, exactly restorable loader state.
//
// Each document becomes [BOS?] tokens EOS. A document longer than maxSeqLen is cut into
// chunks of at most maxSeqLen tokens ("segments"); each segment is its own sequence for
// attention. Every epoch shuffles the segments (seeded) and concatenates them into a
// stream that is cut into batches of exactly tokensPerBatch tokens, so nothing is padded:
// a segment that does not fit in the rest of a batch is continued at the start of the
// next batch (as a new sequence). Hence:
//   - positions restart at 0 at every sequence start (positions[i] = i - cuSeqlens[k]);
//   - targets[i] is the next token of the same document, and -100 at each document's
//     last position (its EOS), so no loss crosses a document boundary. At a cut inside a
//     document (maxSeqLen chunk or batch edge) the target is still the document's next
//     token (chunkEndTarget: 'next', default), or -100 with chunkEndTarget: 'ignore';
//   - tail: 'emit' (default) emits the last, partial batch of an epoch; 'drop' discards
//     it; 'carry' continues the batch into the next epoch (every batch full).

import type { TokenizedCorpus } from './corpus.ts';
import { Sfc32, type RngState } from './rng.ts';

export const IGNORE_INDEX = -100;

export interface PackOptions {
  /** Tokens per batch (the budget T). */
  tokensPerBatch: number;
  /** Longest sequence (segment) length; default tokensPerBatch. */
  maxSeqLen?: number;
  /** Appended after every document. */
  eosId: number;
  /** Prepended to every document when given. */
  bosId?: number;
  /** Split documents longer than maxSeqLen (default true); false makes them an error. */
  splitLongDocuments?: boolean;
  /** Target at the last position of a cut inside a document: 'next' (default) or 'ignore' (-100). */
  chunkEndTarget?: 'next' | 'ignore';
  /** Shuffle segments each epoch (default true). */
  shuffle?: boolean;
  /** Seed of the shuffle (default 0). */
  seed?: number;
  /** What to do with the last partial batch of an epoch (default 'emit'). */
  tail?: 'emit' | 'drop' | 'carry';
}

export interface PackedBatch {
  /** Input ids [T]. */
  ids: Int32Array;
  /** Next-token targets [T]; -100 where there is none in the same document. */
  targets: Int32Array;
  /** Position of each token within its sequence [T]. */
  positions: Int32Array;
  /** Sequence boundaries [0, ..., T]. */
  cuSeqlens: number[];
  /** Longest sequence in the batch. */
  maxSeqlen: number;
  /** Source document (corpus index) of each sequence [cuSeqlens.length - 1]. */
  docs: Int32Array;
  /** Position of each sequence's first token in its document's [BOS?] tokens EOS sequence. */
  docOffsets: Float64Array;
  /** Number of targets that are not -100. */
  numTargets: number;
  /** Epoch in which the batch starts. */
  epoch: number;
  /** Index of this batch since the loader's start (0-based). */
  index: number;
  /** Whether this batch ends its epoch. */
  lastInEpoch: boolean;
}

export interface LoaderState {
  version: 1;
  epoch: number;
  /** Position in the epoch's segment order. */
  cursor: number;
  /** Tokens of segment order[cursor] already emitted. */
  offset: number;
  /** PRNG state at the start of `epoch` (regenerates that epoch's order). */
  rngState: RngState;
  /** Batches emitted so far. */
  batches: number;
  /** Corpus and options the state belongs to; restore() refuses a mismatch. */
  fingerprint: string;
}

export class PackingError extends Error {
  override name = 'PackingError';
}

export class PackedLoader {
  readonly opts: Required<Omit<PackOptions, 'bosId'>> & { bosId: number | undefined };
  private readonly corpus: TokenizedCorpus;
  /** Segment table: document, start within the virtual document, length, virtual doc length. */
  private readonly segDoc: Int32Array;
  private readonly segStart: Float64Array;
  private readonly segLen: Int32Array;
  private readonly docLen: Float64Array;
  /** Total tokens per epoch (documents + BOS/EOS). */
  readonly tokensPerEpoch: number;
  readonly numSegments: number;
  private readonly fingerprint: string;
  private rng: Sfc32;
  private epochRng: RngState;
  private order: Int32Array;
  private epoch = 0;
  private cursor = 0;
  private offset = 0;
  private batches = 0;

  constructor(corpus: TokenizedCorpus, opts: PackOptions) {
    const T = opts.tokensPerBatch;
    if (!Number.isInteger(T) || T < 1) throw new PackingError(`tokensPerBatch must be a positive integer, got ${T}`);
    const maxSeqLen = opts.maxSeqLen ?? T;
    if (!Number.isInteger(maxSeqLen) || maxSeqLen < 2) throw new PackingError(`maxSeqLen must be an integer ≥ 2, got ${maxSeqLen}`);
    if (!Number.isInteger(opts.eosId) || opts.eosId < 0) throw new PackingError(`eosId must be a non-negative integer, got ${opts.eosId}`);
    if (opts.bosId !== undefined && (!Number.isInteger(opts.bosId) || opts.bosId < 0))
      throw new PackingError(`bosId must be a non-negative integer, got ${opts.bosId}`);
    const tail = opts.tail ?? 'emit';
    if (!['emit', 'drop', 'carry'].includes(tail)) throw new PackingError(`tail must be 'emit', 'drop' or 'carry', got ${JSON.stringify(tail)}`);
    const cet = opts.chunkEndTarget ?? 'next';
    if (cet !== 'next' && cet !== 'ignore') throw new PackingError(`chunkEndTarget must be 'next' or 'ignore', got ${JSON.stringify(cet)}`);
    this.opts = {
      tokensPerBatch: T,
      maxSeqLen,
      eosId: opts.eosId,
      bosId: opts.bosId,
      splitLongDocuments: opts.splitLongDocuments ?? true,
      chunkEndTarget: cet,
      shuffle: opts.shuffle ?? true,
      seed: opts.seed ?? 0,
      tail,
    };
    this.corpus = corpus;
    const nd = corpus.docIds.length;
    if (corpus.offsets.length !== nd + 1) throw new PackingError(`corpus: offsets has ${corpus.offsets.length} entries for ${nd} documents`);
    const extra = 1 + (opts.bosId !== undefined ? 1 : 0);
    const sd: number[] = [];
    const ss: number[] = [];
    const sl: number[] = [];
    this.docLen = new Float64Array(nd);
    let total = 0;
    for (let d = 0; d < nd; d++) {
      const n = corpus.offsets[d + 1] - corpus.offsets[d];
      if (n === 0) continue; // empty documents contribute nothing
      const L = n + extra;
      this.docLen[d] = L;
      if (L > maxSeqLen && !this.opts.splitLongDocuments)
        throw new PackingError(
          `document ${JSON.stringify(corpus.docIds[d])} has ${L} tokens (with BOS/EOS), more than maxSeqLen ${maxSeqLen}, and splitLongDocuments is off`,
        );
      for (let s = 0; s < L; s += maxSeqLen) {
        sd.push(d);
        ss.push(s);
        sl.push(Math.min(maxSeqLen, L - s));
      }
      total += L;
    }
    if (sd.length === 0) throw new PackingError('corpus has no non-empty documents');
    this.segDoc = Int32Array.from(sd);
    this.segStart = Float64Array.from(ss);
    this.segLen = Int32Array.from(sl);
    this.numSegments = sd.length;
    this.tokensPerEpoch = total;
    this.fingerprint = [
      `docs=${nd}`,
      `tokens=${corpus.tokens.length}`,
      `segs=${this.numSegments}`,
      `T=${T}`,
      `max=${maxSeqLen}`,
      `eos=${opts.eosId}`,
      `bos=${opts.bosId ?? '-'}`,
      `shuffle=${this.opts.shuffle}`,
      `seed=${this.opts.seed}`,
      `tail=${tail}`,
      `cet=${cet}`,
    ].join(',');
    this.rng = Sfc32.fromSeed(this.opts.seed);
    this.epochRng = this.rng.state();
    this.order = this.makeOrder();
  }

  /** Segment order of the current epoch (draws from the rng). */
  private makeOrder(): Int32Array {
    const o = new Int32Array(this.numSegments);
    for (let i = 0; i < o.length; i++) o[i] = i;
    if (this.opts.shuffle) this.rng.shuffle(o);
    return o;
  }

  private nextEpoch(): void {
    this.epoch++;
    this.cursor = 0;
    this.offset = 0;
    this.epochRng = this.rng.state();
    this.order = this.makeOrder();
  }

  /** Token at position p of document d's virtual sequence [BOS?] tokens EOS. */
  private token(d: number, p: number): number {
    const L = this.docLen[d];
    if (p === L - 1) return this.opts.eosId;
    if (this.opts.bosId !== undefined) {
      if (p === 0) return this.opts.bosId;
      p--;
    }
    return this.corpus.tokens[this.corpus.offsets[d] + p];
  }

  /** Batches per epoch (exact for 'emit' and 'drop'; for 'carry' the fractional count). */
  get batchesPerEpoch(): number {
    const T = this.opts.tokensPerBatch;
    const n = this.tokensPerEpoch / T;
    return this.opts.tail === 'emit' ? Math.ceil(n) : this.opts.tail === 'drop' ? Math.floor(n) : n;
  }

  /** The next batch. The stream is endless: epochs follow each other. */
  next(): PackedBatch {
    const T = this.opts.tokensPerBatch;
    for (;;) {
      const ids = new Int32Array(T);
      const targets = new Int32Array(T);
      const positions = new Int32Array(T);
      const cu = [0];
      const docs: number[] = [];
      const docOffsets: number[] = [];
      const epoch = this.epoch;
      let filled = 0;
      let maxSeqlen = 0;
      let numTargets = 0;
      let lastInEpoch = false;
      const ignoreCut = this.opts.chunkEndTarget === 'ignore';
      while (filled < T) {
        const seg = this.order[this.cursor];
        const d = this.segDoc[seg];
        const start = this.segStart[seg];
        const len = this.segLen[seg];
        const L = this.docLen[d];
        const take = Math.min(len - this.offset, T - filled);
        for (let j = 0; j < take; j++) {
          const p = start + this.offset + j; // position in the virtual document
          const i = filled + j;
          ids[i] = this.token(d, p);
          positions[i] = j;
          let t = IGNORE_INDEX;
          if (p + 1 < L) {
            const segEnd = this.offset + j + 1 === len; // last token of a maxSeqLen chunk
            const pieceEnd = j + 1 === take; // cut by the batch edge
            if (!(ignoreCut && (segEnd || pieceEnd))) t = this.token(d, p + 1);
          }
          targets[i] = t;
          if (t !== IGNORE_INDEX) numTargets++;
        }
        filled += take;
        cu.push(filled);
        docs.push(d);
        docOffsets.push(start + this.offset);
        if (take > maxSeqlen) maxSeqlen = take;
        this.offset += take;
        if (this.offset === len) {
          this.offset = 0;
          this.cursor++;
          if (this.cursor === this.numSegments) {
            lastInEpoch = true;
            this.nextEpoch();
            if (this.opts.tail !== 'carry') break;
          }
        }
      }
      if (filled < T && this.opts.tail === 'drop') continue; // discard the partial tail
      const n = filled;
      return {
        ids: n === T ? ids : ids.slice(0, n),
        targets: n === T ? targets : targets.slice(0, n),
        positions: n === T ? positions : positions.slice(0, n),
        cuSeqlens: cu,
        maxSeqlen,
        docs: Int32Array.from(docs),
        docOffsets: Float64Array.from(docOffsets),
        numTargets,
        epoch,
        index: this.batches++,
        lastInEpoch,
      };
    }
  }

  /** The remaining batches of the current epoch (through the one with lastInEpoch). */
  *epochBatches(): Generator<PackedBatch> {
    for (;;) {
      const b = this.next();
      yield b;
      if (b.lastInEpoch) return;
    }
  }

  /** Serialisable state; restore() on a loader built the same way continues at the next batch. */
  state(): LoaderState {
    return {
      version: 1,
      epoch: this.epoch,
      cursor: this.cursor,
      offset: this.offset,
      rngState: [...this.epochRng] as RngState,
      batches: this.batches,
      fingerprint: this.fingerprint,
    };
  }

  restore(state: LoaderState): void {
    const s = state as Partial<LoaderState> | null;
    if (s === null || typeof s !== 'object') throw new PackingError('restore: state must be an object');
    if (s.version !== 1) throw new PackingError(`restore: unsupported state version ${JSON.stringify(s.version)}`);
    if (s.fingerprint !== this.fingerprint)
      throw new PackingError(`restore: state belongs to another corpus or options (${s.fingerprint} vs ${this.fingerprint})`);
    for (const k of ['epoch', 'cursor', 'offset', 'batches'] as const)
      if (!Number.isInteger(s[k]) || (s[k] as number) < 0) throw new PackingError(`restore: ${k} must be a non-negative integer`);
    if (!Array.isArray(s.rngState) || s.rngState.length !== 4 || !s.rngState.every((x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32))
      throw new PackingError('restore: rngState must be four uint32 numbers');
    if (s.cursor! >= this.numSegments) throw new PackingError(`restore: cursor ${s.cursor} out of range (${this.numSegments} segments)`);
    this.rng = new Sfc32(s.rngState as RngState);
    this.epochRng = this.rng.state();
    this.order = this.makeOrder();
    if (s.offset! >= this.segLen[this.order[s.cursor!]]) throw new PackingError(`restore: offset ${s.offset} out of range for its segment`);
    this.epoch = s.epoch!;
    this.cursor = s.cursor!;
    this.offset = s.offset!;
    this.batches = s.batches!;
  }
}
