// Float64 reference attention for tests: naive softmax(scale·q·kᵀ)·v per document and
// head over packed [T, H, D] data, with grouped-query heads and causal masking, plus its
// analytic gradients (dQ, dK, dV) for an upstream gradient dO.

export interface RefAttentionOptions {
  causal?: boolean;
  cuSeqlens?: readonly number[];
  scale?: number;
}

export interface RefAttentionShape {
  t: number;
  hq: number;
  hkv: number;
  d: number;
}

/** Visit every (document, query head, query row) with its list of visible key rows. */
function forEachRow(
  s: RefAttentionShape,
  opts: RefAttentionOptions,
  fn: (h: number, hk: number, i: number, keys: number[]) => void,
): void {
  const cu = opts.cuSeqlens ?? [0, s.t];
  const group = s.hq / s.hkv;
  for (let doc = 0; doc + 1 < cu.length; doc++) {
    const start = cu[doc];
    const end = cu[doc + 1];
    for (let h = 0; h < s.hq; h++) {
      const hk = Math.floor(h / group);
      for (let i = start; i < end; i++) {
        const last = opts.causal ? i : end - 1;
        const keys: number[] = [];
        for (let j = start; j <= last; j++) keys.push(j);
        fn(h, hk, i, keys);
      }
    }
  }
}

/** Softmax probabilities of one row (keys in `keys`), in float64. */
function rowProbs(q: ArrayLike<number>, k: ArrayLike<number>, s: RefAttentionShape, scale: number, h: number, hk: number, i: number, keys: number[]): Float64Array {
  const scores = new Float64Array(keys.length);
  let mx = -Infinity;
  keys.forEach((j, n) => {
    let dot = 0;
    for (let e = 0; e < s.d; e++) dot += q[(i * s.hq + h) * s.d + e] * k[(j * s.hkv + hk) * s.d + e];
    scores[n] = scale * dot;
    mx = Math.max(mx, scores[n]);
  });
  let sum = 0;
  for (let n = 0; n < keys.length; n++) sum += (scores[n] = Math.exp(scores[n] - mx));
  for (let n = 0; n < keys.length; n++) scores[n] /= sum;
  return scores;
}

export function refAttention(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  s: RefAttentionShape,
  opts: RefAttentionOptions = {},
): Float64Array {
  const scale = opts.scale ?? 1 / Math.sqrt(s.d);
  const out = new Float64Array(s.t * s.hq * s.d);
  forEachRow(s, opts, (h, hk, i, keys) => {
    const p = rowProbs(q, k, s, scale, h, hk, i, keys);
    const o = (i * s.hq + h) * s.d;
    keys.forEach((j, n) => {
      for (let e = 0; e < s.d; e++) out[o + e] += p[n] * v[(j * s.hkv + hk) * s.d + e];
    });
  });
  return out;
}

/** Analytic float64 gradients of L = Σ dO ∘ attention(q, k, v). */
export function refAttentionGrad(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dout: ArrayLike<number>,
  s: RefAttentionShape,
  opts: RefAttentionOptions = {},
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const scale = opts.scale ?? 1 / Math.sqrt(s.d);
  const dq = new Float64Array(s.t * s.hq * s.d);
  const dk = new Float64Array(s.t * s.hkv * s.d);
  const dv = new Float64Array(s.t * s.hkv * s.d);
  forEachRow(s, opts, (h, hk, i, keys) => {
    const p = rowProbs(q, k, s, scale, h, hk, i, keys);
    const qo = (i * s.hq + h) * s.d;
    // dP_j = dO·v_j; dS_j = P_j (dP_j − Σ_l P_l dP_l)
    const dp = new Float64Array(keys.length);
    let dsum = 0;
    keys.forEach((j, n) => {
      let acc = 0;
      for (let e = 0; e < s.d; e++) acc += dout[qo + e] * v[(j * s.hkv + hk) * s.d + e];
      dp[n] = acc;
      dsum += p[n] * acc;
    });
    keys.forEach((j, n) => {
      const ko = (j * s.hkv + hk) * s.d;
      const ds = p[n] * (dp[n] - dsum);
      for (let e = 0; e < s.d; e++) {
        dv[ko + e] += p[n] * dout[qo + e];
        dq[qo + e] += scale * ds * k[ko + e];
        dk[ko + e] += scale * ds * q[qo + e];
      }
    });
  });
  return { dq, dk, dv };
}
