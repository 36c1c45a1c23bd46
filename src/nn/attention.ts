import type { Tensor } from '../tensor/tensor.ts';
import { Module } from './module.ts';
import { Linear } from './linear.ts';
import { Generator } from '../ops/creation.ts';
import { flashAttention, matmul, mulScalar, narrow, permute, reshape, rope, softmax } from '../ops/index.ts';
import { contiguousK } from '../ops/kernels.ts';
import { zeros } from '../ops/creation.ts';
import { keep } from '../tensor/scope.ts';

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

  /** An empty key/value cache for incremental decoding of one sequence of up to `capacity` tokens. */
  newCache(capacity: number): KVCache {
    return {
      k: keep(zeros([capacity, this.o.kvHeads, this.headDim])),
      v: keep(zeros([capacity, this.o.kvHeads, this.headDim])),
      length: 0,
    };
  }

  /**
   * Inference with a cache (no gradients): x [t, dim] holds the next t tokens of one
   * sequence at positions cache.length…; their keys and values are appended to the cache.
   * A prompt (empty cache) runs through flash attention; later tokens one at a time attend
   * to the whole cache.
   */
  forwardCached(x: Tensor, positions: Tensor, cache: KVCache): Tensor {
    const t = x.shape[0];
    const { heads, kvHeads } = this.o;
    const hd = this.headDim;
    if (cache.length + t > cache.k.shape[0]) {
      throw new Error(`KV cache full: ${cache.length} + ${t} tokens exceed its capacity of ${cache.k.shape[0]}`);
    }
    if (cache.length > 0 && t !== 1) throw new Error('forwardCached: after the prompt, decode one token at a time');
    let q = reshape(this.q_proj.forward(x), [t, heads, hd]);
    let k = reshape(this.k_proj.forward(x), [t, kvHeads, hd]);
    const v = reshape(this.v_proj.forward(x), [t, kvHeads, hd]);
    if (this.o.rope !== false) {
      q = rope(q, positions, { theta: this.o.ropeTheta ?? 10000 });
      k = rope(k, positions, { theta: this.o.ropeTheta ?? 10000 });
    }
    contiguousK(k, narrow(cache.k, 0, cache.length, t));
    contiguousK(v, narrow(cache.v, 0, cache.length, t));
    let a: Tensor;
    if (cache.length === 0) {
      a = flashAttention(q, k, v, { causal: this.o.causal ?? true });
    } else {
      // One query row per head against every cached key: [Hkv, rep, hd] · [Hkv, hd, L].
      const L = cache.length + 1;
      const rep = heads / kvHeads;
      const qg = reshape(q, [kvHeads, rep, hd]);
      const keys = permute(narrow(cache.k, 0, 0, L), [1, 2, 0]);
      const vals = permute(narrow(cache.v, 0, 0, L), [1, 0, 2]);
      const p = softmax(mulScalar(matmul(qg, keys), 1 / Math.sqrt(hd)));
      a = matmul(p, vals);
    }
    cache.length += t;
    return this.o_proj.forward(reshape(a, [t, heads * hd]));
  }
}

export interface KVCache {
  k: Tensor;
  v: Tensor;
  length: number;
}
