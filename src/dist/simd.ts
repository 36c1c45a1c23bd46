// Elementwise sum kernels in WebAssembly SIMD (128-bit lanes), built from a
// few hand-assembled bytes so there is no toolchain or file to load. V8 runs a
// scalar typed-array loop at ~1 element per few ns; the SIMD loop with the
// operands staged through a 64 KiB window of wasm memory (L2-resident) is
// 5–7× faster on this machine (3.5 vs 0.5–0.9 GB/s of reduced output while
// loaded), which matters because the ring's reduce-scatter reduces half of
// every all-reduce's bytes on the receiving thread.
//
// Wasm code can only touch its own memory, so each call copies a window of
// `dst` and `src` in, adds, and copies the window back: three memcpys of
// cache-resident data, cheap next to the arithmetic they make vectorisable.
// Where WebAssembly SIMD is missing (old browsers) `simdSum` is null and the
// caller uses its scalar loop.

const WINDOW = 64 * 1024;

function leb(n: number): number[] {
  const o: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    o.push(b);
  } while (n);
  return o;
}
const str = (s: string) => [...leb(s.length), ...[...s].map((c) => c.charCodeAt(0))];
const section = (id: number, body: number[]) => [id, ...leb(body.length), ...body];

/** Bytes one loop iteration of a kernel covers (four v128 lanes); callers handle the remainder. */
const STRIDE = 64;

/**
 * fn(d, s1, …, sk, n): for each 16-byte lane of mem[d, d + n):
 * mem[d] = ((mem[d] ⊕ mem[s1]) ⊕ mem[s2]) ⊕ … ⊕ mem[sk], four lanes per
 * iteration (n a multiple of STRIDE). Folding k sources in one pass loads and
 * stores the accumulator once instead of k times, and the additions happen in
 * the same order as k single-source passes, so the bits are the same.
 */
function body(op: number[], k: number): number[] {
  const n = k + 1; // param index of n (d is 0, sources 1..k)
  const end = k + 2; // the local
  const lane = (off: number) => {
    const o = [0x20, 0, 0x20, 0, 0xfd, 0x00, 4, off];
    for (let i = 1; i <= k; i++) o.push(0x20, i, 0xfd, 0x00, 4, off, 0xfd, ...op);
    o.push(0xfd, 0x0b, 4, off);
    return o;
  };
  // i32.const takes a signed LEB128: STRIDE (64) is [0xc0, 0x00].
  const bump = (local: number) => [0x20, local, 0x41, 0xc0, 0x00, 0x6a, 0x21, local];
  const code = [
    0x01, 0x01, 0x7f, // one i32 local: end
    0x20, 0, 0x20, n, 0x6a, 0x21, end, // end = d + n
    0x02, 0x40, 0x03, 0x40, // block loop
    0x20, 0, 0x20, end, 0x4f, 0x0d, 1, // if d >= end: break
    ...lane(0),
    ...lane(16),
    ...lane(32),
    ...lane(48),
    ...Array.from({ length: k + 1 }, (_, i) => bump(i)).flat(),
    0x0c, 0, 0x0b, 0x0b, 0x0b,
  ];
  return [...leb(code.length), ...code];
}

// f32x4.add, f64x2.add, i32x4.add
const OPS: Record<'f32' | 'f64' | 'i32', number[]> = { f32: [0xe4, 0x01], f64: [0xf0, 0x01], i32: [0xae, 0x01] };
/** Kernels fold up to this many sources per pass (more are done in several passes). */
const MAX_FUSED = 3;

function moduleBytes(): Uint8Array<ArrayBuffer> {
  const names = Object.keys(OPS) as (keyof typeof OPS)[];
  // One function type per source count k = 1..MAX_FUSED: (d, s1..sk, n) -> ().
  const types = Array.from({ length: MAX_FUSED }, (_, i) => [0x60, i + 3, ...Array(i + 3).fill(0x7f), 0]).flat();
  // Function index f = kind * MAX_FUSED + (k - 1), exported as `${kind}${k}`.
  const fns = names.flatMap(() => Array.from({ length: MAX_FUSED }, (_, i) => i));
  const exported = names.flatMap((nm, j) => Array.from({ length: MAX_FUSED }, (_, i) => [...str(`${nm}${i + 1}`), 0, j * MAX_FUSED + i]).flat());
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [MAX_FUSED, ...types]),
    ...section(3, [fns.length, ...fns]),
    ...section(5, [1, 0x00, (2 * WINDOW) / 65536]),
    ...section(7, [fns.length + 1, ...str('mem'), 2, 0, ...exported]),
    ...section(10, [fns.length, ...names.flatMap((nm) => Array.from({ length: MAX_FUSED }, (_, i) => body(OPS[nm], i + 1)).flat())]),
  ]);
}

export type SimdKind = keyof typeof OPS;
type Kernel1 = (d: number, s: number, n: number) => void;
type Kernel2 = (d: number, s1: number, s2: number, n: number) => void;
type Kernel3 = (d: number, s1: number, s2: number, s3: number, n: number) => void;
type Exports = { [K in SimdKind as `${K}1`]: Kernel1 } & { [K in SimdKind as `${K}2`]: Kernel2 } & { [K in SimdKind as `${K}3`]: Kernel3 } & { mem: WebAssembly.Memory };

/** The compiled module (null without WebAssembly SIMD); each instance owns a memory. */
const MODULE: WebAssembly.Module | null = (() => {
  try {
    const bytes = moduleBytes();
    if (typeof WebAssembly === 'undefined' || !WebAssembly.validate(bytes)) return null;
    return new WebAssembly.Module(bytes);
  } catch {
    return null;
  }
})();

function build(): ((kind: SimdKind, dst: Uint8Array, src: Uint8Array) => void) | null {
  try {
    if (MODULE === null) return null;
    const ex = new WebAssembly.Instance(MODULE).exports as Exports;
    const mem = new Uint8Array(ex.mem.buffer);
    const a = mem.subarray(0, WINDOW);
    const b = mem.subarray(WINDOW, 2 * WINDOW);
    /** dst ⊕= src over byte views of equal length (a multiple of the element size). */
    return (kind, dst, src) => {
      const k = ex[`${kind}1`];
      const n = dst.length;
      for (let o = 0; o < n; o += WINDOW) {
        const len = Math.min(WINDOW, n - o);
        const vec = len & ~(STRIDE - 1);
        a.set(dst.subarray(o, o + len));
        b.set(src.subarray(o, o + len));
        if (vec > 0) k(0, WINDOW, vec);
        if (vec < len) tail(kind, a.subarray(vec, len), b.subarray(vec, len));
        dst.set(len === WINDOW ? a : a.subarray(0, len), o);
      }
    };
  } catch {
    return null;
  }
}

/** The < STRIDE-byte remainder, in scalar code (the window is aligned, so views are too). */
function tail(kind: SimdKind, a: Uint8Array, b: Uint8Array): void {
  const C = kind === 'f32' ? Float32Array : kind === 'f64' ? Float64Array : Int32Array;
  const x = new C(a.buffer as ArrayBuffer, a.byteOffset, a.length / C.BYTES_PER_ELEMENT);
  const y = new C(b.buffer as ArrayBuffer, b.byteOffset, b.length / C.BYTES_PER_ELEMENT);
  for (let i = 0; i < x.length; i++) x[i]! += y[i]!;
}

/** dst += src elementwise (float32, float64 or int32 with wrap-around), or null without wasm SIMD. */
export const simdSum = build();

/** Largest landing area an arena grows to (bytes); larger requests get null from `simdArena`. */
export const ARENA_MAX_BYTES = 2 ** 31;

/**
 * A landing area in WebAssembly memory: the transport writes incoming
 * fragments straight into it (the kernel's copy from the socket is the only
 * one), and the SIMD kernels read them in place. A reduction then costs one
 * copy of this rank's own data in and one copy of the result out, per
 * 64 KiB block, however many peers' fragments are added (against three copies
 * per peer through simdSum's window).
 *
 * Bytes [0, WINDOW) of the memory are the accumulator; landing offsets
 * count from ARENA_BASE. The memory grows, never shrinks; growing detaches the old
 * ArrayBuffer, so views must be taken after `reserve` (never across one).
 */
export const ARENA_BASE = 2 * WINDOW;

export class SimdArena {
  private readonly ex: Exports;
  private u8: Uint8Array;

  private constructor(ex: Exports) {
    this.ex = ex;
    this.u8 = new Uint8Array(ex.mem.buffer);
  }

  /** A fresh arena with room for `n` landing bytes, or null (no wasm SIMD, or n too large). */
  static create(n: number): SimdArena | null {
    if (MODULE === null || n > ARENA_MAX_BYTES) return null;
    try {
      const a = new SimdArena(new WebAssembly.Instance(MODULE).exports as Exports);
      return a.reserve(n) ? a : null;
    } catch {
      return null;
    }
  }

  /** Landing bytes available (from ARENA_BASE). */
  get capacity(): number {
    return this.ex.mem.buffer.byteLength - ARENA_BASE;
  }

  /** Grows the memory so `n` landing bytes exist; false if it cannot. Invalidates earlier views. */
  reserve(n: number): boolean {
    if (n <= this.capacity) return true;
    if (n > ARENA_MAX_BYTES) return false;
    try {
      this.ex.mem.grow(Math.ceil((ARENA_BASE + n - this.ex.mem.buffer.byteLength) / 65536));
    } catch {
      return false;
    }
    return true;
  }

  /** The whole memory as bytes (re-taken after a grow detached the old buffer). */
  private bytes(): Uint8Array {
    if (this.u8.buffer !== this.ex.mem.buffer) this.u8 = new Uint8Array(this.ex.mem.buffer);
    return this.u8;
  }

  /** Landing bytes [at, at + n) as a view (valid until the next `reserve` that grows). */
  view(at: number, n: number): Uint8Array {
    return this.bytes().subarray(ARENA_BASE + at, ARENA_BASE + at + n);
  }

  /**
   * dst ← (((dst + L[s0]) + L[s1]) + …), elementwise, where L[s] are dst.length
   * landing bytes at offset s: the same additions in the same order as
   * folding each into dst in turn, so the bits are those of simdSum/the scalar loop.
   */
  sumInto(kind: SimdKind, dst: Uint8Array, srcs: readonly number[]): void {
    const ex = this.ex;
    const k1 = ex[`${kind}1`];
    const k2 = ex[`${kind}2`];
    const k3 = ex[`${kind}3`];
    const mem = this.bytes();
    const n = dst.length;
    const m = srcs.length;
    // Memory addresses of the sources' first bytes.
    const at = srcs.map((s) => ARENA_BASE + s);
    for (let o = 0; o < n; o += WINDOW) {
      const len = Math.min(WINDOW, n - o);
      const vec = len & ~(STRIDE - 1);
      mem.set(dst.subarray(o, o + len), 0);
      if (vec > 0) {
        // Up to MAX_FUSED sources per pass, in order.
        let i = 0;
        for (; i + 3 <= m; i += 3) k3(0, at[i]! + o, at[i + 1]! + o, at[i + 2]! + o, vec);
        if (m - i === 2) k2(0, at[i]! + o, at[i + 1]! + o, vec);
        else if (m - i === 1) k1(0, at[i]! + o, vec);
      }
      if (vec < len) for (let i = 0; i < m; i++) tail(kind, mem.subarray(vec, len), mem.subarray(at[i]! + o + vec, at[i]! + o + len));
      dst.set(mem.subarray(0, len), o);
    }
  }
}
