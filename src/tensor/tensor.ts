// Tensor: a strided view (shape, strides, element offset, dtype) onto GPU storage.
//
// Ownership: every tensor has an owner count. It is created with one reference, held by
// the innermost open scope (see scope.ts) or, outside any scope, by the caller. Autograd
// takes an extra reference on each tensor it saves for backward and drops it once the
// backward has used it. When the count reaches zero the tensor is dead; when the last
// tensor viewing a Storage dies, the buffer goes back to the device's pool.

import { getDevice, type Device } from '../device/index.ts';
import { DTYPE_BYTES, f16BitsToF32, f32ToF16Bits, type DType, type HostArray } from './dtype.ts';
import { trackTensor } from './scope.ts';
import type { GradNode } from '../autograd/node.ts';

export type Shape = readonly number[];

let nextTensorId = 1;

export class Storage {
  views = 0;
  freed = false;
  constructor(
    readonly device: Device,
    readonly buffer: GPUBuffer,
    readonly byteLength: number,
  ) {}

  attach(): void {
    this.views++;
  }

  detach(): void {
    if (--this.views === 0 && !this.freed) {
      this.freed = true;
      if (!this.device.isDestroyed) this.device.pool.release(this.buffer);
    }
  }
}

export function shapeSize(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function contiguousStrides(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function fmtShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export function checkShape(shape: Shape, what = 'shape'): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new TypeError(`${what} ${fmtShape(shape)} has an invalid dimension ${d}`);
  }
}

export class Tensor {
  readonly id = nextTensorId++;
  /** Whether autograd should compute a gradient for this tensor. */
  requiresGrad = false;
  /** Accumulated gradient (leaf tensors), long-lived until the user zeroes or releases it. */
  grad: Tensor | null = null;
  /** The autograd node that produced this tensor, if any. */
  node: GradNode | null = null;
  /** A name for messages and checkpoints (e.g. a parameter's dotted path). */
  name?: string;
  private refs = 1;
  private releasedBy: string | null = null;

  constructor(
    readonly storage: Storage,
    readonly shape: Shape,
    readonly strides: readonly number[],
    readonly offset: number,
    readonly dtype: DType,
  ) {
    storage.attach();
    trackTensor(this);
  }

  static empty(shape: Shape, dtype: DType = 'f32', device: Device = getDevice()): Tensor {
    checkShape(shape);
    const n = shapeSize(shape);
    const bytes = Math.max(4, Math.ceil((n * DTYPE_BYTES[dtype]) / 4) * 4);
    const storage = new Storage(device, device.pool.acquire(bytes), bytes);
    return new Tensor(storage, [...shape], contiguousStrides(shape), 0, dtype);
  }

  /** Upload host data. `data` may be a plain array of numbers or a typed array of the right kind. */
  static fromArray(data: ArrayLike<number>, shape: Shape, dtype: DType = 'f32', device: Device = getDevice()): Tensor {
    checkShape(shape);
    const n = shapeSize(shape);
    if (data.length !== n) {
      throw new RangeError(`fromArray: ${data.length} values do not fill shape ${fmtShape(shape)} (${n} elements)`);
    }
    const t = Tensor.empty(shape, dtype, device);
    if (n > 0) device.write(t.storage.buffer, 0, toHost(data, dtype));
    return t;
  }

  get device(): Device {
    return this.storage.device;
  }
  get rank(): number {
    return this.shape.length;
  }
  get size(): number {
    return shapeSize(this.shape);
  }
  get released(): boolean {
    return this.releasedBy !== null;
  }
  get isContiguous(): boolean {
    let acc = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) {
      if (this.shape[i] !== 1 && this.strides[i] !== acc) return false;
      acc *= this.shape[i];
    }
    return true;
  }
  get byteOffset(): number {
    return this.offset * DTYPE_BYTES[this.dtype];
  }

  /** Throws a clear error when a released tensor is used by `op`. */
  assertAlive(op: string): void {
    if (this.releasedBy !== null) {
      throw new Error(
        `${op}: tensor #${this.id}${this.name ? ` '${this.name}'` : ''} ${fmtShape(this.shape)} was used after it was released (${this.releasedBy})`,
      );
    }
  }

  /** Another owner: the tensor lives until each owner has released it. */
  retain(): this {
    this.assertAlive('retain');
    this.refs++;
    return this;
  }

  release(reason = 'released'): void {
    if (this.releasedBy !== null) return;
    if (--this.refs > 0) return;
    this.releasedBy = reason;
    this.storage.detach();
  }

  /** Force-release regardless of other owners (e.g. replacing a parameter). */
  dispose(): void {
    if (this.releasedBy !== null) return;
    this.refs = 1;
    this.release('disposed');
  }

  /** A new tensor object viewing the same storage. */
  view(shape: Shape, strides: readonly number[], offset: number): Tensor {
    this.assertAlive('view');
    return new Tensor(this.storage, [...shape], [...strides], offset, this.dtype);
  }

  /** Read the values back (as f32 for float tensors). Non-contiguous views are compacted on the GPU first. */
  async toArray(): Promise<Float32Array | Int32Array | Uint32Array> {
    this.assertAlive('toArray');
    if (!this.isContiguous) {
      const c = contiguousHook!(this);
      try {
        return await c.toArray();
      } finally {
        c.release();
      }
    }
    const bytes = DTYPE_BYTES[this.dtype];
    const raw = await this.device.read(this.storage.buffer, this.offset * bytes, this.size * bytes);
    switch (this.dtype) {
      case 'f32':
        return new Float32Array(raw);
      case 'i32':
        return new Int32Array(raw);
      case 'u32':
        return new Uint32Array(raw);
      case 'f16': {
        const h = new Uint16Array(raw);
        const out = new Float32Array(h.length);
        for (let i = 0; i < h.length; i++) out[i] = f16BitsToF32(h[i]);
        return out;
      }
    }
  }

  /** Read a single-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new RangeError(`item(): tensor has shape ${fmtShape(this.shape)}, not one element`);
    return (await this.toArray())[0];
  }

  toString(): string {
    return `Tensor#${this.id}(${fmtShape(this.shape)}, ${this.dtype}${this.requiresGrad ? ', grad' : ''})`;
  }
}

function toHost(data: ArrayLike<number>, dtype: DType): HostArray {
  switch (dtype) {
    case 'f32':
      return data instanceof Float32Array ? data : Float32Array.from(data);
    case 'i32':
      return data instanceof Int32Array ? data : Int32Array.from(data);
    case 'u32':
      return data instanceof Uint32Array ? data : Uint32Array.from(data);
    case 'f16': {
      const out = new Uint16Array(data.length);
      for (let i = 0; i < data.length; i++) out[i] = f32ToF16Bits(data[i]);
      return out;
    }
  }
}

// The copy kernel lives in ops/, which imports this module; it registers itself here.
let contiguousHook: ((t: Tensor) => Tensor) | null = null;
export function setContiguousHook(fn: (t: Tensor) => Tensor): void {
  contiguousHook = fn;
}
