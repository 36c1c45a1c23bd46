// Shape ops. Views (reshape of contiguous data, permute, slice, expand, squeeze) share
// storage and copy nothing; contiguous(), concat and reshape of a non-contiguous view copy.

import { Tensor, contiguousStrides, fmtShape, shapeSize } from '../tensor/tensor.ts';
import { defineOp, opError } from './registry.ts';
import { contiguousK, fillK } from './kernels.ts';
import { sumToShape } from './reduce.ts';

export function normAxis(op: string, axis: number, rank: number, t?: Tensor): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) {
    throw opError(op, `axis ${axis} is out of range for a ${rank}-d tensor`, ...(t ? [t] : []));
  }
  return a;
}

/** Resolve one -1 entry of a target shape. */
function resolveShape(op: string, x: Tensor, shape: readonly number[]): number[] {
  const out = [...shape];
  const unknown = out.indexOf(-1);
  if (unknown !== out.lastIndexOf(-1)) throw opError(op, `only one dimension may be -1 in ${fmtShape(shape)}`, x);
  const known = out.reduce((acc, d, i) => (i === unknown ? acc : acc * d), 1);
  if (unknown >= 0) {
    if (known === 0 || x.size % known !== 0) throw opError(op, `cannot infer -1 in ${fmtShape(shape)} for ${x.size} elements`, x);
    out[unknown] = x.size / known;
  }
  if (shapeSize(out) !== x.size) throw opError(op, `cannot reshape ${x.size} elements into ${fmtShape(shape)}`, x);
  return out;
}

/** Strides for viewing x with `shape` without copying, or null if impossible (PyTorch's view rules). */
function viewStrides(x: Tensor, shape: number[]): number[] | null {
  if (x.isContiguous) return contiguousStrides(shape);
  // Group x's dims into contiguous chunks, then split/merge within chunks.
  const oldShape = x.shape.filter((d) => d !== 1);
  const oldStrides = x.strides.filter((_, i) => x.shape[i] !== 1);
  const out = new Array<number>(shape.length).fill(0);
  let oi = 0;
  let ni = 0;
  while (ni < shape.length || oi < oldShape.length) {
    if (ni < shape.length && shape[ni] === 1) {
      out[ni++] = 0;
      continue;
    }
    if (oi >= oldShape.length || ni >= shape.length) return null;
    // Take old dims [oi, oj) and new dims [ni, nj) with equal products.
    let oj = oi + 1;
    let nj = ni + 1;
    let op = oldShape[oi];
    let np = shape[ni];
    while (op !== np) {
      if (op < np) {
        if (oj >= oldShape.length) return null;
        if (oldStrides[oj - 1] !== oldStrides[oj] * oldShape[oj]) return null;
        op *= oldShape[oj++];
      } else {
        if (nj >= shape.length) return null;
        np *= shape[nj++];
      }
    }
    for (let k = oi; k < oj - 1; k++) if (oldStrides[k] !== oldStrides[k + 1] * oldShape[k + 1]) return null;
    let stride = oldStrides[oj - 1];
    for (let k = nj - 1; k >= ni; k--) {
      out[k] = stride;
      stride *= shape[k];
    }
    oi = oj;
    ni = nj;
  }
  return out;
}

export const reshape: (x: Tensor, shape: readonly number[]) => Tensor = defineOp({
  name: 'reshape',
  forward(ctx, x: Tensor, shape: readonly number[]) {
    const target = resolveShape('reshape', x, shape);
    ctx.attrs.inShape = x.shape;
    const strides = viewStrides(x, target);
    if (strides) return x.view(target, strides, x.offset);
    const c = contiguousK(x);
    const v = c.view(target, contiguousStrides(target), 0);
    c.release();
    return v;
  },
  backward: (ctx, gy) => [reshape(gy, ctx.attrs.inShape as number[])],
});

export const flatten = (x: Tensor): Tensor => reshape(x, [x.size]);

export const permute: (x: Tensor, axes: readonly number[]) => Tensor = defineOp({
  name: 'permute',
  forward(ctx, x: Tensor, axes: readonly number[]) {
    if (axes.length !== x.rank) throw opError('permute', `${axes.length} axes given for a ${x.rank}-d tensor`, x);
    const norm = axes.map((a) => normAxis('permute', a, x.rank, x));
    if (new Set(norm).size !== norm.length) throw opError('permute', `axes ${fmtShape(axes)} repeat a dimension`, x);
    ctx.attrs.axes = norm;
    return x.view(
      norm.map((a) => x.shape[a]),
      norm.map((a) => x.strides[a]),
      x.offset,
    );
  },
  backward(ctx, gy) {
    const axes = ctx.attrs.axes as number[];
    const inv = new Array<number>(axes.length);
    axes.forEach((a, i) => (inv[a] = i));
    return [permute(gy, inv)];
  },
});

export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const axes = [...Array(x.rank).keys()];
  const i = normAxis('transpose', a, x.rank, x);
  const j = normAxis('transpose', b, x.rank, x);
  [axes[i], axes[j]] = [axes[j], axes[i]];
  return permute(x, axes);
}

/** x[…, start:start+length, …] along `axis`, as a view. */
export const narrow = defineOp({
  name: 'narrow',
  forward(ctx, x: Tensor, axis: number, start: number, length: number) {
    const a = normAxis('narrow', axis, x.rank, x);
    if (!Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 0 || start + length > x.shape[a]) {
      throw opError('narrow', `range [${start}, ${start + length}) is out of bounds for dimension ${a} of size ${x.shape[a]}`, x);
    }
    ctx.attrs.a = a;
    ctx.attrs.start = start;
    ctx.attrs.inShape = x.shape;
    const shape = [...x.shape];
    shape[a] = length;
    return x.view(shape, x.strides, x.offset + start * x.strides[a]);
  },
  backward(ctx, gy) {
    // Zeros of the input's shape with the gradient copied into the slice.
    const g = fillK(ctx.attrs.inShape as number[], gy.dtype, 0, 0, gy.device);
    const a = ctx.attrs.a as number;
    const region = g.view(gy.shape, g.strides, (ctx.attrs.start as number) * g.strides[a]);
    contiguousK(gy, region);
    region.release();
    return [g];
  },
});

/** Python-style slicing of several axes: slice(x, [[0, 2], null, [1, 5]]). */
export function slice(x: Tensor, ranges: ReadonlyArray<readonly [number, number] | null>): Tensor {
  let y = x;
  ranges.forEach((r, axis) => {
    if (!r) return;
    const size = y.shape[axis];
    const lo = r[0] < 0 ? r[0] + size : r[0];
    const hi = r[1] < 0 ? r[1] + size : Math.min(r[1], size);
    y = narrow(y, axis, lo, Math.max(0, hi - lo));
  });
  return y;
}

export const expand = defineOp({
  name: 'expand',
  forward(ctx, x: Tensor, shape: readonly number[]) {
    if (shape.length < x.rank) throw opError('expand', `target ${fmtShape(shape)} has fewer dims than the input`, x);
    const shift = shape.length - x.rank;
    const strides = shape.map((d, i) => {
      if (i < shift) return 0;
      const s = x.shape[i - shift];
      if (d === -1 || d === s) return s === 1 ? 0 : x.strides[i - shift];
      if (s === 1) return 0;
      throw opError('expand', `cannot expand dimension ${i - shift} of size ${s} to ${d}`, x);
    });
    const out = shape.map((d, i) => (d === -1 ? x.shape[i - shift] : d));
    ctx.attrs.inShape = x.shape;
    return x.view(out, strides, x.offset);
  },
  backward: (ctx, gy) => [sumToShape(gy, ctx.attrs.inShape as number[])],
});

export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = axis < 0 ? axis + x.rank + 1 : axis;
  const shape = [...x.shape];
  shape.splice(a, 0, 1);
  return reshape(x, shape);
}

export function squeeze(x: Tensor, axis?: number): Tensor {
  if (axis === undefined) return reshape(x, x.shape.filter((d) => d !== 1));
  const a = normAxis('squeeze', axis, x.rank, x);
  if (x.shape[a] !== 1) throw opError('squeeze', `dimension ${a} has size ${x.shape[a]}, not 1`, x);
  const shape = [...x.shape];
  shape.splice(a, 1);
  return reshape(x, shape);
}

/** A contiguous tensor with the same values (a new reference to x itself if already contiguous). */
export const contiguous = defineOp({
  name: 'contiguous',
  forward: (_ctx, x: Tensor) => (x.isContiguous ? x.view(x.shape, x.strides, x.offset) : contiguousK(x)),
  backward: (_ctx, gy) => [gy],
});

export const concat = defineOp({
  name: 'concat',
  forward(ctx, xs: readonly Tensor[], axis: number = 0) {
    if (xs.length === 0) throw opError('concat', 'needs at least one tensor');
    const first = xs[0];
    const a = normAxis('concat', axis, first.rank, first);
    for (const t of xs) {
      if (t.rank !== first.rank || t.dtype !== first.dtype || t.shape.some((d, i) => i !== a && d !== first.shape[i])) {
        throw opError('concat', `tensors must match in dtype and in every dimension except ${a}`, ...xs);
      }
    }
    const shape = [...first.shape];
    shape[a] = xs.reduce((s, t) => s + t.shape[a], 0);
    const out = Tensor.empty(shape, first.dtype, first.device);
    let start = 0;
    const sizes: number[] = [];
    for (const t of xs) {
      const region = out.view(t.shape, out.strides, start * out.strides[a]);
      contiguousK(t, region);
      region.release();
      start += t.shape[a];
      sizes.push(t.shape[a]);
    }
    ctx.attrs.a = a;
    ctx.attrs.sizes = sizes;
    return out;
  },
  backward(ctx, gy) {
    const a = ctx.attrs.a as number;
    let start = 0;
    return (ctx.attrs.sizes as number[]).map((n) => {
      const shape = [...gy.shape];
      shape[a] = n;
      const v = gy.view(shape, gy.strides, gy.offset + start * gy.strides[a]);
      start += n;
      const c = contiguousK(v);
      v.release();
      return c;
    });
  },
});

/** Split along an axis into pieces of the given sizes (views). */
export function split(x: Tensor, sizes: readonly number[], axis = 0): Tensor[] {
  const a = normAxis('split', axis, x.rank, x);
  const total = sizes.reduce((s, n) => s + n, 0);
  if (total !== x.shape[a]) throw opError('split', `sizes [${sizes.join(', ')}] sum to ${total}, not ${x.shape[a]}`, x);
  let start = 0;
  return sizes.map((n) => {
    const t = narrow(x, a, start, n);
    start += n;
    return t;
  });
}
