// Flash attention vs a naive float64 reference (test/reference/attention.ts): forward and
// backward (dQ, dK, dV) for causal/non-causal, GQA, varlen packing, head dims 32/64/128 and
// lengths that are no multiple of any tile; finite differences on a small case; bad inputs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as W from '../../src/node.ts';
import { refAttention, refAttentionGrad, type RefAttentionOptions } from '../reference/attention.ts';
import { ND } from '../reference/nd.ts';
import { checkOp, expectClose, randomData, rng } from '../helpers/check.ts';
import { useDevice } from '../helpers/device.ts';
import { subgroupKernelUsable } from '../../src/ops/matmul-select.ts';

useDevice();

interface Case {
  name: string;
  t: number;
  hq: number;
  hkv: number;
  d: number;
  causal: boolean;
  cu?: number[];
  scale?: number;
}

async function checkAgainstReference(c: Case, dtype: W.DType = 'f32', tol = 2e-5): Promise<void> {
  const r = rng(c.t * 131 + c.d * 7 + c.hq + (c.causal ? 1 : 0));
  const qd = randomData(c.t * c.hq * c.d, r, -1.5, 1.5);
  const kd = randomData(c.t * c.hkv * c.d, r, -1.5, 1.5);
  const vd = randomData(c.t * c.hkv * c.d, r);
  const gd = randomData(c.t * c.hq * c.d, r);
  const shape = { t: c.t, hq: c.hq, hkv: c.hkv, d: c.d };
  const opts: RefAttentionOptions = { causal: c.causal, cuSeqlens: c.cu, scale: c.scale };
  const q = W.Tensor.fromArray(qd, [c.t, c.hq, c.d], dtype);
  const k = W.Tensor.fromArray(kd, [c.t, c.hkv, c.d], dtype);
  const v = W.Tensor.fromArray(vd, [c.t, c.hkv, c.d], dtype);
  for (const x of [q, k, v]) x.requiresGrad = true;
  const o = W.flashAttention(q, k, v, { causal: c.causal, cuSeqlens: c.cu, scale: c.scale });
  expect(o.shape).toEqual([c.t, c.hq, c.d]);
  // f16 inputs: the reference sees the rounded values.
  const g = W.Tensor.fromArray(gd, [c.t, c.hq, c.d], dtype);
  const [qh, kh, vh, gh] = dtype === 'f32' ? [qd, kd, vd, gd] : await Promise.all([q.toArray(), k.toArray(), v.toArray(), g.toArray()]);
  expectClose(await o.toArray(), refAttention(qh, kh, vh, shape, opts), tol, tol * 10, `${c.name} forward`);
  W.backward(o, g);
  const ref = refAttentionGrad(qh, kh, vh, gh, shape, opts);
  expectClose(await q.grad!.toArray(), ref.dq, tol, tol * 10, `${c.name} dQ`);
  expectClose(await k.grad!.toArray(), ref.dk, tol, tol * 10, `${c.name} dK`);
  expectClose(await v.grad!.toArray(), ref.dv, tol, tol * 10, `${c.name} dV`);
  for (const x of [q, k, v, g, o]) {
    x.grad?.release();
    x.release();
  }
}

const cases: Case[] = [
    { name: 'T=1 D=32', t: 1, hq: 2, hkv: 2, d: 32, causal: false },
    { name: 'T=7 D=32 causal', t: 7, hq: 2, hkv: 2, d: 32, causal: true },
    { name: 'T=33 D=64 non-causal', t: 33, hq: 2, hkv: 2, d: 64, causal: false },
    { name: 'T=100 D=64 causal GQA 4/2', t: 100, hq: 4, hkv: 2, d: 64, causal: true },
    { name: 'T=100 D=128 non-causal GQA 4/1', t: 100, hq: 4, hkv: 1, d: 128, causal: false },
    { name: 'T=70 D=128 causal GQA 4/1', t: 70, hq: 4, hkv: 1, d: 128, causal: true },
    { name: 'T=130 D=32 causal (3 row blocks)', t: 130, hq: 1, hkv: 1, d: 32, causal: true },
    { name: 'varlen [1,7,33,2,57] causal GQA 4/2', t: 100, hq: 4, hkv: 2, d: 32, causal: true, cu: [0, 1, 8, 41, 43, 100] },
    { name: 'varlen [65,1,34] non-causal D=64', t: 100, hq: 2, hkv: 1, d: 64, causal: false, cu: [0, 65, 66, 100] },
    { name: 'varlen with an empty document', t: 20, hq: 2, hkv: 2, d: 32, causal: true, cu: [0, 9, 9, 20] },
    { name: 'odd head dim D=20, custom scale', t: 33, hq: 2, hkv: 1, d: 20, causal: true, scale: 0.3 },
    { name: 'T=300 D=64 causal GQA 2/1 (many tiles)', t: 300, hq: 2, hkv: 1, d: 64, causal: true },
    { name: 'T=600 D=64 causal (long: several row blocks and key tiles)', t: 600, hq: 2, hkv: 2, d: 64, causal: true },
    { name: 'varlen [250,1,149] causal GQA 4/2 D=32 (long documents)', t: 400, hq: 4, hkv: 2, d: 32, causal: true, cu: [0, 250, 251, 400] },
  ];

// Both schedules (workgroup-memory `wg` for GPUs, subgroup `sg` for CPU-SIMD adapters) run
// the same cases; the adapter's default is whichever the dispatcher picks.
for (const kind of ['wg', 'sg'] as const) {
  describe(`flash attention (${kind} schedule) vs float64 reference (forward + dQ, dK, dV)`, () => {
    beforeAll(() => {
      W.setFlashAttentionKernel(kind);
    });
    afterAll(() => {
      W.setFlashAttentionKernel(null);
    });
    for (const c of cases) {
      it(c.name, (ctx) => {
        if (kind === 'sg' && !subgroupKernelUsable(W.getDevice())) ctx.skip();
        return checkAgainstReference(c);
      });
    }
  });
}

describe('flash attention: layouts and dtypes', () => {

  it('f16 inputs are refused with a clear error (f32 only for now)', () => {
    const z = () => W.zeros([4, 1, 32], 'f16');
    expect(() => W.flashAttention(z(), z(), z())).toThrow(/flash_attention: dtype f16 is not supported yet \(f32 only\)/);
  });

  it('4-D [B, S, H, D] batches are B documents', async () => {
    const [b, s, h, d] = [2, 9, 2, 32];
    const r = rng(5);
    const qd = randomData(b * s * h * d, r);
    const kd = randomData(b * s * h * d, r);
    const vd = randomData(b * s * h * d, r);
    const o = W.flashAttention(W.tensor(qd, [b, s, h, d]), W.tensor(kd, [b, s, h, d]), W.tensor(vd, [b, s, h, d]), { causal: true });
    expect(o.shape).toEqual([b, s, h, d]);
    const ref = refAttention(qd, kd, vd, { t: b * s, hq: h, hkv: h, d }, { causal: true, cuSeqlens: [0, s, 2 * s] });
    expectClose(await o.toArray(), ref, 2e-5, 2e-4, '4-D forward');
  });

  it('strided views (q, k, v split from one fused projection) need no copies', async () => {
    const [t, hq, hkv, d] = [37, 4, 2, 32];
    const r = rng(9);
    const fused = randomData(t * (hq + 2 * hkv) * d, r);
    const x = W.tensor(fused, [t, hq + 2 * hkv, d]);
    const [q, k, v] = W.split(x, [hq, hkv, hkv], 1);
    expect(q.isContiguous).toBe(false);
    const o = W.flashAttention(q, k, v, { causal: true });
    const pick = (h0: number, hn: number) => {
      const out: number[] = [];
      for (let i = 0; i < t; i++) for (let h = h0; h < h0 + hn; h++) for (let e = 0; e < d; e++) out.push(fused[(i * (hq + 2 * hkv) + h) * d + e]);
      return out;
    };
    const ref = refAttention(pick(0, hq), pick(hq, hkv), pick(hq + hkv, hkv), { t, hq, hkv, d }, { causal: true });
    expectClose(await o.toArray(), ref, 2e-5, 2e-4, 'strided forward');
  });
});

describe('flash attention: finite differences of the engine forward', () => {
  it('small causal GQA varlen case via checkOp', async () => {
    const [t, hq, hkv, d] = [9, 2, 1, 8];
    const cu = [0, 4, 9];
    const shape = { t, hq, hkv, d };
    await checkOp({
      name: 'flash_attention',
      inputs: [{ shape: [t, hq, d] }, { shape: [t, hkv, d] }, { shape: [t, hkv, d] }],
      gpu: (q, k, v) => W.flashAttention(q, k, v, { causal: true, cuSeqlens: cu }),
      ref: (q, k, v) => new ND([t, hq, d], refAttention(q.data, k.data, v.data, shape, { causal: true, cuSeqlens: cu })),
      atol: 2e-5,
      gradTol: 2e-3,
      fdSamples: 3,
    });
  });
});

describe('flash attention: bad inputs', () => {
  const mk = (shape: number[]) => W.zeros(shape);
  it('Hq not a multiple of Hkv', () => {
    expect(() => W.flashAttention(mk([4, 3, 32]), mk([4, 2, 32]), mk([4, 2, 32]))).toThrow(
      /flash_attention: query heads Hq = 3 must be a multiple of key\/value heads Hkv = 2.*\[4, 3, 32\]/,
    );
  });
  it('mismatched head dims', () => {
    expect(() => W.flashAttention(mk([4, 2, 32]), mk([4, 2, 64]), mk([4, 2, 64]))).toThrow(/flash_attention: head dims differ: q has D = 32, k has D = 64/);
  });
  it('k and v shapes differ, token counts differ, head dim too large', () => {
    expect(() => W.flashAttention(mk([4, 2, 32]), mk([4, 2, 32]), mk([4, 1, 32]))).toThrow(/flash_attention: k \[4, 2, 32\] and v \[4, 1, 32\]/);
    expect(() => W.flashAttention(mk([4, 2, 32]), mk([5, 2, 32]), mk([5, 2, 32]))).toThrow(/flash_attention: q has 4 tokens but k and v have 5/);
    expect(() => W.flashAttention(mk([2, 1, 160]), mk([2, 1, 160]), mk([2, 1, 160]))).toThrow(/flash_attention: head dim D = 160 is not supported/);
  });
  it('cuSeqlens not starting at 0, decreasing, not ending at T', () => {
    const [q, k, v] = [mk([10, 2, 32]), mk([10, 2, 32]), mk([10, 2, 32])];
    expect(() => W.flashAttention(q, k, v, { cuSeqlens: [1, 5, 10] })).toThrow(/flash_attention: cuSeqlens must start at 0, got 1 \(cuSeqlens \[1, 5, 10\]\)/);
    expect(() => W.flashAttention(q, k, v, { cuSeqlens: [0, 6, 4, 10] })).toThrow(
      /flash_attention: cuSeqlens must be non-decreasing, but entry 2 \(4\) < entry 1 \(6\) in \[0, 6, 4, 10\]/,
    );
    expect(() => W.flashAttention(q, k, v, { cuSeqlens: [0, 5, 9] })).toThrow(/flash_attention: cuSeqlens must end at the token count T = 10, got 9/);
    expect(() => W.flashAttention(q, k, v, { cuSeqlens: [0] })).toThrow(/flash_attention: cuSeqlens needs at least 2 entries/);
  });
});
