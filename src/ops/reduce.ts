// Reductions along axes (sum, mean, max, min), with keepdim.

import { Tensor, contiguousStrides, fmtShape } from '../tensor/tensor.ts';
import { defineOp, opError } from './registry.ts';
import { BINARY, binaryK, contiguousK, fillK, floatKernelType, UNARY, unaryK } from './kernels.ts';
import { grid1d } from './launch.ts';

const OP_CODE = { sum: 0, max: 1, min: 2 } as const;

function normAxes(op: string, x: Tensor, axes?: number | readonly number[]): number[] {
  if (axes === undefined) return [...Array(x.rank).keys()];
  const list = typeof axes === 'number' ? [axes] : [...axes];
  const out = list.map((a) => {
    const n = a < 0 ? a + x.rank : a;
    if (!Number.isInteger(n) || n < 0 || n >= x.rank) throw opError(op, `axis ${a} is out of range for a ${x.rank}-d tensor`, x);
    return n;
  });
  if (new Set(out).size !== out.length) throw opError(op, `axes [${list.join(', ')}] repeat a dimension`, x);
  return out.sort((a, b) => a - b);
}

/** Reduce `axes` of x with a kernel; returns the keepdim-shaped result. */
function reduceK(op: string, kind: keyof typeof OP_CODE, x: Tensor, axes: number[], scale = 1): Tensor {
  const dtype = floatKernelType(op, x);
  const keepShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const kept = [...x.shape.keys()].filter((i) => !axes.includes(i));
  const len = axes.reduce((p, a) => p * x.shape[a], 1);
  const rows = kept.reduce((p, a) => p * x.shape[a], 1);
  if (len === 0 && kind !== 'sum') throw opError(op, `cannot take the ${kind} over an empty dimension`, x);
  const out = Tensor.empty(keepShape, x.dtype, x.device);
  if (rows === 0) return out;
  if (len === 0) {
    out.release();
    return fillK(keepShape, x.dtype, 0, 0, x.device);
  }
  // Bring reduced axes last and make the data contiguous when it is not already so.
  const order = [...kept, ...axes];
  const permShape = order.map((a) => x.shape[a]);
  const permStrides = order.map((a) => x.strides[a]);
  const want = contiguousStrides(permShape);
  const inPlace = permShape.every((d, i) => d === 1 || permStrides[i] === want[i]);
  let src = x;
  let tmp: Tensor | null = null;
  if (!inPlace) {
    const v = x.view(permShape, permStrides, x.offset);
    tmp = src = contiguousK(v);
    v.release();
  }
  const params = new ArrayBuffer(16);
  new Uint32Array(params, 0, 3).set([rows, len, inPlace ? x.offset : 0]);
  new Float32Array(params, 12, 1)[0] = scale;
  const perThread = len <= 32 || (rows >= 2048 && len <= 512);
  x.device.dispatch({
    kernel: 'reduce',
    entry: perThread ? 'rows_thread' : 'rows_wg',
    constants: { OP: OP_CODE[kind], WG: perThread ? 64 : 128 },
    dtype,
    uniforms: new Uint8Array(params),
    buffers: [src.storage.buffer, out.storage.buffer],
    workgroups: perThread ? grid1d(rows, 64) : grid1d(rows, 1),
    label: op,
  });
  tmp?.release();
  return out;
}

function dropAxes(shape: readonly number[], axes: number[]): number[] {
  return shape.filter((_, i) => !axes.includes(i));
}

function squeezeTo(t: Tensor, shape: number[]): Tensor {
  const v = t.view(shape, contiguousStrides(shape), t.offset);
  t.release();
  return v;
}

export const sum = defineOp({
  name: 'sum',
  forward(ctx, x: Tensor, axes?: number | readonly number[], keepdim = false) {
    const ax = normAxes('sum', x, axes);
    ctx.attrs.inShape = x.shape;
    ctx.attrs.ax = ax;
    const r = reduceK('sum', 'sum', x, ax);
    return keepdim ? r : squeezeTo(r, dropAxes(x.shape, ax));
  },
  backward(ctx, gy) {
    return [broadcastBack(gy, ctx.attrs.inShape as number[], ctx.attrs.ax as number[], 1)];
  },
});

export const mean = defineOp({
  name: 'mean',
  forward(ctx, x: Tensor, axes?: number | readonly number[], keepdim = false) {
    const ax = normAxes('mean', x, axes);
    const n = ax.reduce((p, a) => p * x.shape[a], 1);
    if (n === 0) throw opError('mean', 'mean over an empty dimension', x);
    ctx.attrs.inShape = x.shape;
    ctx.attrs.ax = ax;
    ctx.attrs.n = n;
    const r = reduceK('mean', 'sum', x, ax, 1 / n);
    return keepdim ? r : squeezeTo(r, dropAxes(x.shape, ax));
  },
  backward(ctx, gy) {
    return [broadcastBack(gy, ctx.attrs.inShape as number[], ctx.attrs.ax as number[], 1 / (ctx.attrs.n as number))];
  },
});

/** Max/min: the gradient goes to the extreme elements, split evenly among ties (like torch.amax). */
function extremum(name: 'max' | 'min') {
  return defineOp({
    name,
    forward(ctx, x: Tensor, axes?: number | readonly number[], keepdim = false) {
      const ax = normAxes(name, x, axes);
      const r = reduceK(name, name, x, ax);
      ctx.save(x, r);
      ctx.attrs.ax = ax;
      return keepdim ? r.view(r.shape, r.strides, r.offset) : r.view(dropAxes(x.shape, ax), contiguousStrides(dropAxes(x.shape, ax)), r.offset);
    },
    backward(ctx, gy) {
      const [x, r] = ctx.saved;
      const ax = ctx.attrs.ax as number[];
      const mask = binaryK(`${name}.backward`, BINARY.eq, x, r);
      const count = reduceK(`${name}.backward`, 'sum', mask, ax);
      const g = broadcastBack(gy, x.shape, ax, 1);
      const share = binaryK(`${name}.backward`, BINARY.div, g, count);
      return [binaryK(`${name}.backward`, BINARY.mul, mask, share)];
    },
  });
}
export const max = extremum('max');
export const min = extremum('min');

/** Gradient of a reduction over `axes`: gy broadcast back to `shape`, times `scale`. */
function broadcastBack(gy: Tensor, shape: readonly number[], axes: number[], scale: number): Tensor {
  const g = gy.isContiguous ? gy : contiguousK(gy);
  const keepShape = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const strides = contiguousStrides(keepShape).map((s, i) => (keepShape[i] === 1 ? 0 : s));
  const v = g.view(shape, strides, g.offset);
  const out = unaryK('reduce.backward', UNARY.affine, v, scale, 0);
  v.release();
  if (g !== gy) g.release();
  return out;
}

/** Sum a broadcast gradient back down to `shape` (the shape of the op's input). */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  if (g.rank === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.rank - shape.length;
  if (lead < 0) throw opError('sumToShape', `gradient ${fmtShape(g.shape)} has fewer dims than ${fmtShape(shape)}`, g);
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  const r = reduceK('sumToShape', 'sum', g, axes);
  const v = r.view([...shape], contiguousStrides(shape), 0);
  r.release();
  return v;
}

/** Scale a tensor without recording (used by optimizers and tests). */
export function scaleK(x: Tensor, s: number): Tensor {
  return unaryK('scale', UNARY.affine, x, s, 0);
}
