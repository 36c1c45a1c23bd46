// Tensor creation: constants, ranges and seeded random draws computed on the GPU.

import { Tensor } from '../tensor/tensor.ts';
import type { DType } from '../tensor/dtype.ts';
import type { KernelDType } from '../device/index.ts';
import { getDevice } from '../device/index.ts';
import { fillK } from './kernels.ts';
import { grid1d } from './launch.ts';
import { opError } from './registry.ts';

export function zeros(shape: readonly number[], dtype: DType = 'f32'): Tensor {
  return fillK(shape, dtype, 0, 0);
}
export function ones(shape: readonly number[], dtype: DType = 'f32'): Tensor {
  return fillK(shape, dtype, 1, 0);
}
export function full(shape: readonly number[], value: number, dtype: DType = 'f32'): Tensor {
  return fillK(shape, dtype, value, 0);
}
export const zerosLike = (t: Tensor): Tensor => fillK(t.shape, t.dtype, 0, 0, t.device);
export const onesLike = (t: Tensor): Tensor => fillK(t.shape, t.dtype, 1, 0, t.device);

/** [start, start+step, …) with `n` = ceil((end-start)/step) elements. */
export function arange(start: number, end?: number, step = 1, dtype: DType = 'i32'): Tensor {
  if (end === undefined) [start, end] = [0, start];
  if (step === 0) throw opError('arange', 'step must not be 0');
  const n = Math.max(0, Math.ceil((end - start) / step));
  return fillK([n], dtype, start, step);
}

export function tensor(data: ArrayLike<number>, shape?: readonly number[], dtype: DType = 'f32'): Tensor {
  return Tensor.fromArray(data, shape ?? [data.length], dtype);
}

/**
 * A seeded stream of random numbers. Each draw advances a 64-bit counter by the number of
 * elements drawn, so a run that replays the same draws gets the same values; the state is
 * two numbers, saved in checkpoints.
 */
export class Generator {
  constructor(
    public seed: number,
    public offset = 0,
  ) {}

  get state(): { seed: number; offset: number } {
    return { seed: this.seed, offset: this.offset };
  }
  set state(s: { seed: number; offset: number }) {
    this.seed = s.seed;
    this.offset = s.offset;
  }

  uniform(shape: readonly number[], lo = 0, hi = 1, dtype: DType = 'f32'): Tensor {
    return this.draw('uniform', shape, lo, hi, dtype);
  }

  normal(shape: readonly number[], mean = 0, std = 1, dtype: DType = 'f32'): Tensor {
    return this.draw('normal', shape, mean, std, dtype);
  }

  private draw(kind: 'uniform' | 'normal', shape: readonly number[], a: number, b: number, dtype: DType): Tensor {
    if (dtype !== 'f32' && dtype !== 'f16') throw opError(`random.${kind}`, `dtype ${dtype} is not a float type`);
    const out = Tensor.empty(shape, dtype, getDevice());
    const n = out.size;
    if (n === 0) return out;
    const params = new ArrayBuffer(32);
    const u = new Uint32Array(params);
    const f = new Float32Array(params);
    u[0] = n;
    u[1] = this.seed >>> 0;
    u[2] = Math.floor(this.seed / 2 ** 32) >>> 0;
    u[3] = this.offset % 2 ** 32;
    u[4] = Math.floor(this.offset / 2 ** 32);
    f[6] = a;
    f[7] = b;
    out.device.dispatch({
      kernel: 'random',
      entry: `${kind}_draw`,
      dtype: dtype as KernelDType,
      uniforms: new Uint8Array(params),
      buffers: [out.storage.buffer],
      workgroups: grid1d(n),
      label: `random.${kind}`,
    });
    this.offset += n;
    return out;
  }
}

let defaultGenerator = new Generator(0);
export function manualSeed(seed: number): Generator {
  defaultGenerator = new Generator(seed);
  return defaultGenerator;
}
export const rand = (shape: readonly number[], lo = 0, hi = 1): Tensor => defaultGenerator.uniform(shape, lo, hi);
export const randn = (shape: readonly number[], mean = 0, std = 1): Tensor => defaultGenerator.normal(shape, mean, std);
