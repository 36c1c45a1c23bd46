// The omnimodal model: registered modality encoders + projectors + a decoder-only LLM
// (dense or MoE) with a text head, composed from config. The composition knows no
// modality by name: it builds whatever encoders the config lists through the registry,
// so adding a modality is one encoder file plus one registration line.
//
// For a packed batch (text ids with runs of placeholder tokens for media, from the
// multimodal collator) it
//   1. embeds the ids,
//   2. encodes each modality's media (all items of the batch in one call) and projects
//      them to the LLM width,
//   3. puts each item's rows at its placeholder positions: one row gather over
//      [text embeddings; media rows] whose backward is a deterministic scatter-add, so
//      gradients reach both the token embeddings and the encoders,
//   4. runs the LLM over the packed documents and takes the loss on target text tokens.
// A modality with no items in the batch still runs its encoder's dummy input with a zero
// contribution to the loss, so every rank runs the same graph (collectives never hang).

import { Tensor } from '../tensor/tensor.ts';
import { Module } from '../nn/module.ts';
import { DecoderLM, type DecoderConfig } from './decoder.ts';
import type { FeedForward } from '../nn/block.ts';
import type { Generator } from '../ops/creation.ts';
import { add, concat, crossEntropy, indexSelect, matmul, mulScalar, reshape, sum } from '../ops/index.ts';
import { createEncoder } from './registry.ts';
import { noGrad } from '../autograd/mode.ts';
import { Projector } from './encoders/projector.ts';
import { zeroContribution, type ModalityEncoder } from './encoders/types.ts';
import './encoders/index.ts'; // registers the built-in encoders

export interface OmniModelConfig {
  llm: DecoderConfig;
  /** Encoder config per modality name (the registry builds each). */
  encoders: Record<string, unknown>;
  /** Projector hidden width (default: the LLM width). */
  projectorHidden?: number;
  /** Parameter-name prefixes to freeze, e.g. ["llm", "encoders.image"]. */
  freeze?: string[];
}

/** One media item of a packed batch and the placeholder rows it fills. */
export interface MediaItem {
  modality: string;
  start: number;
  length: number;
  input: unknown;
}

export interface OmniBatch {
  ids: Int32Array;
  targets: Int32Array;
  positions: Int32Array;
  cuSeqlens: number[];
  media: readonly MediaItem[];
}

/** Children by name, for encoders and projectors. */
class ModuleDict<M extends Module> extends Module {
  readonly items = new Map<string, M>();
  set(name: string, m: M): void {
    this.child(name, m);
    this.items.set(name, m);
  }
}

export class OmniModel extends Module {
  readonly llm: DecoderLM;
  readonly encoders: ModuleDict<ModalityEncoder & Module>;
  readonly projectors: ModuleDict<Projector>;

  constructor(
    readonly config: OmniModelConfig,
    makeFeedForward?: (layer: number, gen: Generator) => FeedForward | null,
  ) {
    super();
    this.llm = this.child('llm', new DecoderLM(config.llm, makeFeedForward));
    this.encoders = this.child('encoders', new ModuleDict());
    this.projectors = this.child('projectors', new ModuleDict());
    let seed = config.llm.seed + 1000;
    for (const [name, encCfg] of Object.entries(config.encoders)) {
      const enc = createEncoder(name, encCfg);
      this.encoders.set(name, enc as ModalityEncoder & Module);
      this.projectors.set(
        name,
        new Projector({ inDim: enc.outDim, hidden: config.projectorHidden ?? config.llm.dim, outDim: config.llm.dim, seed: seed++ }),
      );
    }
    this.freeze(config.freeze ?? []);
  }

  /** Stop training parameters whose dotted names start with one of the prefixes. */
  freeze(prefixes: readonly string[]): void {
    const named = this.namedParameters();
    for (const pre of prefixes) {
      const hit = named.filter(([n]) => n === pre || n.startsWith(pre + '.'));
      if (!hit.length) throw new Error(`freeze: no parameter matches '${pre}' (top-level modules: llm, encoders.<modality>, projectors.<modality>)`);
      for (const [, p] of hit) p.requiresGrad = false;
    }
  }

  modalities(): string[] {
    return [...this.encoders.items.keys()];
  }

  encoder(modality: string): ModalityEncoder {
    const e = this.encoders.items.get(modality);
    if (!e) throw new Error(`the model has no '${modality}' encoder (configured: ${this.modalities().join(', ') || 'none'})`);
    return e;
  }

  /** Placeholder rows an input becomes (host-side; for the collator's budget). */
  tokenCount(modality: string, input: unknown): number {
    return this.encoder(modality).tokenCount(input);
  }

  /**
   * Input embeddings [T, dim] with media rows at their placeholders, and a scalar zero
   * tying the unused modalities' encoders into the graph (null when every modality had data).
   */
  embed(batch: OmniBatch): { h: Tensor; zero: Tensor | null } {
    const T = batch.ids.length;
    const ids = Tensor.fromArray(batch.ids, [T], 'i32');
    const parts: Tensor[] = [this.llm.embed_tokens.forward(ids)];
    const source = new Int32Array(T);
    for (let i = 0; i < T; i++) source[i] = i;
    let offset = T;
    let zero: Tensor | null = null;
    for (const [name, enc] of this.encoders.items) {
      const proj = this.projectors.items.get(name)!;
      const spans = batch.media.filter((m) => m.modality === name);
      if (spans.length === 0) {
        const z = zeroContribution(proj.forward(enc.dummy().embeddings));
        zero = zero ? add(zero, z) : z;
        continue;
      }
      const out = enc.encode(spans.map((s) => s.input));
      spans.forEach((s, k) => {
        const n = out.tokenCounts[k];
        if (n !== s.length) {
          throw new Error(`${name} item ${k} became ${n} rows but the batch reserved ${s.length} placeholders (tokenCount disagrees with encode)`);
        }
        for (let j = 0; j < n; j++) source[s.start + j] = offset + out.cuSeqlens[k] + j;
      });
      parts.push(proj.forward(out.embeddings));
      offset += out.embeddings.shape[0];
    }
    const all = parts.length === 1 ? parts[0] : concat(parts, 0);
    return { h: parts.length === 1 ? all : indexSelect(all, 0, Tensor.fromArray(source, [T], 'i32')), zero };
  }

  /** Per-token next-token losses [T] (0 where the target is -100) and the zero term. */
  tokenLosses(batch: OmniBatch): { perToken: Tensor; zero: Tensor | null } {
    const T = batch.ids.length;
    const { h, zero } = this.embed(batch);
    const layout = { positions: Tensor.fromArray(batch.positions, [T], 'i32'), cuSeqlens: batch.cuSeqlens };
    const logits = this.llm.logits(this.llm.hidden(h, layout));
    const targets = Tensor.fromArray(batch.targets, [T], 'i32');
    return { perToken: crossEntropy(logits, targets, { ignoreIndex: -100, reduction: 'none', inplaceBackward: true }), zero };
  }

  /**
   * Σ loss / normalizer over target tokens; with `groups` (a [G, T] 0/1 matrix, e.g. one
   * row per data source) also the per-group loss sums [G].
   */
  loss(batch: OmniBatch, normalizer: number, groups?: { masks: Float32Array; count: number }): { loss: Tensor; groupSums: Tensor | null } {
    const { perToken, zero } = this.tokenLosses(batch);
    let loss = mulScalar(sum(perToken), 1 / normalizer);
    if (zero) loss = add(loss, zero);
    let groupSums: Tensor | null = null;
    if (groups && groups.count > 0) {
      const T = batch.ids.length;
      // A metric only: no graph (the loss's backward never needs it).
      groupSums = noGrad(() => {
        const m = Tensor.fromArray(groups.masks, [groups.count, T]);
        return reshape(matmul(m, reshape(perToken, [T, 1])), [groups.count]);
      });
    }
    return { loss, groupSums };
  }
}
