// Data landing in WebAssembly memory (SimdHeap), registered host buffers, and receives whose memory is
// bound when their first fragment arrives (LateDest), plus recycled early buffers.
import { describe, expect, it } from 'vitest';
import { DType, reduceInto } from '../../src/dist/dtype.ts';
import { Router } from '../../src/dist/router.ts';
import { SimdHeap, simdSum, type SimdKind } from '../../src/dist/simd.ts';
import { allocHostBuffer, freeHostBuffer, isRegisteredHostBuffer } from '../../src/dist/host-buffer.ts';
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

/** Three heaps: the shared process heap, and a private one (the fallback without shared memory). */
const heaps = (): [string, SimdHeap][] => [
  ['process heap', SimdHeap.process()!],
  ['private heap', SimdHeap.create(1 << 16)!.heap],
];

describe('SimdHeap: sums of fragments landed in WebAssembly memory', () => {
  it('the process heap exists here (Node has shared WebAssembly memory and SIMD)', () => {
    expect(SimdHeap.process()).not.toBeNull();
    expect(SimdHeap.process()!.shared).toBe(true);
    expect(SimdHeap.process()).toBe(SimdHeap.process());
  });

  for (const [name, heap] of heaps()) {
    it.each(KINDS)(`${name}, %s: bit-identical to folding each source into dst in order, any size, dst outside or inside the heap`, (kind, _dtype, C) => {
      const held = heap.allocated;
      const r = rng(7);
      const val = () => (kind === 'i32' ? Math.floor((r() * 2 - 1) * 2 ** 31) : (r() * 2 - 1) * 10 ** Math.floor(r() * 8 - 4));
      for (const elems of [0, 1, 3, 7, 8, 9, 1000, 16383, 16384, 16385, 65536 / C.BYTES_PER_ELEMENT + 5, 300_001]) {
        // Up to 7 peers: the kernels fold three sources per pass, so 4–7 take several passes.
        for (const peers of [1, 2, 3, 4, 5, 7]) {
          const bytes = elems * C.BYTES_PER_ELEMENT;
          // Landing offsets: consecutive, as the scatter all-reduce's slots are (sizes not multiples of 32 bytes).
          const gap = 3 * C.BYTES_PER_ELEMENT;
          const base = heap.alloc(peers * (bytes + gap))!;
          const dstAt = heap.alloc(bytes + gap)! + gap; // an odd place, as a segment of a registered buffer is
          expect(base).not.toBeNull();
          const offs = Array.from({ length: peers }, (_, k) => base + k * (bytes + gap));
          const srcs = offs.map((o) => {
            const v = new C(elems);
            for (let i = 0; i < elems; i++) v[i] = val();
            heap.view(o, bytes).set(new Uint8Array(v.buffer));
            return v;
          });
          const own = new C(elems);
          for (let i = 0; i < elems; i++) own[i] = val();
          // Reference: a plain element loop in the same order (int32 wraps like i32x4.add).
          const want = own.slice();
          for (const s of srcs) for (let i = 0; i < elems; i++) want[i] = kind === 'i32' ? (want[i]! + s[i]!) | 0 : want[i]! + s[i]!;
          const outside = own.slice();
          const copied = heap.sums.copiedBytes;
          heap.sumInto(kind, new Uint8Array(outside.buffer), offs);
          expect(heap.sums.copiedBytes - copied).toBe(bytes);
          expect(Buffer.from(outside.buffer).equals(Buffer.from(want.buffer)), `${kind} ${elems} elements, ${peers} peers, dst outside`).toBe(true);
          const inside = heap.view(dstAt, bytes);
          inside.set(new Uint8Array(own.buffer));
          const inPlace = heap.sums.inPlaceBytes;
          heap.sumInto(kind, inside, offs);
          expect(heap.sums.inPlaceBytes - inPlace).toBe(bytes);
          expect(Buffer.from(inside).equals(Buffer.from(want.buffer)), `${kind} ${elems} elements, ${peers} peers, dst in the heap`).toBe(true);
          heap.release(base);
          heap.release(dstAt - gap);
        }
      }
      expect(heap.allocated).toBe(held);
    });
  }

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

  it('allocations never overlap, freed ranges merge and are reused, and growth keeps earlier views of shared memory valid', () => {
    const heap = SimdHeap.process()!;
    const before = heap.allocated;
    const r = rng(5);
    const live = new Map<number, { n: number; fill: number; view: Uint8Array }>();
    for (let round = 0; round < 400; round++) {
      if (live.size > 0 && r() < 0.45) {
        const keys = [...live.keys()];
        const at = keys[Math.floor(r() * keys.length)]!;
        heap.release(at);
        live.delete(at);
        continue;
      }
      const n = 1 + Math.floor(r() ** 3 * (3 << 20));
      const at = heap.alloc(n)!;
      expect(at % 4096).toBe(0);
      const view = heap.view(at, n);
      const fill = 1 + (round % 250);
      view.fill(fill);
      live.set(at, { n, fill, view });
    }
    // Every live allocation still holds its own bytes, through the view taken when it was made (before later growth).
    const spans = [...live.entries()].sort((a, b) => a[0] - b[0]);
    for (let i = 0; i < spans.length; i++) {
      const [at, { n, fill, view }] = spans[i]!;
      expect(view.every((x) => x === fill), `allocation at ${at}`).toBe(true);
      expect(heap.addressOf(view)).toBe(at);
      if (i + 1 < spans.length) expect(at + n).toBeLessThanOrEqual(spans[i + 1]![0]);
    }
    for (const at of live.keys()) heap.release(at);
    expect(heap.allocated).toBe(before);
    expect(() => heap.release(12345 * 4096 + 1)).toThrow(/no allocation/);
  });

  it('freed neighbours merge: after any order of frees, the whole heap is one free range again', () => {
    const { heap, at: first } = SimdHeap.create(4096)!;
    const r = rng(9);
    const ats = [first, ...Array.from({ length: 40 }, () => heap.alloc(1 + Math.floor(r() * 200_000))!)];
    for (let i = ats.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [ats[i], ats[j]] = [ats[j]!, ats[i]!];
    }
    for (const at of ats) heap.release(at);
    expect(heap.allocated).toBe(0);
    const size = heap.size;
    // Everything but the two 64 KiB windows, in one piece, without growing.
    expect(heap.alloc(size - 2 * 65536)).toBe(2 * 65536);
    expect(heap.size).toBe(size);
  });

  it('a private heap grows (views taken after growing see the same bytes) and refuses what it cannot hold', () => {
    const { heap, at } = SimdHeap.create(10)!;
    heap.view(at, 4).set([1, 2, 3, 4]);
    const next = heap.alloc(1 << 20)!;
    expect(next).toBeGreaterThan(at);
    expect(Array.from(heap.view(at, 4))).toEqual([1, 2, 3, 4]);
    expect(heap.view(next, 1 << 20).length).toBe(1 << 20);
    expect(SimdHeap.create(2 ** 40)).toBeNull();
    expect(heap.alloc(2 ** 32)).toBeNull();
    expect(SimdHeap.process()!.alloc(2 ** 33)).toBeNull();
  });
});

describe('reduceInto with sources in the process heap (reducing receives land there)', () => {
  it.each(KINDS)('%s: the same bits as the window kernel, in place for a registered destination', (kind, dtype, C) => {
    const heap = SimdHeap.process()!;
    const r = rng(13);
    for (const elems of [200, 1000, 16385, 100_003]) {
      const val = () => (kind === 'i32' ? Math.floor((r() * 2 - 1) * 2 ** 31) : (r() * 2 - 1) * 1e3);
      const a = new C(elems).map(val);
      const b = new C(elems).map(val);
      const want = a.slice();
      simdSum!(kind, new Uint8Array(want.buffer), new Uint8Array(b.buffer));
      const src = allocHostBuffer(C as Float32ArrayConstructor, elems) as unknown as typeof b;
      src.set(b as never);
      const srcBytes = new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
      // Destination outside the heap: through the window.
      const plain = a.slice();
      const copied = heap.sums.copiedBytes;
      reduceInto(dtype, 'sum', new Uint8Array(plain.buffer), srcBytes);
      expect(heap.sums.copiedBytes - copied).toBe(a.byteLength);
      expect(Buffer.from(plain.buffer).equals(Buffer.from(want.buffer)), `${kind} ${elems} plain`).toBe(true);
      // Registered destination: in place.
      const reg = allocHostBuffer(C as Float32ArrayConstructor, elems) as unknown as typeof a;
      reg.set(a as never);
      const inPlace = heap.sums.inPlaceBytes;
      reduceInto(dtype, 'sum', new Uint8Array(reg.buffer, reg.byteOffset, reg.byteLength), srcBytes);
      expect(heap.sums.inPlaceBytes - inPlace).toBe(a.byteLength);
      expect(Buffer.from(reg.buffer, reg.byteOffset, reg.byteLength).equals(Buffer.from(want.buffer)), `${kind} ${elems} registered`).toBe(true);
      freeHostBuffer(src);
      freeHostBuffer(reg);
    }
  });
});

describe('registered host buffers', () => {
  it('are zero-filled typed arrays in the process heap, reused after freeing', () => {
    const a = allocHostBuffer(Float32Array, 1000);
    expect(a).toBeInstanceOf(Float32Array);
    expect(a.length).toBe(1000);
    expect(isRegisteredHostBuffer(a)).toBe(true);
    expect(isRegisteredHostBuffer(a.subarray(10))).toBe(true);
    expect(isRegisteredHostBuffer(new Float32Array(10))).toBe(false);
    a.fill(7);
    freeHostBuffer(a);
    const b = allocHostBuffer(Int32Array, 1000);
    expect(b.byteOffset).toBe(a.byteOffset); // the freed range, first fit
    expect(b.every((x) => x === 0)).toBe(true);
    freeHostBuffer(b);
    for (const C of [Float64Array, Uint8Array] as const) {
      const c = allocHostBuffer(C, 33);
      expect(c).toBeInstanceOf(C);
      expect(c.length).toBe(33);
      freeHostBuffer(c);
    }
    expect(allocHostBuffer(Float32Array, 0).length).toBe(0);
  });

  it('bad lengths, double frees and frees of views are clear errors; plain arrays are ignored', () => {
    expect(() => allocHostBuffer(Float32Array, -1)).toThrow(/length must be a non-negative integer, got -1/);
    expect(() => allocHostBuffer(Float32Array, 1.5)).toThrow(/got 1.5/);
    expect(() => allocHostBuffer(Float64Array, 2 ** 31)).toThrow(/16384.0 MiB does not fit in the registered host heap/);
    const a = allocHostBuffer(Float32Array, 64);
    expect(() => freeHostBuffer(a.subarray(1))).toThrow(/not a live allocation/);
    freeHostBuffer(a);
    expect(() => freeHostBuffer(a)).toThrow(/not a live allocation \(already freed/);
    expect(() => freeHostBuffer(new Float32Array(8))).not.toThrow();
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

  it('a message that arrived whole before its receive can be adopted (no bind, no copy) and its buffer comes back on release', async () => {
    const heap = SimdHeap.process()!;
    const heldBefore = heap.allocated;
    const router = new Router(0, { groupName: String, onControl() {} });
    router.addLink(link);
    const big = 100 * 1024; // pooled early buffers start at 64 KiB
    const bytes = Array.from({ length: big }, (_, i) => (i * 7) & 255);
    const landedIn = land(router, 0, big, 0, bytes);
    expect(heap.addressOf(landedIn)).toBeGreaterThanOrEqual(0); // early buffers live in the process heap

    let binds = 0;
    let taken: Uint8Array | null = null;
    let release: (() => void) | null = null;
    await router.recv(FrameType.Data, 1, 1, 0, 0, 0, { length: big, bind: () => (binds++, new Uint8Array(big)), adopt: (d, rel) => ((taken = d), (release = rel), true) }, 1);
    expect(binds).toBe(0);
    expect(taken!.byteOffset).toBe(landedIn.byteOffset);
    expect(Array.from(taken!.subarray(0, 5))).toEqual(bytes.slice(0, 5));
    // Until released, the buffer is the receiver's: the next early message lands elsewhere.
    const second = land(router, 1, big, 0, bytes);
    expect(second.byteOffset).not.toBe(landedIn.byteOffset);
    release!();
    await router.recv(FrameType.Data, 1, 1, 0, 1, 0, { length: big, bind: () => new Uint8Array(big) }, 1);
    // Released and recycled: reused for the next early message of that size class.
    const reused = land(router, 2, big, 0, bytes);
    expect([landedIn.byteOffset, second.byteOffset]).toContain(reused.byteOffset);
    await router.recv(FrameType.Data, 1, 1, 0, 2, 0, { length: big, bind: () => new Uint8Array(big) }, 1);

    // Posted while the message was still arriving: adopted once its last byte is in.
    const h = header(3, big, 0, big);
    const landing = router.place(link, h);
    let adoptedLate: Uint8Array | null = null;
    const late = router.recv(FrameType.Data, 1, 1, 0, 3, 0, { length: big, bind: () => new Uint8Array(big), adopt: (d, rel) => ((adoptedLate = d), rel(), true) }, 1);
    expect(adoptedLate).toBeNull();
    landing.set(bytes);
    router.arrived(link, h);
    await late;
    expect(adoptedLate!.byteOffset).toBe(landing.byteOffset);

    // Declined: bound and copied as before.
    land(router, 4, big, 0, bytes);
    const slot = new Uint8Array(big);
    await router.recv(FrameType.Data, 1, 1, 0, 4, 0, { length: big, bind: () => slot, adopt: () => false }, 1);
    expect(Array.from(slot.subarray(big - 3))).toEqual(bytes.slice(big - 3));

    // Disposed (transport closed): pooled buffers and early data nobody received go back to the heap.
    land(router, 5, big, 0, bytes);
    expect(heap.allocated).toBeGreaterThan(heldBefore);
    router.dispose();
    expect(heap.allocated).toBe(heldBefore);
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
