// Element types the collectives move, and the reductions over them.
import { SimdHeap, simdSum, type SimdKind } from './simd.ts';
export type HostBuffer = Float32Array | Float64Array | Int32Array | Uint8Array;
export type ReduceOp = 'sum' | 'avg' | 'max' | 'min';

export enum DType {
  float32 = 1,
  float64 = 2,
  int32 = 3,
  uint8 = 4,
}

export const REDUCE_CODES: Record<ReduceOp, number> = { sum: 1, avg: 2, max: 3, min: 4 };

export function dtypeOf(b: HostBuffer): DType {
  if (b instanceof Float32Array) return DType.float32;
  if (b instanceof Float64Array) return DType.float64;
  if (b instanceof Int32Array) return DType.int32;
  if (b instanceof Uint8Array) return DType.uint8;
  throw new TypeError(`unsupported buffer type ${(b as object)?.constructor?.name}: use Float32Array, Float64Array, Int32Array or Uint8Array`);
}

export function dtypeName(d: number): string {
  return DType[d] ?? `dtype#${d}`;
}

export function bytesOf(b: HostBuffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

type Ctor = Float32ArrayConstructor | Float64ArrayConstructor | Int32ArrayConstructor | Uint8ArrayConstructor;
const CTORS: Record<DType, Ctor> = {
  [DType.float32]: Float32Array,
  [DType.float64]: Float64Array,
  [DType.int32]: Int32Array,
  [DType.uint8]: Uint8Array,
};

export function elementSize(d: DType): number {
  return CTORS[d].BYTES_PER_ELEMENT;
}

function view(d: DType, b: Uint8Array): HostBuffer {
  const C = CTORS[d];
  if (b.byteOffset % C.BYTES_PER_ELEMENT === 0) return new C(b.buffer as ArrayBuffer, b.byteOffset, b.byteLength / C.BYTES_PER_ELEMENT);
  // Unaligned (a pooled Buffer): reduce on an aligned copy.
  return new C(b.slice().buffer, 0, b.byteLength / C.BYTES_PER_ELEMENT);
}

export function isFloat(d: DType): boolean {
  return d === DType.float32 || d === DType.float64;
}

export function checkReduce(d: DType, op: ReduceOp): void {
  if (!(op in REDUCE_CODES)) throw new Error(`unknown reduce op "${op}" (sum, avg, max, min)`);
  if (op === 'avg' && !isFloat(d)) throw new Error(`reduce op "avg" needs a float buffer, got ${dtypeName(d)}`);
}

// One loop per (type, op), each its own function literal: closures made from
// one shared literal share their type feedback, which made a single
// polymorphic (slow) loop out of all four element types.
type Arr = Float32Array | Float64Array | Int32Array | Uint8Array;
/* eslint-disable @typescript-eslint/no-non-null-assertion */
const sumF32 = (a: Float32Array, b: Float32Array) => { const n = a.length; for (let i = 0; i < n; i++) a[i]! += b[i]!; };
const sumF64 = (a: Float64Array, b: Float64Array) => { const n = a.length; for (let i = 0; i < n; i++) a[i]! += b[i]!; };
const sumI32 = (a: Int32Array, b: Int32Array) => { const n = a.length; for (let i = 0; i < n; i++) a[i]! += b[i]!; };
const sumU8 = (a: Uint8Array, b: Uint8Array) => { const n = a.length; for (let i = 0; i < n; i++) a[i]! += b[i]!; };
// NaN propagates: a NaN in b replaces a; a NaN in a stays.
const maxF32 = (a: Float32Array, b: Float32Array) => { const n = a.length; for (let i = 0; i < n; i++) if (b[i]! > a[i]! || b[i] !== b[i]) a[i] = b[i]!; };
const maxF64 = (a: Float64Array, b: Float64Array) => { const n = a.length; for (let i = 0; i < n; i++) if (b[i]! > a[i]! || b[i] !== b[i]) a[i] = b[i]!; };
const maxI32 = (a: Int32Array, b: Int32Array) => { const n = a.length; for (let i = 0; i < n; i++) if (b[i]! > a[i]!) a[i] = b[i]!; };
const maxU8 = (a: Uint8Array, b: Uint8Array) => { const n = a.length; for (let i = 0; i < n; i++) if (b[i]! > a[i]!) a[i] = b[i]!; };
const minF32 = (a: Float32Array, b: Float32Array) => { const n = a.length; for (let i = 0; i < n; i++) if (b[i]! < a[i]! || b[i] !== b[i]) a[i] = b[i]!; };
const minF64 = (a: Float64Array, b: Float64Array) => { const n = a.length; for (let i = 0; i < n; i++) if (b[i]! < a[i]! || b[i] !== b[i]) a[i] = b[i]!; };
const minI32 = (a: Int32Array, b: Int32Array) => { const n = a.length; for (let i = 0; i < n; i++) if (b[i]! < a[i]!) a[i] = b[i]!; };
const minU8 = (a: Uint8Array, b: Uint8Array) => { const n = a.length; for (let i = 0; i < n; i++) if (b[i]! < a[i]!) a[i] = b[i]!; };
const KERNELS: Record<DType, Record<'sum' | 'max' | 'min', (a: Arr, b: Arr) => void>> = {
  [DType.float32]: { sum: sumF32 as never, max: maxF32 as never, min: minF32 as never },
  [DType.float64]: { sum: sumF64 as never, max: maxF64 as never, min: minF64 as never },
  [DType.int32]: { sum: sumI32 as never, max: maxI32 as never, min: minI32 as never },
  [DType.uint8]: { sum: sumU8 as never, max: maxU8 as never, min: minU8 as never },
};
const SIMD_KIND: Partial<Record<DType, SimdKind>> = { [DType.float32]: 'f32', [DType.float64]: 'f64', [DType.int32]: 'i32' };

/** The wasm SIMD kernel for this reduction (sums of float32/float64/int32), or null: scalar loops. */
export function simdKindOf(d: DType, op: ReduceOp): SimdKind | null {
  const kind = SIMD_KIND[d];
  return simdSum && kind && (op === 'sum' || op === 'avg') ? kind : null;
}

/** Below this many bytes the scalar loop wins (no window copies). */
const SIMD_MIN_BYTES = 512;

/** dst ← dst ⊕ src, elementwise, over byte views of equal length. */
export function reduceInto(d: DType, op: ReduceOp, dst: Uint8Array, src: Uint8Array): void {
  const kind = simdKindOf(d, op);
  if (kind && dst.length >= SIMD_MIN_BYTES) {
    // Same results as the scalar loop: IEEE addition (f32 via f64 then rounding is exact), int32 wraps.
    // A source in the process heap (a reducing receive's landing buffer) is read where it is:
    // in place when dst is a registered buffer too, else one copy of dst in and one out per block.
    const heap = SimdHeap.process();
    const at = heap === null ? -1 : heap.addressOf(src);
    if (at >= 0) heap!.sumInto(kind, dst, [at]);
    else simdSum!(kind, dst, src); // non-null: simdKindOf returns null without it
    return;
  }
  const a = view(d, dst);
  const b = view(d, src);
  KERNELS[d][op === 'avg' ? 'sum' : op](a, b);
  if (a.buffer !== dst.buffer) dst.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
}

/** dst ← dst / n (for avg). */
export function scaleInto(d: DType, dst: Uint8Array, n: number): void {
  const a = view(d, dst);
  const inv = 1 / n;
  for (let i = 0; i < a.length; i++) a[i]! *= inv;
  if (a.buffer !== dst.buffer) dst.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
}
