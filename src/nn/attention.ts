import type { Tensor } from '../tensor/tensor.ts';
import { Module } from './module.ts';
import { Linear } from './linear.ts';
import { Generator } from '../ops/creation.ts';
import { flashAttention, reshape, rope } from '../ops/index.ts';

/** Where each token sits: per-document positions (restart at 0) and document boundaries. */
export interface SequenceLayout {
  /** i32 [T]: position of each token within its document. */
  positions: Tensor;
  /** Cumulative document lengths [0, l1, l1+l2, …, T]. */
  cuSeqlens: number[];
}

export interface AttentionOptions {
  dim: number;
  heads: number;
  kvHeads: number;
  headDim?: number;
  ropeTheta?: number;
  /** Causal (decoder) or bidirectional within each document (encoders). */
  causal?: boolean;
  /** Rotary embeddings on q and k (false for encoders with learned positions). */
  rope?: boolean;
  bias?: boolean;
  generator?: Generator;
  initStd?: number;
}

/** Multi-head attention with grouped-query heads, RoPE and packed variable-length documents. */
export class Attention extends Module {
  readonly q_proj: Linear;
  readonly k_proj: Linear;
  readonly v_proj: Linear;
  readonly o_proj: Linear;
  readonly headDim: number;

  constructor(readonly o: AttentionOptions) {
    super();
    if (o.heads % o.kvHeads !== 0) {
      throw new Error(`Attention: query heads (${o.heads}) must be a multiple of key/value heads (${o.kvHeads})`);
    }
    this.headDim = o.headDim ?? o.dim / o.heads;
    if (!Number.isInteger(this.headDim)) throw new Error(`Attention: dim ${o.dim} is not divisible by heads ${o.heads}`);
    const lin = (i: number, out: number) => new Linear(i, out, { bias: o.bias ?? false, generator: o.generator, initStd: o.initStd });
    this.q_proj = this.child('q_proj', lin(o.dim, o.heads * this.headDim));
    this.k_proj = this.child('k_proj', lin(o.dim, o.kvHeads * this.headDim));
    this.v_proj = this.child('v_proj', lin(o.dim, o.kvHeads * this.headDim));
    this.o_proj = this.child('o_proj', lin(o.heads * this.headDim, o.dim));
  }

  /** x: [T, dim] packed tokens. */
  forward(x: Tensor, layout: SequenceLayout): Tensor {
    const T = x.shape[0];
    let q = reshape(this.q_proj.forward(x), [T, this.o.heads, this.headDim]);
    let k = reshape(this.k_proj.forward(x), [T, this.o.kvHeads, this.headDim]);
    const v = reshape(this.v_proj.forward(x), [T, this.o.kvHeads, this.headDim]);
    if (this.o.rope !== false) {
      q = rope(q, layout.positions, { theta: this.o.ropeTheta ?? 10000 });
      k = rope(k, layout.positions, { theta: this.o.ropeTheta ?? 10000 });
    }
    const a = flashAttention(q, k, v, { causal: this.o.causal ?? true, cuSeqlens: layout.cuSeqlens });
    return this.o_proj.forward(reshape(a, [T, this.o.heads * this.headDim]));
  }
}
