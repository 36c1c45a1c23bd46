import { describe, expect, it } from 'vitest';
import * as W from '../../src/node.ts';
import { ND, narrow as refNarrow } from '../reference/nd.ts';
import * as R from '../reference/indexing.ts';
import { checkOp, expectClose, rng, randomData } from '../helpers/check.ts';
import { useDevice } from '../helpers/device.ts';

useDevice();

const ints = (n: number, hi: number, r: () => number): number[] => Array.from({ length: n }, () => Math.floor(r() * hi));

describe('indexSelect', () => {
  it('axis 0 with repeated indices (host ids), forward + backward', async () => {
    const ids = [3, 0, 3, 4, 3, 1];
    await checkOp({ name: 'indexSelect axis0', inputs: [{ shape: [5, 7] }], gpu: (x) => W.indexSelect(x, 0, ids), ref: (x) => R.indexSelect(x, 0, ids) });
  });
  it('middle and last axis of a 3-d tensor, index given as an i32 tensor', async () => {
    const ids = [5, 1, 1, 0, 5];
    const t = W.Tensor.fromArray(ids, [5], 'i32');
    await checkOp({ name: 'indexSelect axis1', inputs: [{ shape: [3, 6, 4] }], gpu: (x) => W.indexSelect(x, 1, t), ref: (x) => R.indexSelect(x, 1, ids) });
    const last = [2, 2, 0];
    await checkOp({ name: 'indexSelect axis-1', inputs: [{ shape: [2, 3, 4] }], gpu: (x) => W.indexSelect(x, -1, last), ref: (x) => R.indexSelect(x, 2, last) });
    t.release();
  });
  it('multi-dimensional index (embedding lookup [V, D] × ids[B, T] → [B, T, D])', async () => {
    const ids = [0, 7, 7, 2, 9, 0];
    const t = W.Tensor.fromArray(ids, [2, 3], 'i32');
    await checkOp({ name: 'embedding', inputs: [{ shape: [10, 5] }], gpu: (w) => W.embedding(w, t), ref: (w) => R.indexSelect(w, 0, ids, [2, 3]) });
    t.release();
  });
  it('non-contiguous input views: transposed storage and a narrowed slice', async () => {
    const ids = [4, 0, 2, 2];
    await checkOp({ name: 'indexSelect transposed', inputs: [{ shape: [6, 5], transposed: true }], gpu: (x) => W.indexSelect(x, 0, ids), ref: (x) => R.indexSelect(x, 0, ids) });
    await checkOp({ name: 'indexSelect transposed axis1', inputs: [{ shape: [6, 5], transposed: true }], gpu: (x) => W.indexSelect(x, 1, ids), ref: (x) => R.indexSelect(x, 1, ids) });
    await checkOp({
      name: 'indexSelect of a slice',
      inputs: [{ shape: [7, 6] }],
      gpu: (x) => W.indexSelect(W.narrow(x, 1, 1, 4), 0, [6, 1, 6]),
      ref: (x) => R.indexSelect(refNarrow(x, 1, 1, 4), 0, [6, 1, 6]),
    });
    // A strided index tensor (every other element of a larger one).
    const big = W.Tensor.fromArray([1, 9, 0, 9, 1, 9], [6], 'i32');
    const strided = big.view([3], [2], 0);
    const y = W.indexSelect(W.Tensor.fromArray([10, 11, 12], [3]), 0, strided);
    expect(Array.from(await y.toArray())).toEqual([11, 10, 11]);
    [big, strided, y].forEach((t) => t.release());
  });
  it('vec4 fast path (last dim a multiple of 4): plain, and a 4-aligned slice of a 3-d tensor', async () => {
    const ids = [5, 0, 5, 2];
    await checkOp({ name: 'indexSelect vec4', inputs: [{ shape: [6, 8] }], gpu: (x) => W.indexSelect(x, 0, ids), ref: (x) => R.indexSelect(x, 0, ids) });
    await checkOp({
      name: 'indexSelect vec4 slice',
      inputs: [{ shape: [3, 5, 12] }],
      gpu: (x) => W.indexSelect(W.narrow(x, 2, 4, 8), 1, [4, 4, 1]),
      ref: (x) => R.indexSelect(refNarrow(x, 2, 4, 8), 1, [4, 4, 1]),
    });
    // Misaligned slice (offset 1): falls back to the scalar kernel.
    await checkOp({
      name: 'indexSelect misaligned slice',
      inputs: [{ shape: [4, 9] }],
      gpu: (x) => W.indexSelect(W.narrow(x, 1, 1, 8), 0, [3, 0]),
      ref: (x) => R.indexSelect(refNarrow(x, 1, 1, 8), 0, [3, 0]),
    });
  });
  it('empty index: empty output, zero gradient', async () => {
    await checkOp({ name: 'indexSelect empty', inputs: [{ shape: [5, 3] }], gpu: (x) => W.indexSelect(x, 0, []), ref: (x) => R.indexSelect(x, 0, []) });
    const x = W.Tensor.fromArray(randomData(15, rng(3)), [5, 3]);
    x.requiresGrad = true;
    const y = W.indexSelect(x, 0, W.Tensor.fromArray([], [0], 'i32'));
    expect(y.shape).toEqual([0, 3]);
    W.backward(y, W.Tensor.fromArray([], [0, 3]));
    expect(Array.from(await x.grad!.toArray())).toEqual(new Array(15).fill(0));
  });
  it('f16 data: forward copies exactly, backward sums in f32', async () => {
    const x = W.Tensor.fromArray([0.5, 1.5, -2, 3, 0.25, -1], [3, 2], 'f16');
    x.requiresGrad = true;
    const y = W.indexSelect(x, 0, [2, 0, 2]);
    expect(y.dtype).toBe('f16');
    expect(Array.from(await y.toArray())).toEqual([0.25, -1, 0.5, 1.5, 0.25, -1]);
    W.backward(y, W.Tensor.fromArray([1, 2, 3, 4, 5, 6], [3, 2], 'f16'));
    expect(Array.from(await x.grad!.toArray())).toEqual([3, 4, 0, 0, 6, 8]);
    // vec4<f16> path
    const x4 = W.Tensor.fromArray([1, 2, 3, 4, 5, 6, 7, 8], [2, 4], 'f16');
    x4.requiresGrad = true;
    const y4 = W.indexSelect(x4, 0, [1, 1]);
    expect(Array.from(await y4.toArray())).toEqual([5, 6, 7, 8, 5, 6, 7, 8]);
    W.backward(y4, W.Tensor.fromArray([1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5], [2, 4], 'f16'));
    expect(Array.from(await x4.grad!.toArray())).toEqual([0, 0, 0, 0, 1.5, 1.5, 1.5, 1.5]);
    // gather / scatterAdd in f16 (scatter_keys and segment_sum with T = f16)
    const xg = W.Tensor.fromArray([1, 2, 3, 4], [2, 2], 'f16');
    xg.requiresGrad = true;
    const gi = W.Tensor.fromArray([1, 1, 0, 1], [2, 2], 'i32');
    const yg = W.gather(xg, 1, gi);
    expect(Array.from(await yg.toArray())).toEqual([2, 2, 3, 4]);
    W.backward(yg, W.Tensor.fromArray([0.5, 0.25, 1, 2], [2, 2], 'f16'));
    expect(Array.from(await xg.grad!.toArray())).toEqual([0, 0.75, 1, 2]);
    const sa = W.scatterAdd(xg, 1, gi, W.Tensor.fromArray([10, 20, 30, 40], [2, 2], 'f16'));
    expect(sa.dtype).toBe('f16');
    expect(Array.from(await sa.toArray())).toEqual([1, 32, 33, 44]);
  });
});

describe('gather and scatterAdd', () => {
  it('gather along each axis with repeats, forward + backward', async () => {
    const r = rng(7);
    const idx1 = ND.from(ints(12, 5, r), [4, 3]);
    const t1 = W.Tensor.fromArray(Array.from(idx1.data), idx1.shape, 'i32');
    await checkOp({ name: 'gather axis1', inputs: [{ shape: [4, 5] }], gpu: (x) => W.gather(x, 1, t1), ref: (x) => R.gather(x, 1, idx1) });
    const idx0 = ND.from(ints(10, 4, r), [2, 5]);
    const t0 = W.Tensor.fromArray(Array.from(idx0.data), idx0.shape, 'i32');
    await checkOp({ name: 'gather axis0', inputs: [{ shape: [4, 5] }], gpu: (x) => W.gather(x, 0, t0), ref: (x) => R.gather(x, 0, idx0) });
    // Index smaller than the input in a non-gathered dim, 3-d, transposed input.
    const idx3 = ND.from(ints(2 * 3 * 2, 4, r), [2, 3, 2]);
    const t3 = W.Tensor.fromArray(Array.from(idx3.data), idx3.shape, 'i32');
    await checkOp({ name: 'gather 3d', inputs: [{ shape: [3, 5, 4], transposed: true }], gpu: (x) => W.gather(x, 2, t3), ref: (x) => R.gather(x, 2, idx3) });
    [t0, t1, t3].forEach((t) => t.release());
  });
  it('gather backward over a large input with few indices (bitonic-sort path of the scatter)', async () => {
    const idx = ND.from([5, 299, 5, 0, 5, 17, 299, 5], [1, 8]);
    const t = W.Tensor.fromArray(Array.from(idx.data), idx.shape, 'i32');
    await checkOp({ name: 'gather large', inputs: [{ shape: [300, 300] }], gpu: (x) => W.gather(x, 1, t), ref: (x) => R.gather(x, 1, idx), fdSamples: 2 });
    t.release();
  });
  it('scatterAdd: gradients for base and src, repeated destinations', async () => {
    const r = rng(11);
    const idx = ND.from(ints(12, 5, r), [3, 4]);
    const t = W.Tensor.fromArray(Array.from(idx.data), idx.shape, 'i32');
    await checkOp({
      name: 'scatterAdd axis0',
      inputs: [{ shape: [5, 4] }, { shape: [3, 4] }],
      gpu: (b, s) => W.scatterAdd(b, 0, t, s),
      ref: (b, s) => R.scatterAdd(b, 0, idx, s),
    });
    // src larger than idx (only idx.shape is scattered), transposed base, axis 1.
    const idx2 = ND.from(ints(6, 4, r), [3, 2]);
    const t2 = W.Tensor.fromArray(Array.from(idx2.data), idx2.shape, 'i32');
    await checkOp({
      name: 'scatterAdd axis1',
      inputs: [{ shape: [3, 4], transposed: true }, { shape: [4, 3] }],
      gpu: (b, s) => W.scatterAdd(b, 1, t2, s),
      ref: (b, s) => R.scatterAdd(b, 1, idx2, s),
    });
    t.release();
    t2.release();
  });
  it('scatterAdd with an empty index returns the base', async () => {
    const t = W.Tensor.fromArray([], [0, 2], 'i32');
    await checkOp({ name: 'scatterAdd empty', inputs: [{ shape: [3, 2] }, { shape: [1, 2] }], gpu: (b, s) => W.scatterAdd(b, 0, t, s), ref: (b) => b.clone() });
    t.release();
  });
});

describe('argsortStable', () => {
  for (const [n, signed] of [[0, true], [1, true], [37, true], [512, false], [3001, true], [5000, false], [70001, true]] as const) {
    it(`n=${n}, ${signed ? 'signed i32' : 'u32'} keys with many duplicates`, async () => {
      const r = rng(n + 1);
      const keys = signed ? Array.from({ length: n }, () => Math.floor(r() * 40) - 20) : Array.from({ length: n }, () => (Math.floor(r() * 30) * 0x9e3779b) >>> 0);
      const t = W.Tensor.fromArray(keys, [n], signed ? 'i32' : 'u32');
      const { sortedKeys, order } = W.argsortStable(t);
      const want = R.argsortStable(keys);
      expect(order.dtype).toBe('i32');
      expect(Array.from(await order.toArray())).toEqual(want);
      expect(Array.from(await sortedKeys.toArray())).toEqual(want.map((i) => keys[i]));
      [t, sortedKeys, order].forEach((x) => x.release());
    });
  }
});

describe('argsortStable with maxKey (counting sort)', () => {
  for (const [n, m] of [[0, 4], [1, 1], [300, 8], [5000, 64], [20000, 3], [4096, 30000]] as const) {
    it(`n=${n}, keys in [0, ${m}) plus out-of-range keys placed last`, async () => {
      const r = rng(n + m);
      // Mostly in range; some negative or >= m (they go last, in original order).
      const keys = Array.from({ length: n }, () => (r() < 0.05 ? (r() < 0.5 ? -1 - Math.floor(r() * 3) : m + Math.floor(r() * 3)) : Math.floor(r() * m)));
      const t = W.Tensor.fromArray(keys, [n], 'i32');
      const { sortedKeys, order } = W.argsortStable(t, { maxKey: m });
      const rank = (k: number) => (k >= 0 && k < m ? k : m);
      const want = Array.from({ length: n }, (_, i) => i).sort((i, j) => rank(keys[i]) - rank(keys[j]) || i - j);
      expect(Array.from(await order.toArray())).toEqual(want);
      expect(Array.from(await sortedKeys.toArray())).toEqual(want.map((i) => keys[i]));
      [t, sortedKeys, order].forEach((x) => x.release());
    });
  }
});

describe('embedding backward: deterministic scatter-add', () => {
  it('bit-identical across runs, equal to the sequential f32 sum in index order, close to float64', async () => {
    const V = 700;
    const D = 48;
    const N = 5000;
    const r = rng(99);
    // Skewed ids: many repeats of a few rows (like real token frequencies), some rows unused.
    const ids = Array.from({ length: N }, () => Math.floor(V * r() ** 3));
    const gyHost = Float32Array.from(randomData(N * D, r, -1, 1));
    const run = async (): Promise<Float32Array> => {
      const w = W.Tensor.fromArray(new Float32Array(V * D), [V, D]);
      w.requiresGrad = true;
      const y = W.embedding(w, W.Tensor.fromArray(ids, [N], 'i32'));
      W.backward(y, W.Tensor.fromArray(gyHost, [N, D]));
      const g = (await w.grad!.toArray()) as Float32Array;
      w.grad!.release();
      w.release();
      return g;
    };
    const a = await run();
    const b = await run();
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    const seq = R.embeddingBackwardF32(ids, gyHost, V, D);
    expect(Buffer.from(a.buffer).equals(Buffer.from(seq.buffer))).toBe(true);
    expectClose(a, R.embeddingBackward(ids, gyHost, V, D), 1e-4, 1e-4, 'embedding backward vs float64');
  });
});

describe('memory', () => {
  it('lookup + backward, gather and scatterAdd leave no live buffers behind', async () => {
    const dev = W.getDevice();
    const w = W.Tensor.fromArray(randomData(64 * 8, rng(5)), [64, 8]);
    w.requiresGrad = true;
    const ids = W.Tensor.fromArray(ints(40, 8, rng(6)), [5, 8], 'i32');
    // No scope: every internal temporary the ops forget to release would stay live.
    const step = () => {
      const gi = ids.view([5, 8, 1], [8, 1, 1], 0);
      const si = W.Tensor.fromArray([0, 4, 4, 1, 0, 2, 3, 3], [1, 8, 1], 'i32');
      const y = W.embedding(w, ids);
      const g = W.gather(y, 2, gi);
      const z = W.scatterAdd(g, 0, si, g);
      const loss = W.sum(z);
      W.backward(loss);
      [gi, si, y, g, z, loss, w.grad!].forEach((t) => t.release());
      w.grad = null;
    };
    step();
    await dev.sync();
    const base = dev.pool.snapshot.liveBytes;
    for (let i = 0; i < 3; i++) step();
    await dev.sync();
    expect(dev.pool.snapshot.liveBytes).toBe(base);
    await W.checkIndexErrors(); // every index was in range
    w.release();
    ids.release();
  });
});

describe('index errors', () => {
  it('host ids out of range throw at once, naming the op, the index value and the axis size', () => {
    const x = W.Tensor.fromArray(randomData(10, rng(1)), [5, 2]);
    expect(() => W.indexSelect(x, 0, [1, 9])).toThrow(/indexSelect: index 9 \(at position 1 of the index tensor\) is out of range for axis 0 of size 5/);
    expect(() => W.indexSelect(x, 1, [-1])).toThrow(/indexSelect: index -1 .* out of range for axis 1 of size 2/);
    expect(() => W.indexSelect(x, 0, [0.5])).toThrow(/indexSelect: index 0.5 at position 0 is not an integer/);
    x.release();
  });
  it('GPU index tensors are checked in the kernel and reported by checkIndexErrors()', async () => {
    const x = W.Tensor.fromArray([1, 2, 3, 4, 5, 6, 7, 8], [2, 4]);
    await W.checkIndexErrors();
    const y = W.indexSelect(x, 1, W.Tensor.fromArray([3, 7, 0], [3], 'i32'));
    // The out-of-range column reads as 0; the others are right.
    expect(Array.from(await y.toArray())).toEqual([4, 0, 1, 8, 0, 5]);
    await expect(W.checkIndexErrors()).rejects.toThrow(/indexSelect: index 7 \(at position 1 of the index tensor\) is out of range for axis 1 of size 4/);
    await W.checkIndexErrors(); // cleared once reported

    // The vec4 path (rows of 8): the bad row reads as zeros.
    const rows = W.Tensor.fromArray([...Array(16).keys()], [2, 8]);
    const y4 = W.indexSelect(rows, 0, W.Tensor.fromArray([1, 5], [2], 'i32'));
    expect(Array.from(await y4.toArray())).toEqual([8, 9, 10, 11, 12, 13, 14, 15, 0, 0, 0, 0, 0, 0, 0, 0]);
    await expect(W.checkIndexErrors()).rejects.toThrow(/indexSelect: index 5 \(at position 1 of the index tensor\) is out of range for axis 0 of size 2/);

    W.gather(x, 0, W.Tensor.fromArray([0, 1, -3, 0], [1, 4], 'i32'));
    await expect(W.checkIndexErrors()).rejects.toThrow(/gather: index -3 \(at position 2 of the index tensor\) is out of range for axis 0 of size 2/);

    const s = W.scatterAdd(x, 0, W.Tensor.fromArray([1, 2], [1, 2], 'i32'), W.Tensor.fromArray([10, 20], [1, 2]));
    expect(Array.from(await s.toArray())).toEqual([1, 2, 3, 4, 15, 6, 7, 8]); // the bad one is dropped
    await expect(W.checkIndexErrors()).rejects.toThrow(/scatterAdd: index 2 \(at position 1 of the index tensor\) is out of range for axis 0 of size 2/);
  });
  it('wrong index dtype or shape names the op', () => {
    const x = W.Tensor.fromArray([1, 2, 3, 4], [2, 2]);
    const f = W.Tensor.fromArray([0, 1], [2], 'f32');
    expect(() => W.indexSelect(x, 0, f)).toThrow(/indexSelect: the index tensor must have dtype i32/);
    expect(() => W.gather(x, 0, W.Tensor.fromArray([0, 1], [1, 2], 'f32'))).toThrow(/gather: the index tensor must have dtype i32/);
    expect(() => W.scatterAdd(x, 0, f, x)).toThrow(/scatterAdd: the index tensor must have dtype i32/);
    expect(() => W.gather(x, 0, W.Tensor.fromArray([0, 1], [2], 'i32'))).toThrow(/gather: the index must have the same rank/);
    expect(() => W.gather(x, 0, W.Tensor.fromArray([0, 0, 0], [1, 3], 'i32'))).toThrow(/gather: index dimension 1 \(3\) exceeds/);
    expect(() => W.indexSelect(x, 2, [0])).toThrow(/indexSelect: axis 2 is out of range/);
    expect(() => W.argsortStable(f)).toThrow(/argsortStable: the index tensor must have dtype i32/);
  });
});
