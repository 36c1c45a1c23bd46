// A worked example of adding a modality: a toy encoder for multichannel sensor time series
// (e.g. accelerometer readings). This one file plus its registration line at the bottom is
// everything a new modality needs on the model side; see docs/adding-a-modality.md.
//
// Input: `{ values: Float32Array, channels: number }` with values laid out [steps, channels].
// Tokens: one per `patch` consecutive steps (the last patch zero-padded).
// Network: patch → Linear → GELU → Linear, plus a learned position per token.

import { Module } from '../../src/nn/module.ts';
import { Linear } from '../../src/nn/linear.ts';
import { Tensor } from '../../src/tensor/tensor.ts';
import { Generator, add, concat, gelu, mulScalar, narrow } from '../../src/ops/index.ts';
import { registerModality } from '../../src/models/registry.ts';
import { EncoderInputError, cumulativeCounts, type EncoderOutput, type ModalityEncoder } from '../../src/models/encoders/types.ts';

export interface SensorInput {
  values: Float32Array;
  channels: number;
}

export interface SensorEncoderConfig {
  channels: number;
  /** Time steps per token. */
  patch: number;
  dim: number;
  /** Longest series in tokens (size of the position table). */
  maxTokens: number;
  seed?: number;
}

export class SensorEncoder extends Module implements ModalityEncoder<SensorInput> {
  readonly modality = 'sensor';
  readonly outDim: number;
  readonly fc1: Linear;
  readonly fc2: Linear;

  constructor(readonly config: SensorEncoderConfig) {
    super();
    for (const k of ['channels', 'patch', 'dim', 'maxTokens'] as const) {
      if (!Number.isInteger(config[k]) || config[k] < 1) throw new Error(`sensor encoder: ${k} must be a positive integer, got ${config[k]}`);
    }
    const gen = new Generator(config.seed ?? 0);
    this.outDim = config.dim;
    this.fc1 = this.child('fc1', new Linear(config.patch * config.channels, config.dim, { generator: gen, initStd: 0.02 }));
    this.fc2 = this.child('fc2', new Linear(config.dim, config.dim, { generator: gen, initStd: 0.02 }));
    this.param('pos', gen.normal([config.maxTokens, config.dim], 0, 0.02));
  }

  tokenCount(input: SensorInput): number {
    if (input.channels !== this.config.channels) {
      throw new EncoderInputError(`sensor encoder: series has ${input.channels} channels, the encoder takes ${this.config.channels}`);
    }
    const steps = input.values.length / input.channels;
    if (!Number.isInteger(steps) || steps < 1) throw new EncoderInputError(`sensor encoder: ${input.values.length} values are not whole steps of ${input.channels} channels`);
    const n = Math.ceil(steps / this.config.patch);
    if (n > this.config.maxTokens) throw new EncoderInputError(`sensor encoder: ${n} tokens exceed maxTokens ${this.config.maxTokens}`);
    return n;
  }

  encode(inputs: readonly SensorInput[]): EncoderOutput {
    if (inputs.length === 0) throw new EncoderInputError('sensor encoder: encode() needs at least one series');
    const counts = inputs.map((x) => this.tokenCount(x));
    const { patch, channels } = this.config;
    const rows = counts.reduce((a, b) => a + b, 0);
    // Patches as rows [tokens, patch·channels], zero-padded at each series' end.
    const host = new Float32Array(rows * patch * channels);
    let r = 0;
    inputs.forEach((x, i) => {
      host.set(x.values, r * patch * channels);
      r += counts[i];
    });
    const h = this.fc2.forward(gelu(this.fc1.forward(Tensor.fromArray(host, [rows, patch * channels]))));
    // Positions restart for every series.
    const pos = inputs.map((_, i) => narrow(this.getParam('pos'), 0, 0, counts[i]));
    let start = 0;
    const parts: Tensor[] = [];
    pos.forEach((p, i) => {
      parts.push(add(narrow(h, 0, start, counts[i]), p));
      start += counts[i];
    });
    const out = parts.length === 1 ? parts[0] : concatRows(parts);
    return { embeddings: out, tokenCounts: counts, cuSeqlens: cumulativeCounts(counts) };
  }

  dummy(): EncoderOutput {
    const out = this.encode([{ values: new Float32Array(this.config.patch * this.config.channels), channels: this.config.channels }]);
    return { ...out, embeddings: mulScalar(out.embeddings, 0) };
  }
}

function concatRows(parts: Tensor[]): Tensor {
  return concat(parts, 0);
}

/** A manifest's `{"sensor": "file.csv"}`: one line per time step, comma-separated channels. */
export function decodeSensorCsv(bytes: Uint8Array, path: string): SensorInput {
  const rows = new TextDecoder().decode(bytes).trim().split(/\r?\n/).map((l) => l.split(',').map(Number));
  const channels = rows[0]?.length ?? 0;
  if (!channels || rows.some((r) => r.length !== channels || r.some((v) => !Number.isFinite(v)))) {
    throw new Error(`${path}: expected rows of ${channels} comma-separated numbers`);
  }
  return { values: Float32Array.from(rows.flat()), channels };
}

// The one registration line:
registerModality('sensor', { encoder: (config) => new SensorEncoder(config as SensorEncoderConfig), decode: decodeSensorCsv });
