import { describe, expect, it } from 'vitest';
import * as W from '../../src/node.ts';
import { conv1d as refConv1d, unfold1d as refUnfold1d } from '../reference/conv.ts';
import { ND } from '../reference/nd.ts';
import { checkOp, expectClose, randomData, rng } from '../helpers/check.ts';
import { useDevice } from '../helpers/device.ts';

useDevice();

function check(name: string, cu: number[], cin: number, cout: number, k: number, stride: number, padding: number, opts: { bias?: boolean; transposed?: boolean } = {}) {
  const T = cu[cu.length - 1];
  const bias = opts.bias !== false;
  return checkOp({
    name,
    inputs: [{ shape: [T, cin], transposed: opts.transposed }, { shape: [cout, cin, k] }, ...(bias ? [{ shape: [cout] }] : [])],
    gpu: (x, w, b) => W.conv1d(x, w, b ?? null, { stride, padding, cuSeqlens: cu }),
    ref: (x, w, b) => refConv1d(x, w, b ?? null, stride, padding, cu),
    fdSamples: 3,
  });
}

describe('conv1d over packed sequences', () => {
  it('unfold1d (im2col) alone vs its reference, with its gather backward', async () => {
    await checkOp({ name: 'unfold1d', inputs: [{ shape: [11, 2] }], gpu: (x) => W.unfold1d(x, 4, { stride: 3, padding: 2, cuSeqlens: [0, 5, 11] }), ref: (x) => refUnfold1d(x, 4, 3, 2, [0, 5, 11]) });
  });
  it('stride 1, padding 1, one sequence: forward + backward (x, weight, bias)', async () => {
    await check('conv1d s1 p1', [0, 9], 3, 4, 3, 1, 1);
  });
  it('stride 2, padding 1, three sequences (lengths 5, 1, 7): no leakage across sequences', async () => {
    await check('conv1d s2 p1 packed', [0, 5, 6, 13], 3, 5, 3, 2, 1);
  });
  it('stride 2 without padding, even kernel, no bias; stride 3 with padding 2; kernel 1', async () => {
    await check('conv1d s2 p0 k4', [0, 8, 17], 2, 3, 4, 2, 0, { bias: false });
    await check('conv1d s3 p2 k5', [0, 6, 10], 2, 2, 5, 3, 2);
    await check('conv1d k1', [0, 4, 7], 5, 3, 1, 1, 0);
  });
  it('strided (transposed) input rows', async () => {
    await check('conv1d transposed x', [0, 6, 11], 4, 3, 3, 2, 1, { transposed: true });
  });
  it('f16 tensors (shader-f16): unfold and its fold backward in half precision', async () => {
    await checkOp({
      name: 'unfold1d f16',
      dtype: 'f16',
      inputs: [{ shape: [9, 3] }],
      gpu: (x) => W.unfold1d(x, 3, { stride: 2, padding: 1, cuSeqlens: [0, 4, 9] }),
      ref: (x) => refUnfold1d(x, 3, 2, 1, [0, 4, 9]),
      atol: 1e-2,
      rtol: 1e-2,
      gradTol: 3e-2,
      fdTol: 0,
    });
  });

  it('output lengths and cuSeqlens helpers follow ⌊(L + 2p − K)/s⌋ + 1 (Whisper: 100 frames → 50)', () => {
    expect(W.conv1dOutputLength(100, 3, 2, 1)).toBe(50);
    expect(W.conv1dOutputLength(101, 3, 2, 1)).toBe(51);
    expect(W.conv1dOutputLength(7, 3, 1, 1)).toBe(7);
    expect(W.conv1dCuSeqlens([0, 5, 6, 13], 3, 2, 1)).toEqual([0, 3, 4, 8]);
  });
  it('a larger packed batch matches the reference (Whisper-like stem: k3 s1 then k3 s2, GELU)', async () => {
    const r = rng(11);
    const cu = [0, 100, 137, 250];
    const [cin, ch] = [16, 12];
    const xd = randomData(250 * cin, r);
    const w1 = randomData(ch * cin * 3, r, -0.3, 0.3);
    const w2 = randomData(ch * ch * 3, r, -0.3, 0.3);
    const x = W.tensor(xd, [250, cin]);
    const h = W.gelu(W.conv1d(x, W.tensor(w1, [ch, cin, 3]), null, { padding: 1, cuSeqlens: cu }));
    const y = W.conv1d(h, W.tensor(w2, [ch, ch, 3]), null, { stride: 2, padding: 1, cuSeqlens: cu });
    expect(y.shape).toEqual([W.conv1dCuSeqlens(cu, 3, 2, 1)[3], ch]);
    const erf = (z: number) => {
      // Abramowitz–Stegun 7.1.26 is not exact enough; integrate instead.
      let s = 0;
      const n = 2000;
      for (let i = 0; i < n; i++) {
        const t = (z * (i + 0.5)) / n;
        s += Math.exp(-t * t);
      }
      return ((2 / Math.sqrt(Math.PI)) * s * z) / n;
    };
    const hr = refConv1d(ND.from(xd, [250, cin]), ND.from(w1, [ch, cin, 3]), null, 1, 1, cu);
    const hg = new ND(hr.shape, hr.data.map((v) => 0.5 * v * (1 + erf(v / Math.SQRT2))));
    const yr = refConv1d(hg, ND.from(w2, [ch, ch, 3]), null, 2, 1, cu);
    expectClose(await y.toArray(), yr.data, 1e-4, 1e-3, 'conv stem');
  });
  it('bad inputs name the problem', () => {
    const x = W.zeros([10, 3]);
    expect(() => W.conv1d(x, W.zeros([4, 2, 3]), null)).toThrow(/conv1d: input has 3 channels but the weight expects 2/);
    expect(() => W.conv1d(x, W.zeros([4, 3]), null)).toThrow(/weight must be \[C_out, C_in, K\]/);
    expect(() => W.conv1d(x, W.zeros([4, 3, 5]), null, { cuSeqlens: [0, 8, 10] })).toThrow(/sequence 1 has 2 rows, too short for kernel 5/);
    expect(() => W.conv1d(x, W.zeros([4, 3, 3]), null, { cuSeqlens: [0, 8] })).toThrow(/cuSeqlens must run from 0 to the row count 10/);
    expect(() => W.conv1d(x, W.zeros([4, 3, 3]), null, { stride: 0 })).toThrow(/stride must be an integer ≥ 1/);
    expect(() => W.conv1d(x, W.zeros([4, 3, 3]), W.zeros([3]))).toThrow(/bias must be \[4\]/);
  });
});
