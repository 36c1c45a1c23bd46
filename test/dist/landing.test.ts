// Data landing in WebAssembly memory (SimdArena) and receives whose memory is
// bound when their first fragment arrives (LateDest), plus recycled early buffers.
import { describe, expect, it } from 'vitest';
import { DType } from '../../src/dist/dtype.ts';
import { Router } from '../../src/dist/router.ts';
import { SimdArena, simdSum, type SimdKind } from '../../src/dist/simd.ts';
import { emptyHeader, FrameType } from '../../transports/frame.ts';
import type { Link } from '../../transports/types.ts';

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KINDS: [SimdKind, DType, Float32ArrayConstructor | Float64ArrayConstructor | Int32ArrayConstructor][] = [
  ['f32', DType.float32, Float32Array],
  ['f64', DType.float64, Float64Array],
  ['i32', DType.int32, Int32Array],
];

describe('SimdArena: sums of fragments landed in WebAssembly memory', () => {
  it.each(KINDS)("%s: bit-identical to folding each source into dst in order, any size", (kind, _dtype, C) => {
    const arena = SimdArena.create(1 << 16);
    expect(arena).not.toBeNull();
    const r = rng(7);
    const val = () => (kind === 'i32' ? Math.floor((r() * 2 - 1) * 2 ** 31) : (r() * 2 - 1) * 10 ** Math.floor(r() * 8 - 4));
    for (const elems of [0, 1, 3, 7, 8, 9, 1000, 16383, 16384, 16385, 65536 / C.BYTES_PER_ELEMENT + 5, 300_001]) {
      // Up to 7 peers: the kernels fold three sources per pass, so 4–7 take several passes.
      for (const peers of [1, 2, 3, 4, 5, 7]) {
        const bytes = elems * C.BYTES_PER_ELEMENT;
        // Landing offsets: consecutive, as the scatter all-reduce's slots are (sizes not multiples of 32 bytes).
        const gap = 3 * C.BYTES_PER_ELEMENT;
        expect(arena!.reserve(peers * (bytes + gap))).toBe(true);
        const offs = Array.from({ length: peers }, (_, k) => k * (bytes + gap));
        const srcs = offs.map((o) => {
          const v = new C(elems);
          for (let i = 0; i < elems; i++) v[i] = val();
          arena!.view(o, bytes).set(new Uint8Array(v.buffer));
          return v;
        });
        const own = new C(elems);
        for (let i = 0; i < elems; i++) own[i] = val();
        // Reference: a plain element loop in the same order (int32 wraps like i32x4.add).
        const want = own.slice();
        for (const s of srcs) for (let i = 0; i < elems; i++) want[i] = kind === 'i32' ? (want[i]! + s[i]!) | 0 : want[i]! + s[i]!;
        const got = own.slice();
        arena!.sumInto(kind, new Uint8Array(got.buffer), offs);
        expect(Buffer.from(got.buffer).equals(Buffer.from(want.buffer)), `${kind} ${elems} elements, ${peers} peers`).toBe(true);
      }
    }
  });

  it.each(KINDS)('%s: simdSum (through the 64 KiB window) equals a plain loop, any size', (kind, _dtype, C) => {
    expect(simdSum).not.toBeNull();
    const r = rng(11);
    for (const elems of [0, 1, 15, 16, 17, 63, 1000, 16385, 100_003]) {
      const a = new C(elems);
      const b = new C(elems);
      for (let i = 0; i < elems; i++) {
        a[i] = kind === 'i32' ? Math.floor((r() * 2 - 1) * 2 ** 31) : (r() * 2 - 1) * 1e3;
        b[i] = kind === 'i32' ? Math.floor((r() * 2 - 1) * 2 ** 31) : (r() * 2 - 1) * 1e-3;
      }
      const want = a.map((x, i) => (kind === 'i32' ? (x + b[i]!) | 0 : x + b[i]!));
      simdSum!(kind, new Uint8Array(a.buffer), new Uint8Array(b.buffer));
      expect(Buffer.from(a.buffer).equals(Buffer.from(want.buffer)), `${kind} ${elems} elements`).toBe(true);
    }
  });

  it('grows on demand; views taken after growing see the same bytes', () => {
    const arena = SimdArena.create(10)!;
    arena.view(0, 4).set([1, 2, 3, 4]);
    const before = arena.capacity;
    expect(arena.reserve(before + 1)).toBe(true);
    expect(arena.capacity).toBeGreaterThan(before);
    expect(Array.from(arena.view(0, 4))).toEqual([1, 2, 3, 4]);
    expect(arena.view(before, 1).length).toBe(1);
    expect(SimdArena.create(2 ** 40)).toBeNull();
  });
});

describe('receives bound when their first fragment arrives', () => {
  const link = { peerRank: 1, pause() {}, resume() {} } as unknown as Link;
  const header = (step: number, total: number, offset: number, length: number) => ({ ...emptyHeader(FrameType.Data), group: 1, seq: 0, step, total, offset, length, op: 1, dtype: 4, count: total });
  const land = (router: Router, step: number, total: number, offset: number, bytes: number[]) => {
    const h = header(step, total, offset, bytes.length);
    const dest = router.place(link, h);
    dest.set(bytes);
    router.arrived(link, h);
    return dest;
  };

  it('a LateDest binds on the first fragment, and early fragments are copied into it when posted', async () => {
    const router = new Router(0, { groupName: String, onControl() {} });
    router.addLink(link);
    const slot = new Uint8Array(6);
    let binds = 0;
    const posted = router.recv(FrameType.Data, 1, 1, 0, 0, 0, { length: 6, bind: () => (binds++, slot) }, 1);
    expect(binds).toBe(0);
    expect(land(router, 0, 6, 0, [1, 2, 3]).buffer).toBe(slot.buffer);
    expect(binds).toBe(1);
    land(router, 0, 6, 3, [4, 5, 6]);
    await posted;
    expect(binds).toBe(1);
    expect(Array.from(slot)).toEqual([1, 2, 3, 4, 5, 6]);

    // Arrived before its receive was posted: held, then copied into the bound slot.
    land(router, 1, 4, 0, [9, 8, 7, 6]);
    const slot2 = new Uint8Array(4);
    await router.recv(FrameType.Data, 1, 1, 0, 1, 0, { length: 4, bind: () => slot2 }, 1);
    expect(Array.from(slot2)).toEqual([9, 8, 7, 6]);
  });

  it('a LateDest of the wrong size fails like a posted buffer; it cannot be a reducing receive', async () => {
    const router = new Router(0, { groupName: String, onControl() {} });
    router.addLink(link);
    const p = router.recv(FrameType.Data, 1, 1, 0, 0, 0, { length: 8, bind: () => new Uint8Array(8) }, 1);
    land(router, 0, 6, 0, [1, 2, 3, 4, 5, 6]);
    await expect(p).rejects.toThrow(/sent 6 bytes but rank 0 expected 8 bytes/);
    await expect(router.recv(FrameType.Data, 1, 1, 0, 1, 0, { length: 8, bind: () => new Uint8Array(8) }, 1, () => {})).rejects.toThrow(/reducing receive/);
  });

  it('early fragments of similar sizes reuse recycled buffers', async () => {
    const router = new Router(0, { groupName: String, onControl() {} });
    router.addLink(link);
    const big = (n: number, v: number) => new Array<number>(n).fill(v);
    const first = land(router, 0, 100_000, 0, big(100_000, 3));
    await router.recv(FrameType.Data, 1, 1, 0, 0, 0, new Uint8Array(100_000), 1);
    // A few elements shorter (uneven segments): the same size class, the same memory.
    const second = land(router, 1, 99_996, 0, big(99_996, 4));
    expect(second.buffer).toBe(first.buffer);
    const out = new Uint8Array(99_996);
    await router.recv(FrameType.Data, 1, 1, 0, 1, 0, out, 1);
    expect(out.every((x) => x === 4)).toBe(true);
  });
});
