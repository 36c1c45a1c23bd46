import { Tensor } from '../tensor/tensor.ts';
import { Module } from './module.ts';
import { Generator, zeros } from '../ops/creation.ts';
import { add, matmul, reshape, transpose } from '../ops/index.ts';

export interface LinearOptions {
  bias?: boolean;
  /** Initialisation stream. */
  generator?: Generator;
  /** Weight init: PyTorch's default U(-1/√in, 1/√in), or normal(0, std) (bias then zeros). */
  initStd?: number;
}

/** y = x·Wᵀ + b with W stored [out, in] like PyTorch (so weights exchange without transposes). */
export class Linear extends Module {
  private readonly hasBias: boolean;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: LinearOptions = {},
  ) {
    super();
    const gen = opts.generator ?? new Generator(0);
    const bound = 1 / Math.sqrt(inFeatures);
    const std = opts.initStd;
    this.param('weight', std === undefined ? gen.uniform([outFeatures, inFeatures], -bound, bound) : gen.normal([outFeatures, inFeatures], 0, std));
    this.hasBias = opts.bias !== false;
    if (this.hasBias) this.param('bias', std === undefined ? gen.uniform([outFeatures], -bound, bound) : zeros([outFeatures]));
  }

  get weight(): Tensor {
    return this.getParam('weight');
  }
  get bias(): Tensor | null {
    return this.hasBias ? this.getParam('bias') : null;
  }

  forward(x: Tensor): Tensor {
    if (x.shape[x.rank - 1] !== this.inFeatures) {
      throw new Error(`Linear(${this.inFeatures}→${this.outFeatures}): input has ${x.shape[x.rank - 1]} features (shape [${x.shape.join(', ')}])`);
    }
    const flat = x.rank === 2 ? x : reshape(x, [-1, this.inFeatures]);
    let y = matmul(flat, transpose(this.weight));
    if (this.bias) y = add(y, this.bias);
    return x.rank === 2 ? y : reshape(y, [...x.shape.slice(0, -1), this.outFeatures]);
  }
}
