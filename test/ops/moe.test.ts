// Mixture-of-experts ops and layer against a float64 reference that loops over experts
// densely: outputs and gradients (input, router, every expert weight), routing edge
// cases, the dispatch plan and permutation round trip, aux/z losses.
import { describe, expect, it } from 'vitest';
import { Tensor, backward, scope } from '../../src/node.ts';
import {
  groupedMatmul,
  moeCombine,
  moePermute,
  moePlan,
  moeTopK,
  moeUnpermute,
  readMoePlan,
  releaseMoePlan,
  routerLogSumExp,
  routerSoftmax,
  swigluFused,
  setMoeGemmVec4,
  MOE_TILE_ROWS,
} from '../../src/ops/moe.ts';
import { moeLayer, type MoeRouting } from '../../src/nn/moe.ts';
import { checkOp, expectClose, randomData, rng } from '../helpers/check.ts';
import { useDevice } from '../helpers/device.ts';
import { ND } from '../reference/nd.ts';
import { moeRef, topkRef } from '../reference/moe.ts';

useDevice();

interface LayerCase {
  name: string;
  T: number;
  D: number;
  E: number;
  F: number;
  routing: MoeRouting;
  /** Fixed data for x and the router (else uniform ±1). */
  x?: number[];
  router?: number[];
  seed?: number;
}

function layerCheck(c: LayerCase, out: 'y' | 'aux' | 'z' = 'y', grads: boolean[] = [true, true, true, true]): Promise<void> {
  const { T, D, E, F } = c;
  const pick = (r: ReturnType<typeof moeRef>): ND => (out === 'y' ? r.y : new ND([1], Float64Array.of(out === 'aux' ? r.aux : r.z)));
  return checkOp({
    name: `${c.name} (${out})`,
    inputs: [
      { shape: [T, D], data: c.x, grad: grads[0] },
      { shape: [E, D], data: c.router, grad: grads[1] },
      { shape: [E, 2 * F, D], lo: -0.5, hi: 0.5, grad: grads[2] },
      { shape: [E, D, F], lo: -0.5, hi: 0.5, grad: grads[3] },
    ],
    gpu: (x, r, gu, dn) => {
      const o = moeLayer(x, r, gu, dn, c.routing);
      if (out === 'y') return o.y;
      const v = out === 'aux' ? o.auxLoss : o.zLoss;
      return v.view([1], [1], v.offset);
    },
    ref: (x, r, gu, dn) => pick(moeRef(x, r, gu, dn, { topK: c.routing.topK, scoring: c.routing.scoring, renormalize: c.routing.renormalize })),
    atol: 2e-5,
    rtol: 2e-4,
    gradTol: 2e-3,
    fdStep: 1e-3,
    fdTol: 3e-2,
    seed: c.seed ?? 7,
  });
}

describe('MoE layer vs dense float64 reference', () => {
  it('k = 2, softmax, renormalised; T not a multiple of any tile', async () => {
    await layerCheck({ name: 'k2', T: 37, D: 12, E: 6, F: 10, routing: { topK: 2 } });
  });

  it('k = 1, no renormalisation (router gradient through the weight)', async () => {
    await layerCheck({ name: 'k1', T: 29, D: 8, E: 4, F: 6, routing: { topK: 1, renormalize: false }, seed: 11 });
  });

  it('k = 3 of 4 experts, sigmoid scores, several tiles per expert', async () => {
    await layerCheck({ name: 'k3 sigmoid', T: 70, D: 8, E: 4, F: 5, routing: { topK: 3, scoring: 'sigmoid' }, seed: 3 });
  });

  it('empty experts', async () => {
    const T = 23;
    const D = 6;
    const E = 5;
    const r = rng(5);
    const x = randomData(T * D, r, 0.1, 1);
    // Experts 1 and 4 score far below the rest for every (positive) token.
    const router = randomData(E * D, r, -0.3, 0.3);
    for (const e of [1, 4]) for (let d = 0; d < D; d++) router[e * D + d] = -3;
    const ref = moeRef(ND.from(x, [T, D]), ND.from(router, [E, D]), ND.from(new Array(E * 2 * 4 * D).fill(0), [E, 8, D]), ND.from(new Array(E * D * 4).fill(0), [E, D, 4]), { topK: 2 });
    expect(ref.counts[1]).toBe(0);
    expect(ref.counts[4]).toBe(0);
    await layerCheck({ name: 'empty experts', T, D, E, F: 4, routing: { topK: 2 }, x, router });
  });

  it('all tokens to one expert', async () => {
    const T = 41;
    const D = 6;
    const E = 4;
    const r = rng(9);
    const x = randomData(T * D, r, 0.1, 1);
    const router = randomData(E * D, r, -0.1, 0.1);
    for (let d = 0; d < D; d++) router[2 * D + d] = 3;
    const ref = moeRef(ND.from(x, [T, D]), ND.from(router, [E, D]), ND.from(new Array(E * 6 * D).fill(0), [E, 6, D]), ND.from(new Array(E * D * 3).fill(0), [E, D, 3]), { topK: 1 });
    expect(ref.counts).toEqual([0, 0, T, 0]);
    await layerCheck({ name: 'one expert', T, D, E, F: 3, routing: { topK: 1, renormalize: false }, x, router });
  });

  it('aux load-balancing loss and z-loss: values and gradients', async () => {
    const c: LayerCase = { name: 'losses', T: 31, D: 8, E: 5, F: 4, routing: { topK: 2 }, seed: 21 };
    await layerCheck(c, 'aux', [true, true, false, false]);
    await layerCheck(c, 'z', [true, true, false, false]);
    await layerCheck({ ...c, name: 'losses sigmoid', routing: { topK: 2, scoring: 'sigmoid' } }, 'aux', [true, true, false, false]);
  });
});

describe('MoE helper kernels', () => {
  it('router softmax and logsumexp (one thread per token), fused SwiGLU of [N, 2F]', async () => {
    const rowRef = (x: ND, f: (row: number[]) => number[]) => {
      const [T, E] = x.shape;
      const out: number[] = [];
      for (let t = 0; t < T; t++) out.push(...f(Array.from(x.data.subarray(t * E, (t + 1) * E))));
      return out;
    };
    const lse = (row: number[]) => {
      const m = Math.max(...row);
      return m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    };
    await checkOp({
      name: 'routerSoftmax',
      inputs: [{ shape: [45, 7], lo: -4, hi: 4 }],
      gpu: (x) => routerSoftmax(x),
      ref: (x) => new ND(x.shape, Float64Array.from(rowRef(x, (r) => r.map((v) => Math.exp(v - lse(r)))))),
    });
    await checkOp({
      name: 'routerLogSumExp',
      inputs: [{ shape: [33, 5], lo: -4, hi: 4, transposed: true }],
      gpu: (x) => routerLogSumExp(x),
      ref: (x) => new ND([33], Float64Array.from(rowRef(x, (r) => [lse(r)]))),
    });
    await checkOp({
      name: 'swigluFused',
      inputs: [{ shape: [21, 10], lo: -3, hi: 3 }],
      gpu: (h) => swigluFused(h),
      ref: (h) => {
        const out: number[] = [];
        for (let r = 0; r < 21; r++) {
          for (let c = 0; c < 5; c++) {
            const g = h.data[r * 10 + c];
            out.push((g / (1 + Math.exp(-g))) * h.data[r * 10 + 5 + c]);
          }
        }
        return new ND([21, 5], Float64Array.from(out));
      },
    });
  });
});

describe('MoE dispatch plan', () => {
  it('top-k order and ties', async () => {
    const scores = [
      [0.1, 0.5, 0.5, 0.2],
      [0.3, 0.3, 0.3, 0.3],
      [0.9, 0.0, 0.05, 0.05],
    ];
    const s = Tensor.fromArray(scores.flat(), [3, 4]);
    const idx = moeTopK(s, 3);
    expect(Array.from(await idx.toArray())).toEqual(scores.flatMap((r) => topkRef(r, 3)));
    expect(Array.from(await idx.toArray())).toEqual([1, 2, 3, 0, 1, 2, 0, 2, 3]);
    s.release();
    idx.release();
  });

  it('stable expert order, inverse permutation, offsets, tiles; round trip is the identity', async () => {
    const T = 150;
    const k = 2;
    const E = 7;
    const r = rng(3);
    // Skewed routing with empty experts 2 and 6.
    const choices = [0, 0, 0, 1, 3, 3, 4, 5, 5, 5, 5];
    const idxHost: number[] = [];
    for (let t = 0; t < T; t++) {
      const a = choices[Math.floor(r() * choices.length)];
      let b = choices[Math.floor(r() * choices.length)];
      while (b === a) b = choices[Math.floor(r() * choices.length)];
      idxHost.push(a, b);
    }
    const idx = Tensor.fromArray(idxHost, [T, k], 'i32');
    const plan = moePlan(idx, E);
    const N = T * k;
    const order = Array.from(await plan.order.toArray());
    const inv = Array.from(await plan.inv.toArray());
    const rowToken = Array.from(await plan.rowToken.toArray());
    const experts = Array.from(await plan.expertOfRow.toArray());
    const { tokensPerExpert, offsets } = await readMoePlan(plan);
    // Reference: stable sort of assignments by expert.
    const want = [...Array(N).keys()].sort((a, b) => idxHost[a] - idxHost[b] || a - b);
    expect(order).toEqual(want);
    expect(experts).toEqual(want.map((a) => idxHost[a]));
    for (let q = 0; q < N; q++) expect(inv[order[q]]).toBe(q);
    expect(rowToken).toEqual(want.map((a) => Math.floor(a / k)));
    const counts = new Array(E).fill(0);
    for (const e of idxHost) counts[e]++;
    expect(tokensPerExpert).toEqual(counts);
    expect(Array.from(await plan.tokensPerExpert.toArray())).toEqual(counts);
    expect(counts[2]).toBe(0);
    expect(counts[6]).toBe(0);
    expect(offsets[E]).toBe(N);
    // Tile table: every row of every expert covered once, tiles within one expert.
    const tiles = Array.from(await plan.tiles.toArray());
    const covered = new Array(N).fill(0);
    let used = 0;
    for (let i = 0; i < plan.maxTiles; i++) {
      const [e, r0, r1] = tiles.slice(4 * i, 4 * i + 3);
      if (e === 0xffffffff) continue;
      used++;
      expect(r1 - r0).toBeGreaterThan(0);
      expect(r1 - r0).toBeLessThanOrEqual(MOE_TILE_ROWS);
      expect(r0).toBeGreaterThanOrEqual(offsets[e]);
      expect(r1).toBeLessThanOrEqual(offsets[e + 1]);
      for (let q = r0; q < r1; q++) covered[q]++;
    }
    expect(covered.every((c) => c === 1)).toBe(true);
    expect(used).toBe(counts.reduce((s, c) => s + Math.ceil(c / MOE_TILE_ROWS), 0));

    // Round trip: unpermute(permute(x)) = each token's row repeated k times (bit-exact).
    const D = 5;
    const xHost = randomData(T * D, r);
    const x = Tensor.fromArray(xHost, [T, D]);
    const back = scope(() => moeUnpermute(moePermute(x, plan), plan));
    const got = await back.toArray();
    const rep = new Float32Array(N * D);
    for (let a = 0; a < N; a++) for (let d = 0; d < D; d++) rep[a * D + d] = Math.fround(xHost[Math.floor(a / k) * D + d]);
    expect(Array.from(got)).toEqual(Array.from(rep));
    back.release();
    x.release();
    idx.release();
    releaseMoePlan(plan);
  });

  it('grouped matmul, permute, unpermute and combine: values and gradients for a fixed plan', async () => {
    const T = 61;
    const k = 2;
    const E = 5;
    const r = rng(4);
    const idxHost: number[] = [];
    for (let t = 0; t < T; t++) {
      // Expert 3 empty, expert 0 popular (several tiles).
      const a = r() < 0.6 ? 0 : [1, 2, 4][Math.floor(r() * 3)];
      let b = [0, 1, 2, 4][Math.floor(r() * 4)];
      if (b === a) b = a === 4 ? 1 : 4;
      idxHost.push(a, b);
    }
    const idx = Tensor.fromArray(idxHost, [T, k], 'i32');
    const plan = moePlan(idx, E);
    const N = T * k;
    const order = [...Array(N).keys()].sort((a, b) => idxHost[a] - idxHost[b] || a - b);
    const K = 9;
    const O = 70; // more than one column tile (64)
    await checkOp({
      name: 'groupedMatmul',
      inputs: [{ shape: [N, K] }, { shape: [E, O, K] }],
      gpu: (x, w) => groupedMatmul(x, w, plan),
      ref: (x, w) => {
        const y = new Float64Array(N * O);
        for (let q = 0; q < N; q++) {
          const e = idxHost[order[q]];
          for (let o = 0; o < O; o++) {
            let s = 0;
            for (let c = 0; c < K; c++) s += x.data[q * K + c] * w.data[(e * O + o) * K + c];
            y[q * O + o] = s;
          }
        }
        return new ND([N, O], y);
      },
      fdSamples: 2,
    });
    // Dims that are multiples of 4 take the vec4 kernels (rows4_nt, rows4_nn, wgrad4);
    // the scalar kernels must agree on the same problem.
    for (const vec4 of [true, false]) {
      setMoeGemmVec4(vec4);
      try {
        await checkOp({
          name: `groupedMatmul (${vec4 ? 'vec4' : 'scalar'} kernels)`,
          inputs: [{ shape: [N, 8] }, { shape: [E, 36, 8] }],
          gpu: (x, w) => groupedMatmul(x, w, plan),
          ref: (x, w) => {
            const y = new Float64Array(N * 36);
            for (let q = 0; q < N; q++) {
              const e = idxHost[order[q]];
              for (let o = 0; o < 36; o++) {
                let s = 0;
                for (let c = 0; c < 8; c++) s += x.data[q * 8 + c] * w.data[(e * 36 + o) * 8 + c];
                y[q * 36 + o] = s;
              }
            }
            return new ND([N, 36], y);
          },
          fdSamples: 1,
        });
      } finally {
        setMoeGemmVec4(true);
      }
    }
    // A transposed (strided) weight view: w stored [E, K, O], used as [E, O, K].
    await checkOp({
      name: 'groupedMatmul (strided weights)',
      inputs: [{ shape: [N, 7] }, { shape: [E, 6, 7], transposed: true }],
      gpu: (x, w) => groupedMatmul(x, w, plan),
      ref: (x, w) => {
        const y = new Float64Array(N * 6);
        for (let q = 0; q < N; q++) {
          const e = idxHost[order[q]];
          for (let o = 0; o < 6; o++) {
            let s = 0;
            for (let c = 0; c < 7; c++) s += x.data[q * 7 + c] * w.data[(e * 6 + o) * 7 + c];
            y[q * 6 + o] = s;
          }
        }
        return new ND([N, 6], y);
      },
      fdSamples: 2,
    });
    await checkOp({
      name: 'moePermute',
      inputs: [{ shape: [T, 3] }],
      gpu: (x) => moePermute(x, plan),
      ref: (x) => new ND([N, 3], Float64Array.from({ length: N * 3 }, (_, i) => x.data[Math.floor(order[Math.floor(i / 3)] / k) * 3 + (i % 3)])),
    });
    await checkOp({
      name: 'moeCombine',
      inputs: [{ shape: [N, 4] }, { shape: [T, k] }],
      gpu: (yp, w) => moeCombine(yp, w, plan),
      ref: (yp, w) => {
        const inv = new Array<number>(N);
        order.forEach((a, q) => (inv[a] = q));
        const y = new Float64Array(T * 4);
        for (let t = 0; t < T; t++) for (let j = 0; j < k; j++) for (let d = 0; d < 4; d++) y[t * 4 + d] += w.data[t * k + j] * yp.data[inv[t * k + j] * 4 + d];
        return new ND([T, 4], y);
      },
    });
    idx.release();
    releaseMoePlan(plan);
  });

  it('expert-weight gradients of an empty expert are exactly zero; forward is deterministic', async () => {
    const T = 19;
    const D = 8;
    const E = 4;
    const F = 4;
    const r = rng(8);
    const x = Tensor.fromArray(randomData(T * D, r, 0.1, 1), [T, D]);
    const routerHost = randomData(E * D, r, -0.2, 0.2);
    for (let d = 0; d < D; d++) routerHost[3 * D + d] = -4;
    const router = Tensor.fromArray(routerHost, [E, D]);
    const gu = Tensor.fromArray(randomData(E * 2 * F * D, r), [E, 2 * F, D]);
    const dn = Tensor.fromArray(randomData(E * D * F, r), [E, D, F]);
    for (const t of [router, gu, dn]) t.requiresGrad = true;
    const run = async () => {
      const y = scope(() => {
        const o = moeLayer(x, router, gu, dn, { topK: 2 });
        backward(o.y, Tensor.fromArray(randomData(T * D, rng(1)), [T, D]));
        return o.y;
      });
      const out = { y: await y.toArray(), gu: await gu.grad!.toArray(), dn: await dn.grad!.toArray(), r: await router.grad!.toArray() };
      y.release();
      for (const t of [router, gu, dn]) {
        t.grad!.release();
        t.grad = null;
      }
      return out;
    };
    const a = await run();
    const b = await run();
    expect(Array.from(a.y)).toEqual(Array.from(b.y));
    expect(Array.from(a.gu)).toEqual(Array.from(b.gu));
    expect(Array.from(a.dn)).toEqual(Array.from(b.dn));
    expect(Array.from(a.r)).toEqual(Array.from(b.r));
    expect(a.gu.subarray(3 * 2 * F * D).every((v) => v === 0)).toBe(true);
    expect(a.dn.subarray(3 * D * F).every((v) => v === 0)).toBe(true);
    expect(a.gu.subarray(0, 2 * F * D).some((v) => v !== 0)).toBe(true);
    expectClose([a.y.length], [T * D], 0, 0, 'shape');
    for (const t of [x, router, gu, dn]) t.release();
  });
});
