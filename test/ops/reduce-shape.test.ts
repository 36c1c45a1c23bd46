import { describe, expect, it } from 'vitest';
import * as W from '../../src/node.ts';
import { ND, reduce, permute, softmax as refSoftmax, concat as refConcat, narrow as refNarrow, map } from '../reference/nd.ts';
import { checkOp } from '../helpers/check.ts';
import { useDevice } from '../helpers/device.ts';

useDevice();

describe('reductions', () => {
  const kinds = [
    ['sum', W.sum],
    ['mean', W.mean],
    ['max', W.max],
    ['min', W.min],
  ] as const;
  for (const [kind, fn] of kinds) {
    it(`${kind} over single axes, several axes, all axes, keepdim`, async () => {
      for (const [shape, axes, keepdim] of [
        [[5, 7], [1], false],
        [[5, 7], [0], true],
        [[3, 4, 5], [0, 2], false],
        [[3, 4, 5], [-1], true],
        [[2, 3, 300], [2], false], // long rows: workgroup-per-row kernel
        [[6], undefined, false],
      ] as Array<[number[], number[] | undefined, boolean]>) {
        await checkOp({
          name: `${kind}(${shape}, ${axes}, keepdim=${keepdim})`,
          inputs: [{ shape }],
          gpu: (x) => fn(x, axes, keepdim),
          ref: (x) => reduce(x, axes ?? [...x.shape.keys()], kind, keepdim),
          fdTol: kind === 'max' || kind === 'min' ? 5e-2 : undefined,
        });
      }
    });
  }
  it('reduces a non-contiguous view', async () => {
    await checkOp({ name: 'sum(transposed)', inputs: [{ shape: [6, 9], transposed: true }], gpu: (x) => W.sum(x, 1), ref: (x) => reduce(x, [1], 'sum') });
  });
  it('max splits gradient among ties like amax', async () => {
    const x = W.tensor([1, 3, 3, 2], [4]);
    x.requiresGrad = true;
    const m = W.max(x);
    W.backward(m);
    expect(Array.from(await x.grad!.toArray())).toEqual([0, 0.5, 0.5, 0]);
  });
  it('sum of an empty dimension is 0; max of one is an error', async () => {
    const e = W.zeros([3, 0]);
    expect(Array.from(await W.sum(e, 1).toArray())).toEqual([0, 0, 0]);
    expect(() => W.max(e, 1)).toThrow(/max.*empty dimension.*\[3, 0\]/);
  });
  it('bad axes name the op and shape', () => {
    const x = W.zeros([2, 3]);
    expect(() => W.sum(x, 2)).toThrow(/sum: axis 2 is out of range for a 2-d tensor.*\[2, 3\]/);
    expect(() => W.mean(x, [0, 0])).toThrow(/mean: axes \[0, 0\] repeat/);
  });
});

describe('softmax', () => {
  it('softmax and log-softmax forward/backward, short and long rows', async () => {
    for (const shape of [[4, 10], [3, 700], [2, 3, 5]]) {
      await checkOp({ name: `softmax ${shape}`, inputs: [{ shape, lo: -3, hi: 3 }], gpu: W.softmax, ref: (x) => refSoftmax(x) });
      await checkOp({ name: `log_softmax ${shape}`, inputs: [{ shape, lo: -3, hi: 3 }], gpu: W.logSoftmax, ref: (x) => refSoftmax(x, true) });
    }
  });
  it('is stable for large logits and a transposed input', async () => {
    await checkOp({ name: 'softmax big', inputs: [{ shape: [3, 6], lo: 80, hi: 100 }], gpu: W.softmax, ref: (x) => refSoftmax(x), fdTol: 0 });
    await checkOp({ name: 'softmax T', inputs: [{ shape: [5, 4], transposed: true }], gpu: W.softmax, ref: (x) => refSoftmax(x) });
  });
});

describe('views and copies', () => {
  it('reshape (view and copy), permute, transpose, expand, squeeze', async () => {
    await checkOp({ name: 'reshape', inputs: [{ shape: [4, 6] }], gpu: (x) => W.reshape(x, [2, -1, 3]), ref: (x) => new ND([2, 4, 3], x.data) });
    await checkOp({
      name: 'reshape of transposed (copies)',
      inputs: [{ shape: [4, 6], transposed: true }],
      gpu: (x) => W.reshape(x, [24]),
      ref: (x) => new ND([24], x.data),
    });
    await checkOp({ name: 'permute', inputs: [{ shape: [2, 3, 4] }], gpu: (x) => W.contiguous(W.permute(x, [2, 0, 1])), ref: (x) => permute(x, [2, 0, 1]) });
    await checkOp({
      name: 'expand then mul',
      inputs: [{ shape: [3, 1] }, { shape: [3, 5] }],
      gpu: (a, b) => W.mul(W.expand(a, [3, 5]), b),
      ref: (a, b) => new ND([3, 5], b.data.map((v, i) => v * a.data[Math.floor(i / 5)])),
    });
    const x = W.zeros([1, 3, 1]);
    expect(W.squeeze(x).shape).toEqual([3]);
    expect(W.unsqueeze(W.squeeze(x), 0).shape).toEqual([1, 3]);
  });
  it('views share storage and copy nothing', () => {
    const x = W.zeros([4, 6]);
    const before = x.device.dispatchCount;
    const v = W.transpose(W.reshape(W.narrow(x, 0, 1, 2), [2, 3, 2]), 0, 2);
    expect(x.device.dispatchCount).toBe(before);
    expect(v.storage).toBe(x.storage);
    expect(v.shape).toEqual([2, 3, 2]);
  });
  it('narrow, slice and split with gradients', async () => {
    await checkOp({ name: 'narrow', inputs: [{ shape: [5, 7] }], gpu: (x) => W.narrow(x, 1, 2, 3), ref: (x) => refNarrow(x, 1, 2, 3) });
    await checkOp({ name: 'slice', inputs: [{ shape: [5, 7] }], gpu: (x) => W.slice(x, [[1, 4], [-3, 7]]), ref: (x) => refNarrow(refNarrow(x, 0, 1, 3), 1, 4, 3) });
    await checkOp({
      name: 'split+mul',
      inputs: [{ shape: [6, 4] }],
      gpu: (x) => {
        const [a, b] = W.split(x, [2, 4], 0);
        return W.concat([W.mulScalar(b, 2), a], 0);
      },
      ref: (x) => refConcat([map(refNarrow(x, 0, 2, 4), (v) => 2 * v), refNarrow(x, 0, 0, 2)], 0),
    });
  });
  it('concat along inner axis with a transposed input', async () => {
    await checkOp({
      name: 'concat axis 1',
      inputs: [{ shape: [3, 2] }, { shape: [3, 4], transposed: true }, { shape: [3, 1] }],
      gpu: (a, b, c) => W.concat([a, b, c], 1),
      ref: (a, b, c) => refConcat([a, b, c], 1),
    });
  });
  it('shape errors name the op and shapes', () => {
    const x = W.zeros([2, 3]);
    expect(() => W.reshape(x, [4, 2])).toThrow(/reshape: cannot reshape 6 elements into \[4, 2\]/);
    expect(() => W.concat([x, W.zeros([3, 3])], 1)).toThrow(/concat: .*\[2, 3\].*\[3, 3\]/);
    expect(() => W.narrow(x, 1, 2, 2)).toThrow(/narrow: range \[2, 4\) is out of bounds for dimension 1 of size 3/);
    expect(() => W.add(x, W.zeros([4]))).toThrow(/add: shapes cannot be broadcast together/);
    expect(() => W.permute(x, [0, 0])).toThrow(/permute: axes \[0, 0\] repeat/);
  });
});
