import { describe, expect, it } from 'vitest';
import * as W from '../../src/node.ts';
import { f16BitsToF32, f32ToF16Bits } from '../../src/tensor/dtype.ts';
import { useDevice } from '../helpers/device.ts';

const holder = useDevice();

describe('creation', () => {
  it('zeros, ones, full, arange (int and float)', async () => {
    expect(Array.from(await W.zeros([2, 2]).toArray())).toEqual([0, 0, 0, 0]);
    expect(Array.from(await W.ones([3]).toArray())).toEqual([1, 1, 1]);
    expect(Array.from(await W.full([2], -2.5).toArray())).toEqual([-2.5, -2.5]);
    const ai = W.arange(5);
    expect(ai.dtype).toBe('i32');
    expect(Array.from(await ai.toArray())).toEqual([0, 1, 2, 3, 4]);
    expect(Array.from(await W.arange(1, 2, 0.25, 'f32').toArray())).toEqual([1, 1.25, 1.5, 1.75]);
    expect(W.arange(3, 3).size).toBe(0);
  });

  it('seeded random draws are reproducible, independent of chunking, and well distributed', async () => {
    const a = Array.from(await new W.Generator(123).normal([4096]).toArray());
    const b = await new W.Generator(123).normal([4096]).toArray();
    expect(a).toEqual(Array.from(b));
    // Two draws of 2048 continue the same stream as one draw of 4096.
    const g = new W.Generator(123);
    const c1 = await g.normal([2048]).toArray();
    const c2 = await g.normal([2048]).toArray();
    expect([...c1, ...c2]).toEqual(a);
    const other = await new W.Generator(124).normal([4096]).toArray();
    expect(Array.from(other)).not.toEqual(a);
    const mean = a.reduce((s, v) => s + v, 0) / a.length;
    const variance = a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length;
    expect(Math.abs(mean)).toBeLessThan(0.06);
    expect(Math.abs(variance - 1)).toBeLessThan(0.08);
    const u = Array.from(await new W.Generator(5).uniform([4096], -2, 3).toArray());
    expect(Math.min(...u)).toBeGreaterThanOrEqual(-2);
    expect(Math.max(...u)).toBeLessThan(3);
    const um = u.reduce((s, v) => s + v, 0) / u.length;
    expect(Math.abs(um - 0.5)).toBeLessThan(0.1);
  });
});

describe('f16', () => {
  it('host conversion round-trips representable values and rounds to nearest even', () => {
    for (const v of [0, 1, -2.5, 65504, 6.103515625e-5, 5.960464477539063e-8]) expect(f16BitsToF32(f32ToF16Bits(v))).toBe(v);
    expect(f16BitsToF32(f32ToF16Bits(1 + 2 ** -11))).toBe(1); // tie → even
    expect(f16BitsToF32(f32ToF16Bits(1e6))).toBe(Infinity);
  });

  it('f16 tensors compute elementwise, matmul and softmax with f32 accumulation', async () => {
    if (!holder.device.hasF16) {
      // Not a skip: an adapter without shader-f16 must refuse f16 with a clear error.
      expect(() => W.exp(W.tensor([1], [1], 'f16'))).toThrow(/shader-f16/);
      return;
    }
    const x = W.tensor([0.5, 1, 1.5, 2, 2.5, 3], [2, 3], 'f16');
    const y = W.tensor([1, 0, 0, 1, 1, 1], [3, 2], 'f16');
    const z = W.matmul(x, y);
    expect(z.dtype).toBe('f16');
    expect(Array.from(await z.toArray())).toEqual([2, 2.5, 5, 5.5]);
    const e = await W.exp(x).toArray();
    e.forEach((v, i) => expect(Math.abs(v - Math.exp([0.5, 1, 1.5, 2, 2.5, 3][i])) / v).toBeLessThan(1e-3));
    const s = await W.softmax(x).toArray();
    expect(Math.abs(s[0] + s[1] + s[2] - 1)).toBeLessThan(2e-3);
    // A long f16 sum accumulates in f32: 4096 × 0.1 would drift badly in f16 arithmetic.
    const long = W.full([4096], 0.1, 'f16');
    const total = await W.sum(long).item();
    expect(Math.abs(total - 4096 * f16BitsToF32(f32ToF16Bits(0.1)))).toBeLessThan(0.5);
    expect(() => W.add(x, W.tensor([1, 2, 3], [3]))).toThrow(/add: dtypes differ \(f16 vs f32\)/);
  });
});

describe('device', () => {
  it('batches many dispatches into few submits', async () => {
    const dev = holder.device;
    await dev.sync();
    const s0 = dev.submitCount;
    let t = W.ones([1000]);
    const d0 = dev.dispatchCount;
    W.scope(() => {
      for (let i = 0; i < 50; i++) t = W.addScalar(t, 1);
      W.keep(t);
    });
    expect(dev.dispatchCount - d0).toBe(50);
    expect(await t.item().catch(() => null)).toBeNull(); // not one element
    expect((await t.toArray())[999]).toBe(51);
    expect(dev.submitCount - s0).toBeLessThanOrEqual(2);
  });
  it('pool reuses buffers: steady state creates none', async () => {
    const dev = holder.device;
    const run = () => W.scope(() => void W.sum(W.exp(W.ones([333, 7]))));
    run();
    await dev.sync();
    const created = dev.pool.snapshot.created;
    for (let i = 0; i < 20; i++) run();
    await dev.sync();
    expect(dev.pool.snapshot.created).toBe(created);
  });
  it('reads back a view at an offset and large tensors exactly', async () => {
    const n = 1 << 20;
    const data = Float32Array.from({ length: n }, (_, i) => i % 977);
    const t = W.Tensor.fromArray(data, [n]);
    const back = await t.toArray();
    expect(back[n - 1]).toBe(data[n - 1]);
    expect(Array.from(await W.narrow(t, 0, 1000, 3).toArray())).toEqual([23, 24, 25]);
  });
  it('writes from and reads into shared memory (registered host buffers live there)', async () => {
    const dev = holder.device;
    const t = W.Tensor.fromArray(new Float32Array(1001), [1001]);
    const shared = new Float32Array(new SharedArrayBuffer(4 * 1003), 8, 1001).map((_, i) => i * 0.5);
    dev.write(t.storage.buffer, 0, shared);
    expect(Array.from(await t.toArray())).toEqual(Array.from(shared));
    // Unaligned byte range at an offset, into a view at an odd place.
    const into = new Uint8Array(new SharedArrayBuffer(64), 3, 7);
    await dev.readInto(t.storage.buffer, 4 * 10 + 1, into);
    expect(Array.from(into)).toEqual(Array.from(new Uint8Array(shared.buffer, shared.byteOffset + 41, 7)));
    await dev.readInto(t.storage.buffer, 0, new Uint8Array(0));
  });
});
