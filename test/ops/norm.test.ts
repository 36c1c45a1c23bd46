import { describe, expect, it } from 'vitest';
import * as W from '../../src/node.ts';
import { layerNorm as refLayerNorm, rmsNorm as refRmsNorm } from '../reference/transformer.ts';
import { checkOp, expectClose, randomData, rng } from '../helpers/check.ts';
import { useDevice } from '../helpers/device.ts';

useDevice();

describe('rmsNorm', () => {
  it('forward + backward (x and weight) vs float64, odd sizes, short and long rows', async () => {
    for (const shape of [[5, 7], [3, 2, 33], [300, 9], [2, 1500]]) {
      const d = shape[shape.length - 1];
      await checkOp({
        name: `rms_norm ${shape}`,
        inputs: [{ shape }, { shape: [d], lo: 0.5, hi: 1.5 }],
        gpu: (x, w) => W.rmsNorm(x, w, 1e-5),
        ref: (x, w) => refRmsNorm(x, w, 1e-5),
        fdSamples: 2,
      });
    }
  });
  it('reads a non-contiguous input (transposed; a column slice) ', async () => {
    await checkOp({
      name: 'rms_norm transposed',
      inputs: [{ shape: [6, 11], transposed: true }, { shape: [11], lo: 0.5, hi: 1.5 }],
      gpu: (x, w) => W.rmsNorm(x, w, 1e-6),
      ref: (x, w) => refRmsNorm(x, w, 1e-6),
    });
    // A slice of the last dim (strided rows, no copy), and its backward.
    const r = rng(5);
    const full = randomData(4 * 10, r);
    const wData = randomData(6, r, 0.5, 1.5);
    const base = W.tensor(full, [4, 10]);
    const x = W.narrow(base, 1, 3, 6);
    const w = W.tensor(wData, [6]);
    w.requiresGrad = true;
    const y = W.rmsNorm(x, w, 1e-6);
    const xs = Array.from({ length: 24 }, (_, i) => full[Math.floor(i / 6) * 10 + 3 + (i % 6)]);
    const { ND } = await import('../reference/nd.ts');
    expectClose(await y.toArray(), refRmsNorm(ND.from(xs, [4, 6]), ND.from(wData, [6]), 1e-6).data, 1e-5, 1e-4, 'rms_norm slice');
    W.backward(W.sum(y));
    expect(w.grad!.shape).toEqual([6]);
  });
});

describe('layerNorm', () => {
  it('forward + backward (x, weight, bias) vs float64, odd sizes', async () => {
    for (const shape of [[5, 7], [3, 2, 33], [257, 5], [2, 1100]]) {
      const d = shape[shape.length - 1];
      await checkOp({
        name: `layer_norm ${shape}`,
        inputs: [{ shape, lo: -1, hi: 2 }, { shape: [d], lo: 0.5, hi: 1.5 }, { shape: [d] }],
        gpu: (x, w, b) => W.layerNorm(x, w, b, 1e-5),
        ref: (x, w, b) => refLayerNorm(x, w, b, 1e-5),
        fdSamples: 2,
      });
    }
  });
  it('without bias, and on a transposed input', async () => {
    await checkOp({
      name: 'layer_norm no bias',
      inputs: [{ shape: [9, 13] }, { shape: [13], lo: 0.5, hi: 1.5 }],
      gpu: (x, w) => W.layerNorm(x, w, null, 1e-5),
      ref: (x, w) => refLayerNorm(x, w, null, 1e-5),
    });
    await checkOp({
      name: 'layer_norm transposed',
      inputs: [{ shape: [7, 5], transposed: true }, { shape: [5], lo: 0.5, hi: 1.5 }, { shape: [5] }],
      gpu: (x, w, b) => W.layerNorm(x, w, b, 1e-5),
      ref: (x, w, b) => refLayerNorm(x, w, b, 1e-5),
    });
  });
  it('dweight/dbias are deterministic across runs (no atomics)', async () => {
    const r = rng(3);
    const x = W.tensor(randomData(600 * 40, r), [600, 40]);
    const w = W.tensor(randomData(40, r), [40]);
    const b = W.tensor(randomData(40, r), [40]);
    const gy = W.tensor(randomData(600 * 40, r), [600, 40]);
    const runs: Float32Array[] = [];
    for (let k = 0; k < 2; k++) {
      w.requiresGrad = b.requiresGrad = true;
      W.backward(W.layerNorm(x, w, b, 1e-5), gy);
      runs.push((await w.grad!.toArray()) as Float32Array);
      w.grad = b.grad = null;
    }
    expect(Array.from(runs[1])).toEqual(Array.from(runs[0]));
  });
});

describe('wide rows', () => {
  it('D = 4500 (wider than the register-held columns of the backward) vs closed-form float64 gradients', async () => {
    const [R, D] = [3, 4500];
    const r = rng(17);
    const xd = randomData(R * D, r, -1, 2);
    const wd = randomData(D, r, 0.5, 1.5);
    const bd = randomData(D, r);
    const gd = randomData(R * D, r);
    for (const layer of [false, true]) {
      const x = W.tensor(xd, [R, D]);
      const w = W.tensor(wd, [D]);
      const b = W.tensor(bd, [D]);
      x.requiresGrad = w.requiresGrad = b.requiresGrad = true;
      const y = layer ? W.layerNorm(x, w, b, 1e-5) : W.rmsNorm(x, w, 1e-5);
      W.backward(y, W.tensor(gd, [R, D]));
      const dx = new Float64Array(R * D);
      const dw = new Float64Array(D);
      const db = new Float64Array(D);
      for (let i = 0; i < R; i++) {
        const row = xd.slice(i * D, (i + 1) * D);
        const mean = layer ? row.reduce((a, v) => a + v, 0) / D : 0;
        const rstd = 1 / Math.sqrt(row.reduce((a, v) => a + (v - mean) ** 2, 0) / D + 1e-5);
        const xh = row.map((v) => (v - mean) * rstd);
        const g = xh.map((_, j) => gd[i * D + j] * wd[j]);
        const mg = g.reduce((a, v) => a + v, 0) / D;
        const mgx = g.reduce((a, v, j) => a + v * xh[j], 0) / D;
        for (let j = 0; j < D; j++) {
          dx[i * D + j] = rstd * (g[j] - xh[j] * mgx - (layer ? mg : 0));
          dw[j] += gd[i * D + j] * xh[j];
          db[j] += gd[i * D + j];
        }
      }
      const what = layer ? 'layer_norm' : 'rms_norm';
      expectClose(await x.grad!.toArray(), dx, 1e-4, 1e-3, `${what} wide dx`);
      expectClose(await w.grad!.toArray(), dw, 1e-4, 1e-3, `${what} wide dweight`);
      if (layer) expectClose(await b.grad!.toArray(), db, 1e-4, 1e-3, `${what} wide dbias`);
    }
  });
});

describe('many rows', () => {
  it('more rows than one grid dimension holds (70k rows): forward and dweight', async () => {
    const [N, D] = [70_000, 3];
    const r = rng(15);
    const data = Float32Array.from(randomData(N * D, r));
    const x = W.tensor(data, [N, D]);
    const w = W.tensor([0.5, 1, 2], [D]);
    w.requiresGrad = true;
    const y = W.rmsNorm(x, w, 1e-5);
    const got = await y.toArray();
    const { ND } = await import('../reference/nd.ts');
    const ref = refRmsNorm(ND.from(data, [N, D]), ND.from([0.5, 1, 2], [D]), 1e-5);
    expectClose(got.slice(-3 * D), ref.data.slice(-3 * D), 1e-5, 1e-4, 'last rows');
    W.backward(W.sum(y));
    // d/dw Σ y = Σ_rows x̂
    const dw = [0, 0, 0];
    for (let i = 0; i < N; i++) for (let j = 0; j < D; j++) dw[j] += ref.data[i * D + j] / [0.5, 1, 2][j];
    expectClose(await w.grad!.toArray(), dw, 1e-3, 1e-4, 'dweight over 70k rows');
  });
});

describe('norm errors', () => {
  it('name the op, the shapes and the problem', () => {
    const x = W.zeros([4, 8]);
    expect(() => W.rmsNorm(x, W.ones([7]))).toThrow(/rms_norm: weight must have shape \[8\].*got \[7\].*\[4, 8\] f32, \[7\] f32/);
    expect(() => W.layerNorm(x, W.ones([8]), W.zeros([3]))).toThrow(/layer_norm: bias must have shape \[8\].*got \[3\]/);
    expect(() => W.rmsNorm(W.zeros([4, 8], 'i32'), W.ones([8]))).toThrow(/rms_norm: dtype i32 is not supported/);
    expect(() => W.rmsNorm(x, W.ones([8]), -1)).toThrow(/rms_norm: eps must be a finite number/);
  });
});
