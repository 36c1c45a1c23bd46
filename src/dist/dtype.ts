// Element types the collectives move, and the reductions over them.
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

// One monomorphic loop per (type, op): V8 only emits tight vector-friendly
// code when a loop sees a single typed-array kind.
type Arr = Float32Array | Float64Array | Int32Array | Uint8Array;
function mkSum<A extends Arr>() {
  return (a: A, b: A) => {
    for (let i = 0; i < a.length; i++) a[i]! += b[i]!;
  };
}
function mkMax<A extends Arr>() {
  return (a: A, b: A) => {
    for (let i = 0; i < a.length; i++) if (b[i]! > a[i]! || b[i] !== b[i]) a[i] = b[i]!; // NaN propagates
  };
}
function mkMin<A extends Arr>() {
  return (a: A, b: A) => {
    for (let i = 0; i < a.length; i++) if (b[i]! < a[i]! || b[i] !== b[i]) a[i] = b[i]!;
  };
}
const KERNELS: Record<DType, Record<'sum' | 'max' | 'min', (a: Arr, b: Arr) => void>> = {
  [DType.float32]: { sum: mkSum() as never, max: mkMax() as never, min: mkMin() as never },
  [DType.float64]: { sum: mkSum() as never, max: mkMax() as never, min: mkMin() as never },
  [DType.int32]: { sum: mkSum() as never, max: mkMax() as never, min: mkMin() as never },
  [DType.uint8]: { sum: mkSum() as never, max: mkMax() as never, min: mkMin() as never },
};

/** dst ← dst ⊕ src, elementwise, over byte views of equal length. */
export function reduceInto(d: DType, op: ReduceOp, dst: Uint8Array, src: Uint8Array): void {
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
