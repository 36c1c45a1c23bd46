// Projector from an encoder's width to the LLM's: Linear → GELU → Linear (LLaVA-1.5 style).
import type { Tensor } from '../../tensor/tensor.ts';
import { Module } from '../../nn/module.ts';
import { Linear } from '../../nn/linear.ts';
import { Generator } from '../../ops/creation.ts';
import { gelu } from '../../ops/index.ts';
import { ProjectorSchema, parseEncoderConfig, type ProjectorConfig, type ProjectorConfigInput } from './schema.ts';

export class Projector extends Module {
  readonly config: ProjectorConfig;
  readonly fc1: Linear;
  readonly fc2: Linear;

  constructor(config: ProjectorConfigInput | ProjectorConfig) {
    super();
    const c = (this.config = parseEncoderConfig('projector', ProjectorSchema, config));
    const gen = new Generator(c.seed);
    this.fc1 = this.child('fc1', new Linear(c.inDim, c.hidden, { bias: c.bias, generator: gen, initStd: c.initStd }));
    this.fc2 = this.child('fc2', new Linear(c.hidden, c.outDim, { bias: c.bias, generator: gen, initStd: c.initStd }));
  }

  /** [T, inDim] → [T, outDim]. */
  forward(x: Tensor): Tensor {
    return this.fc2.forward(gelu(this.fc1.forward(x)));
  }
}
