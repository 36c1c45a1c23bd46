// Float64 reference for the index ops (indexSelect, gather, scatterAdd), used only by tests.
import { ND, strides, unravel } from './nd.ts';

function norm(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

function checkIndex(v: number, size: number): void {
  if (!Number.isInteger(v) || v < 0 || v >= size) throw new Error(`ref: index ${v} out of range for size ${size}`);
}

/** out = x.shape[:axis] + idxShape + x.shape[axis+1:], out[.., j.., ..] = x[.., ids[j], ..]. */
export function indexSelect(x: ND, axis: number, ids: ArrayLike<number>, idxShape: number[] = [ids.length]): ND {
  const a = norm(axis, x.rank);
  const n = ids.length;
  const outer = x.shape.slice(0, a).reduce((p, d) => p * d, 1);
  const inner = x.shape.slice(a + 1).reduce((p, d) => p * d, 1);
  const size = x.shape[a];
  const out = new Float64Array(outer * n * inner);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < n; j++) {
      checkIndex(ids[j], size);
      for (let c = 0; c < inner; c++) out[(o * n + j) * inner + c] = x.data[(o * size + ids[j]) * inner + c];
    }
  }
  return new ND([...x.shape.slice(0, a), ...idxShape, ...x.shape.slice(a + 1)], out);
}

/** torch.gather: out[c] = x[c with c[axis] = idx[c]]. */
export function gather(x: ND, axis: number, idx: ND): ND {
  const a = norm(axis, x.rank);
  const xs = strides(x.shape);
  const out = new Float64Array(idx.size);
  for (let i = 0; i < idx.size; i++) {
    const c = unravel(i, idx.shape);
    checkIndex(idx.data[i], x.shape[a]);
    c[a] = idx.data[i];
    out[i] = x.data[c.reduce((s, v, d) => s + v * xs[d], 0)];
  }
  return new ND([...idx.shape], out);
}

/** torch.scatter_add (out of place): out = base; out[c with c[axis] = idx[c]] += src[c] for c in idx.shape. */
export function scatterAdd(base: ND, axis: number, idx: ND, src: ND): ND {
  const a = norm(axis, base.rank);
  const bs = strides(base.shape);
  const ss = strides(src.shape);
  const out = base.clone();
  for (let i = 0; i < idx.size; i++) {
    const c = unravel(i, idx.shape);
    const v = src.data[c.reduce((s, k, d) => s + k * ss[d], 0)];
    checkIndex(idx.data[i], base.shape[a]);
    c[a] = idx.data[i];
    out.data[c.reduce((s, k, d) => s + k * bs[d], 0)] += v;
  }
  return out;
}

/** Stable ascending argsort (positions), as the GPU's argsortStable must return. */
export function argsortStable(keys: ArrayLike<number>): number[] {
  return Array.from({ length: keys.length }, (_, i) => i).sort((i, j) => keys[i] - keys[j] || i - j);
}

/** Embedding backward as a sequential float32 sum in index order (bit-exact target). */
export function embeddingBackwardF32(ids: ArrayLike<number>, gy: Float32Array, vocab: number, dim: number): Float32Array {
  const out = new Float32Array(vocab * dim);
  for (let j = 0; j < ids.length; j++) {
    const r = ids[j];
    for (let c = 0; c < dim; c++) out[r * dim + c] = Math.fround(out[r * dim + c] + gy[j * dim + c]);
  }
  return out;
}

/** Embedding backward in float64. */
export function embeddingBackward(ids: ArrayLike<number>, gy: ArrayLike<number>, vocab: number, dim: number): Float64Array {
  const out = new Float64Array(vocab * dim);
  for (let j = 0; j < ids.length; j++) for (let c = 0; c < dim; c++) out[ids[j] * dim + c] += gy[j * dim + c];
  return out;
}
