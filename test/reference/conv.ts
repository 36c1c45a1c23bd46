// Float64 references for patchify (a stride-p Conv2d's im2col) and conv1d over packed
// variable-length sequences, written directly from their definitions (loops, no views).
import { ND } from './nd.ts';

/** x [N, C, H, W] → [N·(H/p)·(W/p), C·p·p], rows (n, gy, gx), columns (c, dy, dx). */
export function patchify(x: ND, p: number): ND {
  const [n, c, h, w] = x.shape;
  const gh = h / p;
  const gw = w / p;
  const out = new Float64Array(n * gh * gw * c * p * p);
  let i = 0;
  for (let b = 0; b < n; b++)
    for (let gy = 0; gy < gh; gy++)
      for (let gx = 0; gx < gw; gx++)
        for (let ch = 0; ch < c; ch++)
          for (let dy = 0; dy < p; dy++)
            for (let dx = 0; dx < p; dx++) out[i++] = x.data[((b * c + ch) * h + gy * p + dy) * w + gx * p + dx];
  return new ND([n * gh * gw, c * p * p], out);
}

/** Direct Conv2d (kernel = stride = p, no padding) as a check of patchify + matmul: [N, Cout, gh, gw]. */
export function conv2dPatch(x: ND, weight: ND, bias: ND | null, p: number): ND {
  const [n, c, h, w] = x.shape;
  const cout = weight.shape[0];
  const gh = h / p;
  const gw = w / p;
  const out = new Float64Array(n * cout * gh * gw);
  for (let b = 0; b < n; b++)
    for (let o = 0; o < cout; o++)
      for (let gy = 0; gy < gh; gy++)
        for (let gx = 0; gx < gw; gx++) {
          let s = bias ? bias.data[o] : 0;
          for (let ch = 0; ch < c; ch++)
            for (let dy = 0; dy < p; dy++)
              for (let dx = 0; dx < p; dx++) {
                s += weight.data[((o * c + ch) * p + dy) * p + dx] * x.data[((b * c + ch) * h + gy * p + dy) * w + gx * p + dx];
              }
          out[((b * cout + o) * gh + gy) * gw + gx] = s;
        }
  return new ND([n, cout, gh, gw], out);
}

/**
 * Conv1d of packed sequences: x [T, Cin] rows, weight [Cout, Cin, K], bias [Cout];
 * each sequence of `cu` is zero-padded by `padding` at both ends on its own.
 */
export function conv1d(x: ND, weight: ND, bias: ND | null, stride: number, padding: number, cu: number[]): ND {
  const [, cin] = x.shape;
  const [cout, , k] = weight.shape;
  const rows: number[][] = [];
  for (let s = 0; s + 1 < cu.length; s++) {
    const start = cu[s];
    const len = cu[s + 1] - cu[s];
    const lout = Math.floor((len + 2 * padding - k) / stride) + 1;
    for (let t = 0; t < lout; t++) {
      const row = new Array<number>(cout).fill(0);
      for (let o = 0; o < cout; o++) {
        let acc = bias ? bias.data[o] : 0;
        for (let c = 0; c < cin; c++)
          for (let kk = 0; kk < k; kk++) {
            const ti = t * stride - padding + kk;
            if (ti < 0 || ti >= len) continue;
            acc += weight.data[(o * cin + c) * k + kk] * x.data[(start + ti) * cin + c];
          }
        row[o] = acc;
      }
      rows.push(row);
    }
  }
  return new ND([rows.length, cout], Float64Array.from(rows.flat()));
}

/** im2col of packed sequences: x [T, C] → [T_out, C·K], column c·K + k = x[t·stride − padding + k, c] (0 outside). */
export function unfold1d(x: ND, k: number, stride: number, padding: number, cu: number[]): ND {
  const c = x.shape[1];
  const rows: number[] = [];
  let tout = 0;
  for (let s = 0; s + 1 < cu.length; s++) {
    const len = cu[s + 1] - cu[s];
    const lout = Math.floor((len + 2 * padding - k) / stride) + 1;
    for (let t = 0; t < lout; t++, tout++)
      for (let ch = 0; ch < c; ch++)
        for (let kk = 0; kk < k; kk++) {
          const ti = t * stride - padding + kk;
          rows.push(ti >= 0 && ti < len ? x.data[(cu[s] + ti) * c + ch] : 0);
        }
  }
  return new ND([tout, c * k], Float64Array.from(rows));
}

/**
 * Conv2d of packed sequences of [F, Cin] maps: x [T, F·Cin] rows (frequency-major,
 * channels inner), weight [Cout, Cin, Kt, Kf]; each sequence of `cu` is zero-padded by
 * pt frames at both ends on its own, every frame by pf bins → [T_out, F_out·Cout].
 */
export function conv2d(x: ND, weight: ND, bias: ND | null, F: number, stride: [number, number], padding: [number, number], cu: number[]): ND {
  const [cout, cin, kt, kf] = weight.shape;
  const [st, sf] = stride;
  const [pt, pf] = padding;
  const fout = Math.floor((F + 2 * pf - kf) / sf) + 1;
  const rows: number[] = [];
  let nrows = 0;
  for (let s = 0; s + 1 < cu.length; s++) {
    const start = cu[s];
    const len = cu[s + 1] - cu[s];
    const lout = Math.floor((len + 2 * pt - kt) / st) + 1;
    for (let t = 0; t < lout; t++, nrows++)
      for (let fo = 0; fo < fout; fo++)
        for (let o = 0; o < cout; o++) {
          let acc = bias ? bias.data[o] : 0;
          for (let c = 0; c < cin; c++)
            for (let dt = 0; dt < kt; dt++)
              for (let df = 0; df < kf; df++) {
                const ti = t * st - pt + dt;
                const fi = fo * sf - pf + df;
                if (ti < 0 || ti >= len || fi < 0 || fi >= F) continue;
                acc += weight.data[((o * cin + c) * kt + dt) * kf + df] * x.data[(start + ti) * F * cin + fi * cin + c];
              }
          rows.push(acc);
        }
  }
  return new ND([nrows, fout * cout], Float64Array.from(rows));
}
