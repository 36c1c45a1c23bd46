// Float64 reference of a top-k mixture-of-experts SwiGLU layer that loops over the experts
// densely: every expert runs on every token and its output is weighted by the token's
// routing weight for it (0 when not chosen). Same routing rules as the engine: softmax or
// sigmoid scores, top-k by descending score with ties to the lower expert index,
// optional renormalisation; Switch/GShard aux loss E·Σ f_e·P_e with f_e = count_e / (T·k)
// and P_e the mean (per-token normalised) score; z-loss mean(logsumexp(logits)²).
import { ND } from './nd.ts';

export interface MoeRefOptions {
  topK: number;
  scoring?: 'softmax' | 'sigmoid';
  renormalize?: boolean;
}

export interface MoeRefResult {
  y: ND;
  aux: number;
  z: number;
  /** Chosen experts per token. */
  indices: number[][];
  counts: number[];
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
const silu = (v: number) => v * sigmoid(v);

/** Top-k of one row: descending value, ties to the lower index (strict > while scanning up). */
export function topkRef(row: ArrayLike<number>, k: number): number[] {
  const chosen: number[] = [];
  for (let j = 0; j < k; j++) {
    let best = -1;
    for (let e = 0; e < row.length; e++) {
      if (chosen.includes(e)) continue;
      if (best < 0 || row[e] > row[best]) best = e;
    }
    chosen.push(best);
  }
  return chosen;
}

export function moeRef(x: ND, router: ND, gateUp: ND, down: ND, o: MoeRefOptions): MoeRefResult {
  const [T, D] = x.shape;
  const E = router.shape[0];
  const F = down.shape[2];
  const k = o.topK;
  const logits = new Float64Array(T * E);
  for (let t = 0; t < T; t++) {
    for (let e = 0; e < E; e++) {
      let s = 0;
      for (let d = 0; d < D; d++) s += x.data[t * D + d] * router.data[e * D + d];
      logits[t * E + e] = s;
    }
  }
  const scores = new Float64Array(T * E);
  let z = 0;
  for (let t = 0; t < T; t++) {
    const row = logits.subarray(t * E, (t + 1) * E);
    const m = Math.max(...row);
    let se = 0;
    for (let e = 0; e < E; e++) se += Math.exp(row[e] - m);
    const lse = m + Math.log(se);
    z += lse * lse;
    for (let e = 0; e < E; e++) scores[t * E + e] = o.scoring === 'sigmoid' ? sigmoid(row[e]) : Math.exp(row[e] - lse);
  }
  z /= T;
  // Routing weight of every (token, expert): 0 when not chosen.
  const gate = new Float64Array(T * E);
  const indices: number[][] = [];
  const counts = new Array<number>(E).fill(0);
  const meanP = new Float64Array(E);
  for (let t = 0; t < T; t++) {
    const row = scores.subarray(t * E, (t + 1) * E);
    const idx = topkRef(row, k);
    indices.push(idx);
    let norm = 0;
    for (const e of idx) norm += row[e];
    for (const e of idx) {
      gate[t * E + e] = (o.renormalize ?? true) ? row[e] / norm : row[e];
      counts[e]++;
    }
    let tot = 0;
    for (let e = 0; e < E; e++) tot += row[e];
    for (let e = 0; e < E; e++) meanP[e] += (o.scoring === 'sigmoid' ? row[e] / tot : row[e]) / T;
  }
  let aux = 0;
  for (let e = 0; e < E; e++) aux += (counts[e] / (T * k)) * meanP[e];
  aux *= E;

  const y = new Float64Array(T * D);
  const h = new Float64Array(F);
  for (let e = 0; e < E; e++) {
    const gu = e * 2 * F * D;
    const dn = e * D * F;
    for (let t = 0; t < T; t++) {
      for (let f = 0; f < F; f++) {
        let g = 0;
        let u = 0;
        for (let d = 0; d < D; d++) {
          const xv = x.data[t * D + d];
          g += gateUp.data[gu + f * D + d] * xv;
          u += gateUp.data[gu + (F + f) * D + d] * xv;
        }
        h[f] = silu(g) * u;
      }
      const w = gate[t * E + e];
      for (let d = 0; d < D; d++) {
        let s = 0;
        for (let f = 0; f < F; f++) s += down.data[dn + d * F + f] * h[f];
        y[t * D + d] += w * s;
      }
    }
  }
  return { y: new ND([T, D], y), aux, z, indices, counts };
}
