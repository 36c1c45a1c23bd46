import { describe, expect, it } from 'vitest';
import * as W from '../../src/node.ts';
import { rope as refRope } from '../reference/transformer.ts';
import { ND } from '../reference/nd.ts';
import { checkOp, expectClose, randomData, rng } from '../helpers/check.ts';
import { useDevice } from '../helpers/device.ts';

useDevice();

function withPositions<R>(pos: number[], fn: (p: W.Tensor) => Promise<R>): Promise<R> {
  const p = W.tensor(pos, [pos.length], 'i32');
  return fn(p).finally(() => p.release());
}

describe('rope', () => {
  it('forward + backward vs float64, packed documents restarting at 0', async () => {
    const pos = [0, 1, 2, 0, 1, 0, 1, 2, 3];
    await withPositions(pos, (p) =>
      checkOp({ name: 'rope docs', inputs: [{ shape: [9, 3, 8] }], gpu: (x) => W.rope(x, p), ref: (x) => refRope(x, pos) }),
    );
  });
  it('position 0 is the identity and a document restart reproduces the first document', async () => {
    const r = rng(2);
    const data = Float32Array.from(randomData(3 * 2 * 6, r));
    const doc = W.tensor(data, [3, 2, 6]);
    const pos = W.tensor([0, 1, 2, 0, 1, 2], [6], 'i32');
    // Two identical documents packed back to back.
    const y = await W.rope(W.concat([doc, doc], 0), pos, { theta: 500 }).toArray();
    expect(Array.from(y.slice(0, 12))).toEqual(Array.from(data.slice(0, 12)));
    expect(Array.from(y.slice(36))).toEqual(Array.from(y.slice(0, 36)));
  });
  it('partial rotary dim with odd head_dim, custom theta, transposed (strided) input', async () => {
    const pos = [3, 0, 7, 1];
    await withPositions(pos, (p) =>
      checkOp({
        name: 'rope partial',
        inputs: [{ shape: [4, 2, 7] }],
        gpu: (x) => W.rope(x, p, { theta: 1e6, rotaryDim: 4 }),
        ref: (x) => refRope(x, pos, 1e6, 4),
      }),
    );
    await withPositions(pos, (p) =>
      checkOp({ name: 'rope strided', inputs: [{ shape: [4, 5, 6], transposed: true }], gpu: (x) => W.rope(x, p), ref: (x) => refRope(x, pos) }),
    );
  });
  it('a head slice of a fused projection (no copy) with odd token and head counts', async () => {
    const r = rng(9);
    const [T, H, D] = [5, 3, 4];
    const base = W.tensor(randomData(T * 3 * H * D, r), [T, 3 * H, D]);
    const k = W.narrow(base, 1, H, H);
    const pos = [4, 0, 1, 2, 1];
    const y = await W.rope(k, W.tensor(pos, [T], 'i32')).toArray();
    const kc = await W.contiguous(k).toArray();
    expectClose(y, refRope(ND.from(kc, [T, H, D]), pos).data, 1e-5, 1e-4, 'rope narrow');
  });
  it('angles stay accurate at large positions (up to 2^24 − 1)', async () => {
    const pos = [99_991, 100_000, 123_457, 65_536, 1_000_003, 2 ** 24 - 1, 4095, 4096];
    const r = rng(4);
    const data = randomData(pos.length * 1 * 64, r);
    const x = W.tensor(data, [pos.length, 1, 64]);
    const y = await W.rope(x, W.tensor(pos, [pos.length], 'i32')).toArray();
    // A plain f32 angle pos·f would be ~1e-2 off here; the exact reduction keeps ~1e-6.
    expectClose(y, refRope(ND.from(data, [pos.length, 1, 64]), pos).data, 2e-5, 0, 'rope large positions');
  });
  it('negative positions rotate backwards; backward is the inverse rotation', async () => {
    const r = rng(8);
    const data = randomData(3 * 2 * 4, r);
    const x = W.tensor(data, [3, 2, 4]);
    const y = await W.rope(x, W.tensor([-5, -1, -70000], [3], 'i32')).toArray();
    expectClose(y, refRope(ND.from(data, [3, 2, 4]), [-5, -1, -70000]).data, 2e-5, 0, 'negative');
    const pos = W.tensor([5, 17, 40000], [3], 'i32');
    x.requiresGrad = true;
    const z = W.rope(x, pos);
    W.backward(z, W.tensor(await z.toArray(), [3, 2, 4]));
    // grad = R(−θ)·R(θ)·x = x
    expectClose(await x.grad!.toArray(), data, 1e-5, 1e-5, 'inverse rotation');
  });
  it('bad inputs name the op, the shapes and the problem', () => {
    const x = W.zeros([4, 2, 7]);
    const p = W.tensor([0, 1, 2, 3], [4], 'i32');
    expect(() => W.rope(x, p)).toThrow(/rope: head_dim 7 \(the rotary dim by default\) must be an even integer.*\[4, 2, 7\] f32, \[4\] i32/);
    expect(() => W.rope(W.zeros([4, 2, 8]), W.tensor([0, 1, 2, 3], [4]))).toThrow(/rope: positions must be an i32 tensor, got f32/);
    expect(() => W.rope(W.zeros([4, 2, 8]), W.tensor([0, 1, 2], [3], 'i32'))).toThrow(/rope: positions must have shape \[4\].*got \[3\]/);
    expect(() => W.rope(W.zeros([4, 8]), p)).toThrow(/rope: x must be \[tokens, heads, head_dim\], got rank 2/);
    expect(() => W.rope(W.zeros([4, 2, 8]), p, { rotaryDim: 10 })).toThrow(/rope: rotaryDim 10 must be an even integer in \[2, 8\]/);
  });
});
