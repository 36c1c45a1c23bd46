import type { Tensor } from '../tensor/tensor.ts';
import { Module } from './module.ts';
import { ones, zeros, rmsNorm, layerNorm } from '../ops/index.ts';

export class RMSNorm extends Module {
  constructor(
    readonly dim: number,
    readonly eps = 1e-6,
  ) {
    super();
    this.param('weight', ones([dim]));
  }
  get weight(): Tensor {
    return this.getParam('weight');
  }
  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.weight, this.eps);
  }
}

export class LayerNorm extends Module {
  constructor(
    readonly dim: number,
    readonly eps = 1e-5,
  ) {
    super();
    this.param('weight', ones([dim]));
    this.param('bias', zeros([dim]));
  }
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.getParam('weight'), this.getParam('bias'), this.eps);
  }
}

export type NormKind = 'rmsnorm' | 'layernorm';

export function makeNorm(kind: NormKind, dim: number, eps: number): RMSNorm | LayerNorm {
  return kind === 'rmsnorm' ? new RMSNorm(dim, eps) : new LayerNorm(dim, eps);
}
