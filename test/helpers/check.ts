// Checks an engine op against the float64 reference, forward and backward:
//  1. forward values vs the reference forward;
//  2. backward (with a random upstream gradient w) vs the reference's gradient of
//     L = Σ w·f(x), taken by float64 central differences;
//  3. backward vs central finite differences of the engine's own forward (a few elements).
import { expect } from 'vitest';
import { Tensor, backward, transpose, type DType } from '../../src/node.ts';
import { ND, permute } from '../reference/nd.ts';

export interface InputSpec {
  shape: number[];
  /** Fixed values; otherwise uniform in [lo, hi). */
  data?: number[];
  lo?: number;
  hi?: number;
  /** Differentiate with respect to this input (default true). */
  grad?: boolean;
  /** Feed the op a non-contiguous view (last two dims stored transposed). */
  transposed?: boolean;
}

export interface CheckSpec {
  name: string;
  inputs: InputSpec[];
  gpu: (...xs: Tensor[]) => Tensor;
  ref: (...xs: ND[]) => ND;
  atol?: number;
  rtol?: number;
  /** Tolerance for gradients vs the float64 reference. */
  gradTol?: number;
  /** Tolerance for the float32 finite-difference check; 0 disables it. */
  fdTol?: number;
  fdStep?: number;
  fdSamples?: number;
  seed?: number;
  dtype?: DType;
}

/** Deterministic pseudo-random numbers for test data (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomData(n: number, r: () => number, lo = -1, hi = 1): number[] {
  return Array.from({ length: n }, () => lo + (hi - lo) * r());
}

/** Upload `data` (row-major for `shape`) as a tensor, optionally as a transposed view. */
export function upload(data: ArrayLike<number>, shape: number[], transposed = false, dtype: DType = 'f32'): Tensor {
  if (!transposed || shape.length < 2) return Tensor.fromArray(Array.from(data), shape, dtype);
  const r = shape.length;
  const axes = [...shape.keys()];
  [axes[r - 2], axes[r - 1]] = [axes[r - 1], axes[r - 2]];
  const stored = permute(ND.from(data, shape), axes);
  const base = Tensor.fromArray(Array.from(stored.data), stored.shape, dtype);
  const view = transpose(base);
  base.release();
  return view;
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let worst = 0;
  let worstAt = -1;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (a === e) continue;
    const err = Math.abs(a - e) / (atol + rtol * Math.abs(e));
    if (!(err <= worst)) {
      worst = Number.isNaN(err) ? Infinity : err;
      worstAt = i;
    }
  }
  if (worst > 1) {
    expect.fail(`${what}: element ${worstAt} is ${actual[worstAt]}, expected ${expected[worstAt]} (atol ${atol}, rtol ${rtol})`);
  }
}

function refLoss(spec: CheckSpec, xs: ND[], w: Float64Array): number {
  const y = spec.ref(...xs);
  let s = 0;
  for (let i = 0; i < y.size; i++) s += y.data[i] * w[i];
  return s;
}

export async function checkOp(spec: CheckSpec): Promise<void> {
  const r = rng(spec.seed ?? 1234);
  const atol = spec.atol ?? 1e-5;
  const rtol = spec.rtol ?? 1e-4;
  const hostIn = spec.inputs.map((s) => s.data ?? randomData(s.shape.reduce((a, b) => a * b, 1), r, s.lo ?? -1, s.hi ?? 1));
  const refIn = hostIn.map((d, i) => ND.from(d, spec.inputs[i].shape));
  const expected = spec.ref(...refIn);

  const xs = hostIn.map((d, i) => upload(d, spec.inputs[i].shape, spec.inputs[i].transposed, spec.dtype));
  xs.forEach((x, i) => (x.requiresGrad = spec.inputs[i].grad !== false));
  const y = spec.gpu(...xs);
  expect(y.shape, `${spec.name}: output shape`).toEqual(expected.shape);
  const got = await y.toArray();
  expectClose(got, expected.data, atol, rtol, `${spec.name} forward`);

  const differentiable = spec.inputs.some((s) => s.grad !== false) && y.requiresGrad;
  if (!differentiable) {
    y.release();
    xs.forEach((x) => x.release());
    return;
  }
  const w = Float64Array.from(randomData(expected.size, r, -1, 1));
  const wT = Tensor.fromArray(Array.from(w), expected.shape);
  backward(y, wT);
  wT.release();
  y.release();

  const gradTol = spec.gradTol ?? 2e-3;
  for (let i = 0; i < xs.length; i++) {
    if (spec.inputs[i].grad === false) continue;
    const g = xs[i].grad;
    expect(g, `${spec.name}: gradient of input ${i}`).toBeTruthy();
    const gpuGrad = await g!.toArray();
    // Reference gradient by float64 central differences.
    const refGrad = new Float64Array(refIn[i].size);
    for (let j = 0; j < refIn[i].size; j++) {
      const x0 = refIn[i].data[j];
      const h = 1e-6 * Math.max(1, Math.abs(x0));
      refIn[i].data[j] = x0 + h;
      const lp = refLoss(spec, refIn, w);
      refIn[i].data[j] = x0 - h;
      const lm = refLoss(spec, refIn, w);
      refIn[i].data[j] = x0;
      refGrad[j] = (lp - lm) / (2 * h);
    }
    expectClose(gpuGrad, refGrad, gradTol, gradTol, `${spec.name} gradient of input ${i} vs float64 reference`);

    // Central differences of the engine's own forward, on a few elements.
    const fdTol = spec.fdTol ?? 3e-2;
    if (fdTol > 0 && refIn[i].size > 0) {
      const step = spec.fdStep ?? 1e-2;
      const samples = Math.min(spec.fdSamples ?? 4, refIn[i].size);
      for (let s = 0; s < samples; s++) {
        const j = Math.floor(r() * refIn[i].size);
        const lossAt = async (delta: number): Promise<number> => {
          const data = hostIn.map((d) => d.slice());
          data[i][j] += delta;
          const ins = data.map((d, k) => upload(d, spec.inputs[k].shape, spec.inputs[k].transposed, spec.dtype));
          const out = spec.gpu(...ins);
          const v = await out.toArray();
          out.release();
          ins.forEach((t) => t.release());
          let l = 0;
          for (let q = 0; q < v.length; q++) l += v[q] * w[q];
          return l;
        };
        const fd = ((await lossAt(step)) - (await lossAt(-step))) / (2 * step);
        expectClose([gpuGrad[j]], [fd], fdTol, fdTol, `${spec.name} gradient of input ${i}[${j}] vs finite differences`);
      }
    }
    g!.release();
    xs[i].grad = null;
  }
  xs.forEach((x) => x.release());
}
