// Float64 CPU reference used only by tests: a tiny strided-free n-d array with the
// forward semantics of every engine op. Gradients of the reference are taken by central
// differences in float64 (accurate to ~1e-8), which needs no hand-written backward.

export class ND {
  constructor(
    readonly shape: number[],
    readonly data: Float64Array,
  ) {
    if (data.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`ND: ${data.length} values for shape [${shape}]`);
  }
  static from(data: ArrayLike<number>, shape: number[]): ND {
    return new ND([...shape], Float64Array.from(data));
  }
  get size(): number {
    return this.data.length;
  }
  get rank(): number {
    return this.shape.length;
  }
  clone(): ND {
    return new ND([...this.shape], this.data.slice());
  }
}

export function strides(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function unravel(i: number, shape: number[]): number[] {
  const c = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    c[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return c;
}

export function broadcastShape(a: number[], b: number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[i - (r - a.length)] ?? 1;
    const db = b[i - (r - b.length)] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`ref: cannot broadcast [${a}] and [${b}]`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Value of `x` at output coordinate `c` (of a broadcast result shape). */
function at(x: ND, c: number[]): number {
  const shift = c.length - x.rank;
  let idx = 0;
  let acc = 1;
  for (let d = x.rank - 1; d >= 0; d--) {
    const coord = x.shape[d] === 1 ? 0 : c[d + shift];
    idx += coord * acc;
    acc *= x.shape[d];
  }
  return x.data[idx];
}

export function map(x: ND, f: (v: number) => number): ND {
  return new ND([...x.shape], x.data.map(f));
}

export function zip(a: ND, b: ND, f: (x: number, y: number) => number): ND {
  const shape = broadcastShape(a.shape, b.shape);
  const n = shape.reduce((p, d) => p * d, 1);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const c = unravel(i, shape);
    out[i] = f(at(a, c), at(b, c));
  }
  return new ND(shape, out);
}

export function where(cond: ND, a: ND, b: ND): ND {
  const shape = broadcastShape(broadcastShape(cond.shape, a.shape), b.shape);
  const n = shape.reduce((p, d) => p * d, 1);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const c = unravel(i, shape);
    out[i] = at(cond, c) !== 0 ? at(a, c) : at(b, c);
  }
  return new ND(shape, out);
}

export function reduce(x: ND, axes: number[], kind: 'sum' | 'mean' | 'max' | 'min', keepdim = false): ND {
  const ax = axes.map((a) => (a < 0 ? a + x.rank : a));
  const keepShape = x.shape.map((d, i) => (ax.includes(i) ? 1 : d));
  const n = keepShape.reduce((p, d) => p * d, 1);
  const init = kind === 'max' ? -Infinity : kind === 'min' ? Infinity : 0;
  const out = new Float64Array(n).fill(init);
  const ks = strides(keepShape);
  for (let i = 0; i < x.size; i++) {
    const c = unravel(i, x.shape);
    let o = 0;
    c.forEach((v, d) => (o += (ax.includes(d) ? 0 : v) * ks[d]));
    const v = x.data[i];
    out[o] = kind === 'max' ? Math.max(out[o], v) : kind === 'min' ? Math.min(out[o], v) : out[o] + v;
  }
  if (kind === 'mean') {
    const cnt = ax.reduce((p, a) => p * x.shape[a], 1);
    for (let i = 0; i < n; i++) out[i] /= cnt;
  }
  const shape = keepdim ? keepShape : x.shape.filter((_, i) => !ax.includes(i));
  return new ND(shape, out);
}

export function permute(x: ND, axes: number[]): ND {
  const shape = axes.map((a) => x.shape[a]);
  const xs = strides(x.shape);
  const out = new Float64Array(x.size);
  for (let i = 0; i < x.size; i++) {
    const c = unravel(i, shape);
    let src = 0;
    c.forEach((v, d) => (src += v * xs[axes[d]]));
    out[i] = x.data[src];
  }
  return new ND(shape, out);
}

export function matmul(a: ND, b: ND): ND {
  const [m, k] = a.shape.slice(-2);
  const [, n] = b.shape.slice(-2);
  const batch = broadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const nb = batch.reduce((p, d) => p * d, 1);
  const out = new Float64Array(nb * m * n);
  const aB = a.shape.slice(0, -2);
  const bB = b.shape.slice(0, -2);
  const batchIndex = (c: number[], shape: number[]) => {
    const shift = c.length - shape.length;
    let idx = 0;
    let acc = 1;
    for (let d = shape.length - 1; d >= 0; d--) {
      idx += (shape[d] === 1 ? 0 : c[d + shift]) * acc;
      acc *= shape[d];
    }
    return idx;
  };
  for (let z = 0; z < nb; z++) {
    const c = unravel(z, batch);
    const ao = batchIndex(c, aB) * m * k;
    const bo = batchIndex(c, bB) * k * n;
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let t = 0; t < k; t++) s += a.data[ao + i * k + t] * b.data[bo + t * n + j];
        out[z * m * n + i * n + j] = s;
      }
  }
  return new ND([...batch, m, n], out);
}

export function softmax(x: ND, log = false): ND {
  const len = x.shape[x.rank - 1];
  const out = new Float64Array(x.size);
  for (let r = 0; r < x.size / len; r++) {
    let mx = -Infinity;
    for (let i = 0; i < len; i++) mx = Math.max(mx, x.data[r * len + i]);
    let s = 0;
    for (let i = 0; i < len; i++) s += Math.exp(x.data[r * len + i] - mx);
    for (let i = 0; i < len; i++) {
      const v = x.data[r * len + i] - mx;
      out[r * len + i] = log ? v - Math.log(s) : Math.exp(v) / s;
    }
  }
  return new ND([...x.shape], out);
}

export function concat(xs: ND[], axis: number): ND {
  const shape = [...xs[0].shape];
  shape[axis] = xs.reduce((s, x) => s + x.shape[axis], 0);
  const n = shape.reduce((p, d) => p * d, 1);
  const out = new Float64Array(n);
  const os = strides(shape);
  let start = 0;
  for (const x of xs) {
    for (let i = 0; i < x.size; i++) {
      const c = unravel(i, x.shape);
      c[axis] += start;
      out[c.reduce((s, v, d) => s + v * os[d], 0)] = x.data[i];
    }
    start += x.shape[axis];
  }
  return new ND(shape, out);
}

export function narrow(x: ND, axis: number, start: number, len: number): ND {
  const shape = [...x.shape];
  shape[axis] = len;
  const n = shape.reduce((p, d) => p * d, 1);
  const out = new Float64Array(n);
  const xs = strides(x.shape);
  for (let i = 0; i < n; i++) {
    const c = unravel(i, shape);
    c[axis] += start;
    out[i] = x.data[c.reduce((s, v, d) => s + v * xs[d], 0)];
  }
  return new ND(shape, out);
}

// ---- scalar functions matching the kernels ----
export const erf = (x: number): number => {
  // Abramowitz–Stegun 7.1.26 is too coarse for a reference: use a series/continued fraction.
  const t = Math.abs(x);
  if (t < 3) {
    let sum = t;
    let term = t;
    for (let n = 1; n < 200; n++) {
      term *= (-t * t) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction for large |x|
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (t + f);
  const erfc = Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + f);
  return Math.sign(x) * (1 - erfc);
};
export const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
export const gelu = (x: number): number => 0.5 * x * (1 + erf(x / Math.SQRT2));
export const geluTanh = (x: number): number => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
