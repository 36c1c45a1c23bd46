import type { Tensor } from '../tensor/tensor.ts';
import { Module } from './module.ts';
import { Attention, type AttentionOptions, type KVCache, type SequenceLayout } from './attention.ts';
import { MLP, type MlpKind } from './mlp.ts';
import { makeNorm, type NormKind, type LayerNorm, type RMSNorm } from './norm.ts';
import { add } from '../ops/index.ts';
import type { Generator } from '../ops/creation.ts';

/** A feed-forward sublayer: anything mapping [T, dim] → [T, dim] (dense MLP, MoE…). */
export interface FeedForward extends Module {
  forward(x: Tensor): Tensor;
}

export interface BlockOptions extends AttentionOptions {
  ffnDim: number;
  mlp: MlpKind;
  norm: NormKind;
  normEps: number;
  generator?: Generator;
  /** Build a different feed-forward sublayer (e.g. MoE) instead of the dense MLP. */
  makeFeedForward?: () => FeedForward;
}

/** Pre-norm transformer block: h + attn(norm(h)), then h + ffn(norm(h)). */
export class TransformerBlock extends Module {
  readonly attn_norm: RMSNorm | LayerNorm;
  readonly attn: Attention;
  readonly mlp_norm: RMSNorm | LayerNorm;
  readonly mlp: FeedForward;

  constructor(o: BlockOptions) {
    super();
    this.attn_norm = this.child('attn_norm', makeNorm(o.norm, o.dim, o.normEps));
    this.attn = this.child('attn', new Attention(o));
    this.mlp_norm = this.child('mlp_norm', makeNorm(o.norm, o.dim, o.normEps));
    this.mlp = this.child('mlp', o.makeFeedForward ? o.makeFeedForward() : new MLP(o.dim, o.ffnDim, o.mlp, { generator: o.generator, initStd: o.initStd }));
  }

  forward(h: Tensor, layout: SequenceLayout): Tensor {
    const a = add(h, this.attn.forward(this.attn_norm.forward(h), layout));
    return add(a, this.mlp.forward(this.mlp_norm.forward(a)));
  }

  forwardCached(h: Tensor, positions: Tensor, cache: KVCache): Tensor {
    const a = add(h, this.attn.forwardCached(this.attn_norm.forward(h), positions, cache));
    return add(a, this.mlp.forward(this.mlp_norm.forward(a)));
  }
}
