import { describe, expect, it } from 'vitest';
import * as W from '../../src/node.ts';
import { crossEntropy as refCE, type CrossEntropyRefOptions } from '../reference/transformer.ts';
import { checkOp, expectClose, randomData, rng } from '../helpers/check.ts';
import { useDevice } from '../helpers/device.ts';

useDevice();

function randomTargets(n: number, V: number, seed: number, ignoredEvery = 0): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, (_, i) => (ignoredEvery && i % ignoredEvery === ignoredEvery - 1 ? -100 : Math.floor(r() * V)));
}

async function checkCE(name: string, shape: number[], targets: number[], opts: W.CrossEntropyOptions & CrossEntropyRefOptions, extra: { lo?: number; hi?: number; transposed?: boolean; fdTol?: number } = {}): Promise<void> {
  const t = W.tensor(targets, shape.slice(0, -1), 'i32');
  try {
    await checkOp({
      name,
      inputs: [{ shape, lo: extra.lo ?? -3, hi: extra.hi ?? 3, transposed: extra.transposed }],
      gpu: (x) => W.crossEntropy(x, t, opts),
      ref: (x) => refCE(x, targets, opts),
      fdTol: extra.fdTol,
      fdSamples: 3,
    });
  } finally {
    t.release();
  }
  await W.checkCrossEntropyTargets();
}

describe('crossEntropy', () => {
  it("'mean' over non-ignored rows, forward + backward vs float64 (odd rows, short rows)", async () => {
    await checkCE('ce mean', [7, 11], randomTargets(7, 11, 1, 3), {});
  });
  it("long rows (one workgroup per row, strided loop): 'sum'", async () => {
    await checkCE('ce sum long', [5, 1300], randomTargets(5, 1300, 2, 4), { reduction: 'sum' });
  });
  it("'none' returns per-row losses with the targets' shape (3-d logits); ignored rows are 0", async () => {
    await checkCE('ce none', [3, 4, 9], randomTargets(12, 9, 3, 5), { reduction: 'none' });
  });
  it('z-loss value and gradient; normalizer replaces the token count', async () => {
    await checkCE('ce zloss', [6, 13], randomTargets(6, 13, 4, 4), { zLoss: 0.05 });
    await checkCE('ce normalizer', [6, 13], randomTargets(6, 13, 5, 3), { normalizer: 17 });
    await checkCE('ce zloss none', [4, 10], randomTargets(4, 10, 6, 3), { zLoss: 0.1, reduction: 'none' });
  });
  it("'sum' = 'mean' · count and normalizer divides the sum", async () => {
    const r = rng(7);
    const x = W.tensor(randomData(8 * 20, r, -2, 2), [8, 20]);
    const t = W.tensor(randomTargets(8, 20, 7, 4), [8], 'i32'); // 2 of 8 ignored
    const s = await W.crossEntropy(x, t, { reduction: 'sum' }).item();
    const m = await W.crossEntropy(x, t).item();
    const n = await W.crossEntropy(x, t, { normalizer: 100 }).item();
    expect(m).toBeCloseTo(s / 6, 5);
    expect(n).toBeCloseTo(s / 100, 6);
  });
  it('all-ignored batch: loss 0 (not NaN) and zero gradient', async () => {
    const x = W.tensor(randomData(3 * 5, rng(8)), [3, 5]);
    x.requiresGrad = true;
    const t = W.tensor([-1, -1, -1], [3], 'i32');
    const loss = W.crossEntropy(x, t, { ignoreIndex: -1, zLoss: 0.1 });
    expect(await loss.item()).toBe(0);
    W.backward(loss);
    expect(Array.from(await x.grad!.toArray())).toEqual(new Array(15).fill(0));
  });
  it('non-contiguous logits: transposed (compacted) and a row slice (read in place)', async () => {
    await checkCE('ce transposed', [5, 6], randomTargets(5, 6, 9), {}, { transposed: true });
    const r = rng(10);
    const data = randomData(6 * 9, r);
    const base = W.tensor(data, [6, 9]);
    const view = W.narrow(base, 0, 2, 3); // rows 2..4
    const targets = [4, 0, 8];
    const got = await W.crossEntropy(view, W.tensor(targets, [3], 'i32'), { reduction: 'none' }).toArray();
    const { ND } = await import('../reference/nd.ts');
    expectClose(got, refCE(ND.from(data.slice(18, 45), [3, 9]), targets, { reduction: 'none' }).data, 1e-5, 1e-5, 'row slice');
  });
  it('is stable for large logits and for -inf (masked) classes', async () => {
    await checkCE('ce big', [4, 7], randomTargets(4, 7, 11), {}, { lo: 80, hi: 100, fdTol: 0 });
    const ninf = -Infinity;
    const x = W.tensor([0, ninf, 1, ninf, ninf, 2, 0.5, ninf], [2, 4]);
    x.requiresGrad = true;
    const loss = W.crossEntropy(x, W.tensor([0, 2], [2], 'i32'), { reduction: 'sum' });
    const l0 = Math.log(1 + Math.E) - 0;
    const l1 = Math.log(Math.exp(2) + Math.exp(0.5)) - 0.5;
    expect(await loss.item()).toBeCloseTo(l0 + l1, 5);
    W.backward(loss);
    const g = await x.grad!.toArray();
    expect(g[1]).toBe(0);
    expect(g[3]).toBe(0);
    expect(g[0]).toBeCloseTo(1 / (1 + Math.E) - 1, 5);
  });
  it('a 32k vocabulary: values and gradient vs the analytic softmax − onehot', async () => {
    const [N, V] = [3, 32_000];
    const r = rng(12);
    const data = Float32Array.from(randomData(N * V, r, -4, 4));
    const targets = [31_999, 0, 12_345];
    const x = W.tensor(data, [N, V]);
    x.requiresGrad = true;
    const loss = W.crossEntropy(x, W.tensor(targets, [N], 'i32'), { zLoss: 1e-3 });
    const { ND } = await import('../reference/nd.ts');
    expect(await loss.item()).toBeCloseTo(refCE(ND.from(data, [N, V]), targets, { zLoss: 1e-3 }).data[0], 4);
    W.backward(loss);
    const g = await x.grad!.toArray();
    const want = new Float64Array(N * V);
    for (let i = 0; i < N; i++) {
      let m = -Infinity;
      for (let j = 0; j < V; j++) m = Math.max(m, data[i * V + j]);
      let s = 0;
      for (let j = 0; j < V; j++) s += Math.exp(data[i * V + j] - m);
      const lse = m + Math.log(s);
      for (let j = 0; j < V; j++) {
        const p = Math.exp(data[i * V + j] - lse);
        want[i * V + j] = (p * (1 + 2e-3 * lse) - (j === targets[i] ? 1 : 0)) / N;
      }
    }
    expectClose(g, want, 1e-8, 1e-4, 'dlogits 32k');
  });
  it('inplaceBackward writes dlogits over the logits storage (no extra buffer), same values', async () => {
    const [N, V] = [6, 300];
    const r = rng(16);
    const data = randomData(N * V, r, -3, 3);
    const targets = randomTargets(N, V, 16, 4);
    const grads: Float32Array[] = [];
    const peaks: number[] = [];
    const pool = W.getDevice().pool;
    for (const inplace of [false, true]) {
      const h = W.tensor(data, [N, V]);
      h.requiresGrad = true;
      const logits = W.mulScalar(h, 1); // a non-leaf: its gradient flows on to h
      const loss = W.crossEntropy(logits, W.tensor(targets, [N], 'i32'), { zLoss: 1e-2, inplaceBackward: inplace });
      pool.resetPeak();
      const live = pool.snapshot.liveBytes;
      W.backward(loss);
      peaks.push(pool.snapshot.peakLiveBytes - live);
      grads.push((await h.grad!.toArray()) as Float32Array);
      if (inplace) {
        // The logits now hold their gradient.
        expectClose(await logits.toArray(), grads[1], 0, 0, 'logits storage holds dlogits');
      }
    }
    expectClose(grads[1], grads[0], 1e-7, 1e-6, 'in-place vs out-of-place');
    // One logits-sized buffer fewer at the backward's peak.
    expect(peaks[0] - peaks[1]).toBeGreaterThanOrEqual(N * V * 4);
    // A leaf's values are never overwritten.
    const leaf = W.tensor(data, [N, V]);
    leaf.requiresGrad = true;
    W.backward(W.crossEntropy(leaf, W.tensor(targets, [N], 'i32'), { inplaceBackward: true }));
    expectClose(await leaf.toArray(), Float32Array.from(data), 0, 0, 'leaf logits untouched');
  });
  it('more rows than one grid dimension holds (70k rows: 2-d workgroup grid)', async () => {
    const [N, V] = [70_000, 3];
    const r = rng(14);
    const data = Float32Array.from(randomData(N * V, r, -2, 2));
    const targets = randomTargets(N, V, 14, 7);
    const x = W.tensor(data, [N, V]);
    x.requiresGrad = true;
    const loss = W.crossEntropy(x, W.tensor(targets, [N], 'i32'));
    const { ND } = await import('../reference/nd.ts');
    expect(await loss.item()).toBeCloseTo(refCE(ND.from(data, [N, V]), targets).data[0], 4);
    W.backward(loss);
    const g = await x.grad!.toArray();
    // The last row (beyond the first 65535 workgroups) has softmax − onehot over the count.
    const count = targets.filter((t) => t !== -100).length;
    const last = N - 1;
    const row = Array.from(data.slice(last * V, last * V + V));
    const m = Math.max(...row);
    const s = row.reduce((a, v) => a + Math.exp(v - m), 0);
    const want = row.map((v, j) => (targets[last] === -100 ? 0 : (Math.exp(v - m) / s - (j === targets[last] ? 1 : 0)) / count));
    expectClose(g.slice(last * V), want, 1e-9, 1e-4, 'last row grad');
  });
});

describe('crossEntropy errors', () => {
  it('out-of-range targets: NaN loss, and a lazy check names the row, target, V and shapes', async () => {
    const x = W.tensor(randomData(4 * 5, rng(13)), [4, 5]);
    const loss = W.crossEntropy(x, W.tensor([1, 7, -100, -3], [4], 'i32'));
    expect(Number.isNaN(await loss.item())).toBe(true);
    await expect(W.checkCrossEntropyTargets()).rejects.toThrow(
      /cross_entropy: target 7 at row 1 is out of range \[0, 5\) \(ignoreIndex -100; 2 bad targets .*\(inputs: \[4, 5\] f32, \[4\] i32\)/,
    );
    // Checked records are cleared; valid calls pass.
    W.crossEntropy(x, W.tensor([0, 1, 2, 3], [4], 'i32'));
    await W.checkCrossEntropyTargets();
    expect(() => W.validateTargets([0, 4, -100, 5], 5)).toThrow(/cross_entropy: target 5 at index 3 is out of range \[0, 5\)/);
    W.validateTargets([0, 4, -100], 5);
  });
  it('wrong dtypes, shapes and options name the op and the shapes', () => {
    const x = W.zeros([4, 5]);
    expect(() => W.crossEntropy(x, W.tensor([0, 1, 2, 3], [4]))).toThrow(/cross_entropy: targets must be an i32 tensor of class indices, got f32.*\[4, 5\] f32, \[4\] f32/);
    expect(() => W.crossEntropy(x, W.tensor([0, 1, 2], [3], 'i32'))).toThrow(/cross_entropy: targets must have shape \[4\].*got \[3\]/);
    expect(() => W.crossEntropy(W.zeros([5]), W.tensor([0], [1], 'i32'))).toThrow(/cross_entropy: logits must be \[..., classes\]/);
    expect(() => W.crossEntropy(x, W.tensor([0, 1, 2, 3], [4], 'i32'), { reduction: 'sum', normalizer: 3 })).toThrow(/normalizer applies to reduction 'mean' only/);
    expect(() => W.crossEntropy(W.zeros([4, 5], 'i32'), W.tensor([0, 1, 2, 3], [4], 'i32'))).toThrow(/cross_entropy: dtype i32 is not supported/);
  });
});
