import type { Tensor } from '../tensor/tensor.ts';
import { Module } from './module.ts';
import { Generator } from '../ops/creation.ts';
import { indexSelect } from '../ops/index.ts';

/** Token embedding table [vocab, dim]; lookup is a row gather with a deterministic scatter-add backward. */
export class Embedding extends Module {
  constructor(
    readonly numEmbeddings: number,
    readonly dim: number,
    opts: { generator?: Generator; initStd?: number } = {},
  ) {
    super();
    this.param('weight', (opts.generator ?? new Generator(0)).normal([numEmbeddings, dim], 0, opts.initStd ?? 1));
  }
  get weight(): Tensor {
    return this.getParam('weight');
  }
  forward(ids: Tensor): Tensor {
    if (ids.dtype !== 'i32') throw new TypeError(`Embedding: token ids must be i32, got ${ids.dtype}`);
    return indexSelect(this.weight, 0, ids);
  }
}
