// Batched matrix multiply with broadcasting batch dims; transposed operands are views.

import { Tensor, fmtShape } from '../tensor/tensor.ts';
import type { KernelDType } from '../device/index.ts';
import { defineOp, opError } from './registry.ts';
import { floatKernelType } from './kernels.ts';
import { sumToShape } from './reduce.ts';
import { transpose } from './shape.ts';
import type { Device } from '../device/index.ts';
import { blockTile, chooseMatmulKernel, MATMUL_VARIANTS, splitCount, type MatmulEntry, type MatmulKernel, type MatmulProblem } from './matmul-select.ts';

const MAX_BATCH_DIMS = 4;

/** C = A·B where A is [..., m, k] and B is [..., k, n]; 1-D operands act as vectors like numpy. */
export function matmulK(op: string, a: Tensor, b: Tensor): Tensor {
  const dtype = floatKernelType(op, a, b) as KernelDType;
  if (a.rank < 2 || b.rank < 2) throw opError(op, 'operands must have at least 2 dimensions', a, b);
  const [m, k] = a.shape.slice(-2);
  const [k2, n] = b.shape.slice(-2);
  if (k !== k2) throw opError(op, `inner dimensions differ: ${fmtShape(a.shape)} · ${fmtShape(b.shape)} (${k} vs ${k2})`, a, b);
  const ba = a.shape.slice(0, -2);
  const bb = b.shape.slice(0, -2);
  const rank = Math.max(ba.length, bb.length);
  const bshape: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = ba[i - (rank - ba.length)] ?? 1;
    const db = bb[i - (rank - bb.length)] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw opError(op, `batch dimensions cannot be broadcast: ${fmtShape(ba)} vs ${fmtShape(bb)}`, a, b);
    bshape.push(Math.max(da, db));
  }
  const out = Tensor.empty([...bshape, m, n], a.dtype, a.device);
  const nbatch = bshape.reduce((p, d) => p * d, 1);
  if (out.size === 0) return out;
  // Merge batch dims so at most 4 remain (drop size-1 dims first).
  const dims: Array<{ n: number; sa: number; sb: number }> = [];
  for (let i = 0; i < rank; i++) {
    const ia = i - (rank - ba.length);
    const ib = i - (rank - bb.length);
    const sa = ia >= 0 && a.shape[ia] !== 1 ? a.strides[ia] : 0;
    const sb = ib >= 0 && b.shape[ib] !== 1 ? b.strides[ib] : 0;
    if (bshape[i] !== 1) dims.push({ n: bshape[i], sa, sb });
  }
  for (let i = dims.length - 1; i > 0 && dims.length > MAX_BATCH_DIMS; i--) {
    const hi = dims[i - 1];
    const lo = dims[i];
    if (hi.sa === lo.sa * lo.n && hi.sb === lo.sb * lo.n) dims.splice(i - 1, 2, { n: hi.n * lo.n, sa: lo.sa, sb: lo.sb });
  }
  if (dims.length > MAX_BATCH_DIMS) throw opError(op, `more than ${MAX_BATCH_DIMS} non-mergeable batch dimensions`, a, b);
  if (nbatch > 65535) throw opError(op, `batch of ${nbatch} exceeds 65535`, a, b);
  const u = new Uint32Array(28);
  u.set([m, n, k, nbatch, a.offset, b.offset, 0, dims.length]);
  const sbK = b.strides[b.rank - 2];
  const sbN = b.strides[b.rank - 1];
  u.set([a.strides[a.rank - 2], a.strides[a.rank - 1], sbK, sbN], 8);
  dims.forEach((d, i) => {
    u[12 + i] = d.n;
    u[16 + i] = d.sa;
    u[20 + i] = d.sb;
  });
  const problem: MatmulProblem = {
    m,
    n,
    k,
    batch: nbatch,
    aT: a.strides[a.rank - 2] === 1 && m > 1,
    bT: sbN !== 1 && n > 1,
    bVec4: (sbN === 1 || n === 1) && n % 4 === 0 && b.offset % 4 === 0 && sbK % 4 === 0 && dims.every((d) => d.sb % 4 === 0),
  };
  const kernel = chooseMatmulKernel(a.device, problem);
  encodeMatmul(a.device, kernel, problem, u, dtype, a.storage.buffer, b.storage.buffer, out.storage.buffer, op);
  return out;
}

/** Launches per variant since start (tests check that a forced variant really ran). */
export const matmulLaunches: Record<MatmulEntry, number> = { simple: 0, blocked: 0, blocked8: 0, rows4: 0, tiled: 0, splitk: 0, sgb: 0 };

/**
 * Record the dispatch(es) of one matmul with a given kernel variant. `u` holds the kernel
 * parameters (see Params in shaders/matmul.wgsl); the tuner calls this with raw buffers.
 */
export function encodeMatmul(
  device: Device,
  kernel: MatmulKernel,
  p: MatmulProblem,
  u: Uint32Array,
  dtype: KernelDType,
  a: GPUBuffer,
  b: GPUBuffer,
  c: GPUBuffer,
  label = 'matmul',
): void {
  const v = MATMUL_VARIANTS[kernel.entry];
  matmulLaunches[kernel.entry]++;
  const [tr, tc] = blockTile(kernel);
  const grid: [number, number, number] = [Math.ceil(p.n / tc), Math.ceil(p.m / tr), p.batch];
  if (kernel.entry !== 'splitk') {
    device.dispatch({ kernel: v.kernel, entry: kernel.entry, constants: v.constants(kernel), dtype, uniforms: u, buffers: [a, b, c], workgroups: grid, label });
    return;
  }
  const splits = splitCount(device, kernel, p);
  const params = u.slice();
  params[24] = splits;
  params[25] = Math.ceil(p.k / splits);
  const total = p.batch * p.m * p.n;
  const part = device.pool.acquire(splits * total * 4);
  try {
    grid[2] = p.batch * splits;
    if (grid[2] > 65535) throw new Error(`${label}: split-K grid of ${grid[2]} exceeds 65535`);
    device.dispatch({ kernel: 'matmul', entry: 'splitk', constants: v.constants(kernel), dtype, uniforms: params, buffers: [a, b, part], workgroups: grid, label });
    const groups = Math.ceil(total / 256);
    const gx = Math.min(groups, 65535);
    device.dispatch({
      kernel: 'matmul',
      entry: 'splitk_reduce',
      dtype,
      uniforms: params,
      buffers: [part, c],
      workgroups: [gx, Math.ceil(groups / gx)],
      label,
    });
  } finally {
    device.pool.release(part);
  }
}

export const matmul = defineOp({
  name: 'matmul',
  forward(ctx, a: Tensor, b: Tensor) {
    ctx.save(a, b);
    return matmulK('matmul', a, b);
  },
  backward(ctx, gy) {
    const [a, b] = ctx.saved;
    // dA = dC·Bᵀ, dB = Aᵀ·dC, summed over broadcast batch dims.
    const ga = a.requiresGrad ? sumToShape(matmulK('matmul.backward', gy, transpose(b)), a.shape) : null;
    const gb = b.requiresGrad ? sumToShape(matmulK('matmul.backward', transpose(a), gy), b.shape) : null;
    return [ga, gb];
  },
});

export { tuneMatmul, loadMatmulTuning, clearMatmulTuning, setMatmulTuneStore, probeSubgroupSize } from './matmul-tuner.ts';
export type { TuneShape, TuneResult, TuneOptions, TuneStore } from './matmul-tuner.ts';
export { setMatmulOverride, chooseMatmulKernel, type MatmulKernel, type MatmulEntry } from './matmul-select.ts';
