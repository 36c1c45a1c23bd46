// Internal helpers for the fused row kernels (norm, swiglu, cross-entropy): describe a
// tensor as `rows` rows of `d` contiguous elements, each starting `stride` elements after
// the previous one, from element `offset` of its storage. Views that fit this layout
// (a contiguous tensor at an offset, a slice of the last dimension, a row range) are
// bound without a copy; anything else is compacted first.

import type { Tensor } from '../tensor/tensor.ts';
import { contiguousK } from './kernels.ts';

export interface RowLayout {
  rows: number;
  d: number;
  offset: number;
  stride: number;
}

/** The row layout of `t` over its last axis, or null when the view does not fit one. */
export function rowLayout(t: Tensor): RowLayout | null {
  const r = t.rank;
  const d = r === 0 ? 1 : t.shape[r - 1];
  const rows = d === 0 ? 0 : t.size / d;
  if (r > 0 && d > 1 && t.strides[r - 1] !== 1) return null;
  // Leading dims must collapse into one row index with a single stride.
  let stride = -1;
  let span = 0; // stride the next-outer non-unit dim must have
  for (let i = r - 2; i >= 0; i--) {
    if (t.shape[i] === 1) continue;
    if (stride < 0) {
      stride = t.strides[i];
    } else if (t.strides[i] !== span) {
      return null;
    }
    span = t.strides[i] * t.shape[i];
  }
  if (stride < 0) stride = d;
  if (rows > 1 && stride < d) return null; // rows would overlap
  return { rows, d, offset: t.offset, stride };
}

/** `t` itself when it has a row layout, else a contiguous copy (the caller releases `tmp`). */
export function asRows(t: Tensor): { t: Tensor; layout: RowLayout; tmp: Tensor | null } {
  const l = rowLayout(t);
  if (l) return { t, layout: l, tmp: null };
  const c = contiguousK(t);
  return { t: c, layout: rowLayout(c)!, tmp: c };
}

/** Workgroup size for a one-workgroup-per-row kernel over rows of length d. */
export function rowWorkgroup(d: number): number {
  return d <= 128 ? 32 : d <= 1024 ? 128 : 256;
}
