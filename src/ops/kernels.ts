// Direct kernel launchers (no autograd): the building blocks ops' forward and backward
// functions call. Each allocates its output and records one dispatch.

import { Tensor, contiguousStrides, fmtShape } from '../tensor/tensor.ts';
import { isFloat, type DType } from '../tensor/dtype.ts';
import type { KernelDType } from '../device/index.ts';
import { broadcastShapes, broadcastStrides, elementwiseParams, grid1d } from './launch.ts';
import { opError } from './registry.ts';

export const UNARY = {
  copy: 0, neg: 1, exp: 2, log: 3, sqrt: 4, rsqrt: 5, tanh: 6, sigmoid: 7, silu: 8, gelu: 9,
  relu: 10, abs: 11, affine: 12, powScalar: 13, sign: 14, square: 15, reciprocal: 16, geluTanh: 17,
  nonzero: 18, clamp: 19,
} as const;

export const BINARY = {
  add: 0, sub: 1, mul: 2, div: 3, pow: 4, maximum: 5, minimum: 6, eq: 7, gt: 8, ge: 9, lt: 10, le: 11,
  axpby: 12, sigmoidGrad: 20, tanhGrad: 21, siluGrad: 22, geluGrad: 23, reluGrad: 24, absGrad: 25,
  geluTanhGrad: 26, clampGrad: 27,
} as const;

export function floatKernelType(op: string, ...ts: Tensor[]): KernelDType {
  const d = ts[0].dtype;
  for (const t of ts) {
    if (!isFloat(t.dtype)) throw opError(op, `dtype ${t.dtype} is not supported (float tensors only)`, ...ts);
    if (t.dtype !== d) throw opError(op, `dtypes differ (${ts.map((x) => x.dtype).join(' vs ')}); cast first`, ...ts);
  }
  return d as KernelDType;
}

function contigFlag(shape: readonly number[], ...views: Array<{ strides: readonly number[] }>): number {
  const c = contiguousStrides(shape);
  return views.every((v) => v.strides.every((s, i) => s === c[i] || shape[i] === 1)) ? 1 : 0;
}

/** out = f(x) elementwise; `out` may be a strided view to write into (e.g. a slice). */
export function unaryK(op: string, code: number, x: Tensor, alpha = 0, beta = 0, out?: Tensor): Tensor {
  const dtype = floatKernelType(op, x);
  const o = out ?? Tensor.empty(x.shape, x.dtype, x.device);
  if (o.size === 0) return o;
  const contig = contigFlag(x.shape, x, o);
  x.device.dispatch({
    kernel: 'elementwise',
    entry: 'unary',
    constants: { OP: code, CONTIG: contig },
    dtype,
    uniforms: new Uint8Array(elementwiseParams(op, x.shape, { a: x, out: o }, alpha, beta)),
    buffers: [x.storage.buffer, o.storage.buffer],
    workgroups: grid1d(o.size),
    label: op,
  });
  return o;
}

/** out = f(a, b) with broadcasting. */
export function binaryK(op: string, code: number, a: Tensor, b: Tensor, alpha = 0, beta = 0): Tensor {
  const dtype = floatKernelType(op, a, b);
  const shape = broadcastShapes(op, a, b);
  const o = Tensor.empty(shape, a.dtype, a.device);
  if (o.size === 0) return o;
  const va = { offset: a.offset, strides: broadcastStrides(op, a, shape) };
  const vb = { offset: b.offset, strides: broadcastStrides(op, b, shape) };
  a.device.dispatch({
    kernel: 'elementwise',
    entry: 'binary',
    constants: { OP: code, CONTIG: contigFlag(shape, va, vb, o) },
    dtype,
    uniforms: new Uint8Array(elementwiseParams(op, shape, { a: va, b: vb, out: o }, alpha, beta)),
    buffers: [a.storage.buffer, b.storage.buffer, o.storage.buffer],
    workgroups: grid1d(o.size),
    label: op,
  });
  return o;
}

/** out = cond != 0 ? a : b with broadcasting of all three. */
export function selectK(op: string, cond: Tensor, a: Tensor, b: Tensor): Tensor {
  const dtype = floatKernelType(op, a, b);
  if (cond.dtype !== a.dtype) throw opError(op, `condition dtype ${cond.dtype} must match the values' (${a.dtype})`, cond, a, b);
  const shape = broadcastShapes(op, cond, a, b);
  const o = Tensor.empty(shape, a.dtype, a.device);
  if (o.size === 0) return o;
  const vc = { offset: cond.offset, strides: broadcastStrides(op, cond, shape) };
  const va = { offset: a.offset, strides: broadcastStrides(op, a, shape) };
  const vb = { offset: b.offset, strides: broadcastStrides(op, b, shape) };
  a.device.dispatch({
    kernel: 'elementwise',
    entry: 'select3',
    constants: { CONTIG: contigFlag(shape, vc, va, vb, o) },
    dtype,
    uniforms: new Uint8Array(elementwiseParams(op, shape, { a: vc, b: va, c: vb, out: o })),
    buffers: [cond.storage.buffer, a.storage.buffer, b.storage.buffer, o.storage.buffer],
    workgroups: grid1d(o.size),
    label: op,
  });
  return o;
}

/** Fill a new tensor with alpha + i·beta (fill, arange). */
export function fillK(shape: readonly number[], dtype: DType, alpha: number, beta: number, device = undefined as Tensor['device'] | undefined): Tensor {
  const o = Tensor.empty(shape, dtype, device);
  if (o.size === 0) return o;
  const params = new ArrayBuffer(24);
  const u = new Uint32Array(params);
  const f = new Float32Array(params);
  const i = new Int32Array(params);
  u[0] = o.size;
  f[2] = alpha;
  f[3] = beta;
  i[4] = Math.trunc(alpha);
  i[5] = Math.trunc(beta);
  const float = isFloat(dtype);
  if (!float && dtype !== 'i32') throw opError('fill', `dtype ${dtype} is not supported`);
  o.device.dispatch({
    kernel: 'fill',
    entry: float ? 'fill_float' : 'fill_int',
    dtype: float ? (dtype as KernelDType) : 'f32',
    uniforms: new Uint8Array(params),
    buffers: [o.storage.buffer],
    workgroups: grid1d(o.size),
    label: 'fill',
  });
  return o;
}

/** A contiguous copy of any view. */
export function contiguousK(x: Tensor, out?: Tensor): Tensor {
  if (isFloat(x.dtype)) return unaryK('contiguous', UNARY.copy, x, 0, 0, out);
  // 32-bit integers: a bit-exact copy (a float copy could flush denormal bit patterns).
  const o = out ?? Tensor.empty(x.shape, x.dtype, x.device);
  if (o.size === 0) return o;
  x.device.dispatch({
    kernel: 'elementwise',
    entry: 'copy_bits',
    constants: { CONTIG: contigFlag(x.shape, x, o) },
    uniforms: new Uint8Array(elementwiseParams('contiguous', x.shape, { a: x, out: o })),
    buffers: [x.storage.buffer, o.storage.buffer],
    workgroups: grid1d(o.size),
    label: 'contiguous',
  });
  return o;
}

export function assertSameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.rank !== b.rank || a.shape.some((d, i) => d !== b.shape[i])) {
    throw opError(op, `shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)} must be equal`, a, b);
  }
}
