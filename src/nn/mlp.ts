import type { Tensor } from '../tensor/tensor.ts';
import { Module } from './module.ts';
import { Linear } from './linear.ts';
import { Generator } from '../ops/creation.ts';
import { gelu, swiglu } from '../ops/index.ts';

export type MlpKind = 'swiglu' | 'gelu';

/** Feed-forward block: SwiGLU (gate/up/down, Llama-style) or GELU (up/down). */
export class MLP extends Module {
  readonly gate_proj: Linear | null;
  readonly up_proj: Linear;
  readonly down_proj: Linear;

  constructor(
    readonly dim: number,
    readonly hidden: number,
    readonly kind: MlpKind = 'swiglu',
    opts: { generator?: Generator; initStd?: number; bias?: boolean } = {},
  ) {
    super();
    const lin = (i: number, o: number) => new Linear(i, o, { bias: opts.bias ?? false, generator: opts.generator, initStd: opts.initStd });
    this.gate_proj = kind === 'swiglu' ? this.child('gate_proj', lin(dim, hidden)) : null;
    this.up_proj = this.child('up_proj', lin(dim, hidden));
    this.down_proj = this.child('down_proj', lin(hidden, dim));
  }

  forward(x: Tensor): Tensor {
    const h = this.gate_proj ? swiglu(this.gate_proj.forward(x), this.up_proj.forward(x)) : gelu(this.up_proj.forward(x));
    return this.down_proj.forward(h);
  }
}
