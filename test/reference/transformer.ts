// Float64 references of the fused transformer ops (norms, RoPE, SwiGLU, cross-entropy,
// gradient clipping). Plain loops over row-major data; gradients come from central
// differences in the test helper, so only forward semantics live here.
import { ND, sigmoid } from './nd.ts';

function rowsOf(x: ND): [number, number] {
  const d = x.shape[x.rank - 1];
  return [d === 0 ? 0 : x.size / d, d];
}

/** y = x / sqrt(mean(x²) + eps) · w over the last axis. */
export function rmsNorm(x: ND, w: ND, eps: number): ND {
  const [rows, d] = rowsOf(x);
  const out = new Float64Array(x.size);
  for (let r = 0; r < rows; r++) {
    let q = 0;
    for (let i = 0; i < d; i++) q += x.data[r * d + i] ** 2;
    const rstd = 1 / Math.sqrt(q / d + eps);
    for (let i = 0; i < d; i++) out[r * d + i] = x.data[r * d + i] * rstd * w.data[i];
  }
  return new ND([...x.shape], out);
}

/** torch.nn.functional.layer_norm over the last axis (biased variance). */
export function layerNorm(x: ND, w: ND, b: ND | null, eps: number): ND {
  const [rows, d] = rowsOf(x);
  const out = new Float64Array(x.size);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let i = 0; i < d; i++) s += x.data[r * d + i];
    const mean = s / d;
    let q = 0;
    for (let i = 0; i < d; i++) q += (x.data[r * d + i] - mean) ** 2;
    const rstd = 1 / Math.sqrt(q / d + eps);
    for (let i = 0; i < d; i++) out[r * d + i] = (x.data[r * d + i] - mean) * rstd * w.data[i] + (b ? b.data[i] : 0);
  }
  return new ND([...x.shape], out);
}

/**
 * Rotary embedding, rotate-half convention (Llama / Hugging Face), on x [T, H, D] with
 * integer positions [T]: the first `rotaryDim` dims rotate in pairs (i, i + r/2) by
 * pos·theta^(−2i/r); the rest pass through. `sign` −1 rotates backwards.
 */
export function rope(x: ND, positions: ArrayLike<number>, theta = 10000, rotaryDim?: number, sign = 1): ND {
  const [T, H, D] = x.shape;
  const r = rotaryDim ?? D;
  const half = r / 2;
  const out = x.data.slice();
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      const ang = sign * positions[t] * theta ** (-(2 * i) / r);
      const c = Math.cos(ang);
      const s = Math.sin(ang);
      for (let h = 0; h < H; h++) {
        const o = (t * H + h) * D;
        const x1 = x.data[o + i];
        const x2 = x.data[o + i + half];
        out[o + i] = x1 * c - x2 * s;
        out[o + i + half] = x2 * c + x1 * s;
      }
    }
  }
  return new ND([...x.shape], out);
}

/** silu(gate) · up. */
export function swiglu(gate: ND, up: ND): ND {
  const out = new Float64Array(gate.size);
  for (let i = 0; i < gate.size; i++) {
    const g = gate.data[i];
    out[i] = g * sigmoid(g) * up.data[i];
  }
  return new ND([...gate.shape], out);
}

export interface CrossEntropyRefOptions {
  ignoreIndex?: number;
  zLoss?: number;
  reduction?: 'mean' | 'sum' | 'none';
  normalizer?: number;
}

/**
 * Cross-entropy of logits [N, V] against integer targets [N]: per row lse − x[t] +
 * zLoss·lse²; ignored rows contribute 0; 'mean' divides by the count of non-ignored rows
 * (0 when there are none) or by `normalizer` when given.
 */
export function crossEntropy(logits: ND, targets: ArrayLike<number>, opts: CrossEntropyRefOptions = {}): ND {
  const ignore = opts.ignoreIndex ?? -100;
  const z = opts.zLoss ?? 0;
  const [rows, V] = rowsOf(logits);
  const per = new Float64Array(rows);
  let count = 0;
  for (let r = 0; r < rows; r++) {
    const t = targets[r];
    if (t === ignore) continue;
    count++;
    let m = -Infinity;
    for (let i = 0; i < V; i++) m = Math.max(m, logits.data[r * V + i]);
    let s = 0;
    for (let i = 0; i < V; i++) s += Math.exp(logits.data[r * V + i] - m);
    const lse = m + Math.log(s);
    per[r] = lse - logits.data[r * V + t] + z * lse * lse;
  }
  const reduction = opts.reduction ?? 'mean';
  if (reduction === 'none') return new ND(logits.shape.slice(0, -1), per);
  const sum = per.reduce((a, b) => a + b, 0);
  if (reduction === 'sum') return new ND([], Float64Array.of(sum));
  const div = opts.normalizer ?? count;
  return new ND([], Float64Array.of(div === 0 ? 0 : sum / div));
}

/** torch.nn.utils.clip_grad_norm_: returns the total norm and the clipped gradients. */
export function clipGradNorm(grads: number[][], maxNorm: number): { norm: number; clipped: number[][] } {
  let s = 0;
  for (const g of grads) for (const v of g) s += v * v;
  const norm = Math.sqrt(s);
  const scale = Math.min(1, maxNorm / (norm + 1e-6));
  return { norm, clipped: grads.map((g) => g.map((v) => v * scale)) };
}
