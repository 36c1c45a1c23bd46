// Small helpers shared by op implementations: uniform packing for strided views and
// workgroup grids that respect the 65535-per-dimension limit.

import type { Tensor } from '../tensor/tensor.ts';
import { opError } from './registry.ts';

export const MAX_RANK = 8;

/** A 1-D problem of n threads as a 2-D grid of `wg`-wide workgroups. */
export function grid1d(n: number, wg = 256): [number, number] {
  const groups = Math.ceil(n / wg);
  if (groups <= 65535) return [groups, 1];
  const x = 65535;
  return [x, Math.ceil(groups / x)];
}

export interface ViewDesc {
  offset: number;
  strides: readonly number[];
}

/**
 * Uniform block of shaders/elementwise.wgsl: n, rank, four offsets, alpha, beta, then
 * shape and the strides of views a, b, c and out, each padded to 8 dims.
 */
export function elementwiseParams(
  op: string,
  shape: readonly number[],
  views: { a?: ViewDesc; b?: ViewDesc; c?: ViewDesc; out: ViewDesc },
  alpha = 0,
  beta = 0,
): ArrayBuffer {
  if (shape.length > MAX_RANK) throw opError(op, `rank ${shape.length} exceeds the supported ${MAX_RANK}`);
  const buf = new ArrayBuffer(32 + 5 * 32);
  const u = new Uint32Array(buf);
  const f = new Float32Array(buf);
  let n = 1;
  for (const d of shape) n *= d;
  u[0] = n;
  u[1] = shape.length;
  u[2] = views.a?.offset ?? 0;
  u[3] = views.b?.offset ?? 0;
  u[4] = views.c?.offset ?? 0;
  u[5] = views.out.offset;
  f[6] = alpha;
  f[7] = beta;
  const put = (base: number, arr: readonly number[] | undefined) => {
    if (!arr) return;
    for (let i = 0; i < arr.length; i++) u[base + i] = arr[i];
  };
  put(8, shape);
  put(16, views.a?.strides);
  put(24, views.b?.strides);
  put(32, views.c?.strides);
  put(40, views.out.strides);
  return buf;
}

/** Strides of `t` viewed with `shape` by broadcasting (size-1 or missing leading dims get stride 0). */
export function broadcastStrides(op: string, t: Tensor, shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length).fill(0);
  const shift = shape.length - t.rank;
  if (shift < 0) throw opError(op, `cannot broadcast ${t.rank}-d tensor to shape [${shape.join(', ')}]`, t);
  for (let i = 0; i < t.rank; i++) {
    const d = t.shape[i];
    const target = shape[i + shift];
    if (d === target) out[i + shift] = d === 1 ? 0 : t.strides[i];
    else if (d === 1) out[i + shift] = 0;
    else throw opError(op, `cannot broadcast shape [${t.shape.join(', ')}] to [${shape.join(', ')}]`, t);
  }
  return out;
}

/** Result shape of broadcasting shapes together (NumPy rules). */
export function broadcastShapes(op: string, ...tensors: Tensor[]): number[] {
  const rank = Math.max(...tensors.map((t) => t.rank));
  const out = new Array<number>(rank).fill(1);
  for (const t of tensors) {
    for (let i = 0; i < t.rank; i++) {
      const j = rank - t.rank + i;
      const d = t.shape[i];
      if (out[j] === 1) out[j] = d;
      else if (d !== 1 && d !== out[j]) {
        throw opError(op, `shapes cannot be broadcast together (dimension ${j}: ${out[j]} vs ${d})`, ...tensors);
      }
    }
  }
  return out;
}
