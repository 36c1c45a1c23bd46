// Decoder-only language model over packed variable-length documents.

import { Tensor } from '../tensor/tensor.ts';
import { Module, ModuleList } from '../nn/module.ts';
import { Embedding } from '../nn/embedding.ts';
import { Linear } from '../nn/linear.ts';
import { makeNorm, type LayerNorm, type NormKind, type RMSNorm } from '../nn/norm.ts';
import { TransformerBlock, type FeedForward } from '../nn/block.ts';
import type { SequenceLayout } from '../nn/attention.ts';
import type { MlpKind } from '../nn/mlp.ts';
import { Generator } from '../ops/creation.ts';
import { crossEntropy, matmul, transpose } from '../ops/index.ts';
import { checkpoint } from '../autograd/checkpoint.ts';

export interface DecoderConfig {
  vocabSize: number;
  dim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  ffnDim: number;
  mlp: MlpKind;
  norm: NormKind;
  normEps: number;
  ropeTheta: number;
  tieEmbeddings: boolean;
  maxSeqLen: number;
  /** Std of the normal init of every weight matrix (GPT-2 / Llama style). */
  initStd: number;
  seed: number;
  /** Recompute each block during backward instead of keeping its activations. */
  activationCheckpointing?: boolean;
}

export const DEFAULT_DECODER: Omit<DecoderConfig, 'vocabSize' | 'dim' | 'layers' | 'heads' | 'kvHeads' | 'ffnDim'> = {
  mlp: 'swiglu',
  norm: 'rmsnorm',
  normEps: 1e-6,
  ropeTheta: 10000,
  tieEmbeddings: false,
  maxSeqLen: 2048,
  initStd: 0.02,
  seed: 0,
};

/** A packed batch: documents concatenated, with per-document positions and boundaries. */
export interface TokenBatch extends SequenceLayout {
  /** i32 [T] token ids. */
  ids: Tensor;
  /** i32 [T] next-token targets (-100 where no loss is taken). */
  targets: Tensor;
}

export class DecoderLM extends Module {
  readonly embed_tokens: Embedding;
  readonly layers: ModuleList<TransformerBlock>;
  readonly norm: RMSNorm | LayerNorm;
  readonly lm_head: Linear | null;

  constructor(
    readonly config: DecoderConfig,
    makeFeedForward?: (layer: number, gen: Generator) => FeedForward | null,
  ) {
    super();
    const c = config;
    if (c.heads % c.kvHeads !== 0) throw new Error(`model.heads (${c.heads}) must be a multiple of model.kvHeads (${c.kvHeads})`);
    if (c.dim % c.heads !== 0) throw new Error(`model.dim (${c.dim}) must be divisible by model.heads (${c.heads})`);
    if ((c.dim / c.heads) % 2 !== 0) throw new Error(`head dim ${c.dim / c.heads} must be even for rotary embeddings`);
    const gen = new Generator(c.seed);
    this.embed_tokens = this.child('embed_tokens', new Embedding(c.vocabSize, c.dim, { generator: gen, initStd: c.initStd }));
    this.layers = this.child('layers', new ModuleList<TransformerBlock>());
    for (let i = 0; i < c.layers; i++) {
      const ff = makeFeedForward?.(i, gen) ?? null;
      this.layers.push(
        new TransformerBlock({
          dim: c.dim,
          heads: c.heads,
          kvHeads: c.kvHeads,
          ropeTheta: c.ropeTheta,
          ffnDim: c.ffnDim,
          mlp: c.mlp,
          norm: c.norm,
          normEps: c.normEps,
          generator: gen,
          initStd: c.initStd,
          makeFeedForward: ff ? () => ff : undefined,
        }),
      );
    }
    this.norm = this.child('norm', makeNorm(c.norm, c.dim, c.normEps));
    this.lm_head = c.tieEmbeddings ? null : this.child('lm_head', new Linear(c.dim, c.vocabSize, { bias: false, generator: gen, initStd: c.initStd }));
  }

  /** Hidden states [T, dim] after the final norm, from input embeddings [T, dim]. */
  hidden(embeddings: Tensor, layout: SequenceLayout): Tensor {
    const T = embeddings.shape[0];
    if (layout.cuSeqlens[layout.cuSeqlens.length - 1] !== T) {
      throw new Error(`cu_seqlens ends at ${layout.cuSeqlens[layout.cuSeqlens.length - 1]} but the batch has ${T} tokens`);
    }
    for (let i = 1; i < layout.cuSeqlens.length; i++) {
      const len = layout.cuSeqlens[i] - layout.cuSeqlens[i - 1];
      if (len > this.config.maxSeqLen) {
        throw new Error(`document ${i - 1} has ${len} tokens, more than model.maxSeqLen (${this.config.maxSeqLen})`);
      }
    }
    let h = embeddings;
    for (const block of this.layers) {
      h = this.config.activationCheckpointing ? checkpoint((x) => block.forward(x, layout), h) : block.forward(h, layout);
    }
    return this.norm.forward(h);
  }

  logits(hidden: Tensor): Tensor {
    if (this.lm_head) return this.lm_head.forward(hidden);
    return matmul(hidden, transpose(this.embed_tokens.weight));
  }

  forward(batch: TokenBatch): Tensor {
    return this.logits(this.hidden(this.embed_tokens.forward(batch.ids), batch));
  }

  /** Mean next-token cross-entropy over targets ≠ -100 (or the sum divided by `normalizer`). */
  loss(batch: TokenBatch, opts: { normalizer?: number; zLoss?: number } = {}): Tensor {
    const logits = this.forward(batch);
    // The logits come from a matmul, whose backward does not read its output, so their
    // gradient may overwrite them: one vocabulary-sized buffer fewer at the peak.
    return crossEntropy(logits, batch.targets, { ignoreIndex: -100, zLoss: opts.zLoss, normalizer: opts.normalizer, inplaceBackward: true });
  }
}
