// Index ops: indexSelect (embedding lookup), gather, scatterAdd — each forward with its
// backward — and argsortStable, the reusable GPU sort behind their deterministic backward.
//
// Scatter-adds never use float atomics (WGSL has none, and atomics would make the sum
// order, hence the bits, vary from run to run). Instead: compute each source element's
// destination key, stable-sort the keys with their positions on the GPU (shaders/sort.wgsl:
// a counting sort when the destination range is small next to the key count, as for an
// embedding table, else a bitonic sort), find each destination's segment of the sorted
// list (binary search), and let one thread per output element (or vec4 of them) sum its
// segment in original-position order (shaders/segment.wgsl).
// The result is bit-identical across runs and equals a sequential f32 sum in index order.
//
// Out-of-range indices. Indices given as host data (a number array or Int32Array, for
// indexSelect) are checked on the host and throw immediately. Indices in a GPU tensor
// cannot be checked without a readback that would stall the queue, so the kernels check
// them: an out-of-range index reads as 0 in the forward (and is dropped from any
// scatter), and the first one is recorded in a small per-device error buffer. Call
// `await checkIndexErrors()` (e.g. where the loss is read back each step) to turn a
// recorded error into an OpError naming the op, the index value, the axis and its size.
// Negative indices are out of range (no Python-style wrap-around).

import { Tensor, contiguousStrides, fmtShape, shapeSize } from '../tensor/tensor.ts';
import { getDevice, type Device } from '../device/index.ts';
import { defineOp, opError, type OpError } from './registry.ts';
import { contiguousK, fillK, floatKernelType } from './kernels.ts';
import { grid1d, MAX_RANK } from './launch.ts';
import { normAxis } from './shape.ts';

/** Indices: an i32/u32 tensor, or (indexSelect only) host numbers, checked at once. */
export type IndexArg = Tensor | ArrayLike<number>;

const OP_NAMES = ['indexSelect', 'gather', 'scatterAdd'] as const;
type IndexOpName = (typeof OP_NAMES)[number];

// ------------------------------------------------------------------ error buffer

const errorBuffers = new WeakMap<Device, GPUBuffer>();

function errorBuffer(device: Device): GPUBuffer {
  let b = errorBuffers.get(device);
  if (!b) {
    // New buffers are zero-filled by WebGPU: no error recorded.
    b = device.gpu.createBuffer({
      size: 16,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      label: 'index-errors',
    });
    errorBuffers.set(device, b);
  }
  return b;
}

function errorTag(op: IndexOpName, axis: number): number {
  return ((OP_NAMES.indexOf(op) << 3) | axis) + 1;
}

function rangeMessage(value: number, position: number, axis: number, size: number): string {
  return `index ${value} (at position ${position} of the index tensor) is out of range for axis ${axis} of size ${size}`;
}

/**
 * Read back the device's index-error record (one small readback) and throw an OpError
 * for the first out-of-range index any index kernel met since the last check; the
 * record is then cleared. Resolves quietly when there was none.
 */
export async function checkIndexErrors(device: Device = getDevice()): Promise<void> {
  const err = await readIndexError(device);
  if (err) throw err;
}

/** Like checkIndexErrors, but returns the error (or null) instead of throwing. */
export async function readIndexError(device: Device = getDevice()): Promise<OpError | null> {
  const b = errorBuffers.get(device);
  if (!b) return null;
  const words = new Uint32Array(await device.read(b, 0, 16));
  if (words[0] === 0) return null;
  device.write(b, 0, new Uint32Array(4));
  const tag = words[0] - 1;
  const op = OP_NAMES[tag >> 3] ?? 'index op';
  const axis = tag & 7;
  const value = words[1] | 0; // indices are i32 (u32 values above 2^31 show as negative)
  return opError(op, rangeMessage(value, words[3], axis, words[2]));
}

// ------------------------------------------------------------------ helpers

function checkIndexTensor(op: string, idx: Tensor, ...others: Tensor[]): void {
  if (!(idx instanceof Tensor)) throw opError(op, 'the index must be an i32 tensor', ...others);
  if (idx.dtype !== 'i32' && idx.dtype !== 'u32') {
    throw opError(op, `the index tensor must have dtype i32 (or u32), not ${idx.dtype}`, ...others, idx);
  }
}

/** A contiguous i32/u32 index tensor (the caller releases it) from a tensor or checked host data. */
function indexTensor(op: IndexOpName, idx: IndexArg, axis: number, axisSize: number, x: Tensor): Tensor {
  if (idx instanceof Tensor) {
    checkIndexTensor(op, idx, x);
    idx.assertAlive(op);
    return idx.isContiguous ? idx.view(idx.shape, idx.strides, idx.offset) : contiguousK(idx);
  }
  const n = idx.length;
  const host = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = idx[i];
    if (!Number.isInteger(v)) throw opError(op, `index ${v} at position ${i} is not an integer`, x);
    if (v < 0 || v >= axisSize) throw opError(op, rangeMessage(v, i, axis, axisSize), x);
    host[i] = v;
  }
  return Tensor.fromArray(host, [n], 'i32', x.device);
}

function checkRank(op: string, ...ts: Tensor[]): void {
  for (const t of ts) if (t.rank > MAX_RANK) throw opError(op, `rank ${t.rank} exceeds the supported ${MAX_RANK}`, ...ts);
}

function paramsGather(
  total: number,
  axis: number,
  axisSize: number,
  xOff: number,
  idxOff: number,
  tag: number,
  shape: readonly number[],
  xst: readonly number[],
  tst: readonly number[] = [],
): Uint8Array {
  const buf = new ArrayBuffer(32 + 3 * 32);
  const u = new Uint32Array(buf);
  u.set([total, shape.length, axis, axisSize, xOff, idxOff, tag, 0]);
  u.set(shape, 8);
  u.set(xst, 16);
  u.set(tst, 24);
  return new Uint8Array(buf);
}

// ------------------------------------------------------------------ kernel launchers

/** out = x[.., idx, ..] along `axis`; out shape = x.shape with the axis replaced by idx.shape. */
export function indexSelectK(x: Tensor, axis: number, idx: Tensor, op: IndexOpName = 'indexSelect'): Tensor {
  const dtype = floatKernelType(op, x);
  const n = idx.size;
  const outShape = [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)];
  const iter = [...x.shape];
  iter[axis] = n;
  const out = Tensor.empty(outShape, x.dtype, x.device);
  if (out.size === 0) return out;
  // Whole vec4s per thread when the last dim is contiguous, not the axis, and 4-aligned.
  const last = x.rank - 1;
  const v4 =
    axis !== last && x.strides[last] === 1 && x.shape[last] % 4 === 0 && x.offset % 4 === 0 &&
    x.strides.every((s, d) => d === last || s % 4 === 0);
  const cols = v4 ? segCols(x.device, x.shape[last] / 4) : 1;
  const vw = v4 ? 4 * cols : 1;
  const strides = x.strides.map((s, d) => (d === last ? s : s / 4));
  if (v4) iter[last] /= vw;
  x.device.dispatch({
    kernel: 'gather',
    entry: v4 ? 'index_select4' : 'index_select',
    constants: v4 ? { COLS: cols } : {},
    dtype,
    uniforms: paramsGather(out.size / vw, axis, x.shape[axis], v4 ? x.offset / 4 : x.offset, idx.offset, errorTag(op, axis), iter, v4 ? strides : x.strides),
    buffers: [x.storage.buffer, idx.storage.buffer, out.storage.buffer, errorBuffer(x.device)],
    workgroups: grid1d(out.size / vw),
    label: op,
  });
  return out;
}

/** PyTorch gather: out[c] = x[c with c[axis] = idx[c]], out shape = idx.shape. idx contiguous. */
export function gatherK(x: Tensor, axis: number, idx: Tensor, op: IndexOpName = 'gather'): Tensor {
  const dtype = floatKernelType(op, x);
  const out = Tensor.empty(idx.shape, x.dtype, x.device);
  if (out.size === 0) return out;
  x.device.dispatch({
    kernel: 'gather',
    entry: 'gather_elems',
    dtype,
    uniforms: paramsGather(out.size, axis, x.shape[axis], x.offset, idx.offset, errorTag(op, axis), idx.shape, x.strides),
    buffers: [x.storage.buffer, idx.storage.buffer, out.storage.buffer, errorBuffer(x.device)],
    workgroups: grid1d(out.size),
    label: op,
  });
  return out;
}

export interface ArgsortResult {
  /** The keys in ascending order (same dtype as the input). */
  sortedKeys: Tensor;
  /** i32 original positions: sortedKeys[i] = keys[order[i]]; equal keys keep their order. */
  order: Tensor;
}

const SORT_CHUNK = 512;
/**
 * vec4 columns per thread in segment_sum4. On a CPU adapter (lavapipe) a thread that
 * covers 8 vec4s loads its segment bounds once for all of them: the embedding backward
 * (V=32k, D=256) measured ~2× faster than with 1. On GPUs 1 keeps lanes coalesced.
 * `setSegmentCols(c)` overrides the choice (benchmarks, tuners); null restores it.
 */
let segColsOverride: number | null = null;
export function setSegmentCols(c: number | null): void {
  segColsOverride = c;
}
function segCols(device: Device, inner4: number): number {
  const want = segColsOverride ?? (device.adapter.architecture === 'software' ? 8 : 1);
  let c = want;
  while (c > 1 && inner4 % c !== 0) c >>= 1;
  return Math.max(1, c);
}

export interface ArgsortOptions {
  /** Compare i32 keys as signed (default for i32); false sorts negative keys last, as their u32 bits. */
  signed?: boolean;
  /**
   * Keys are known to lie in [0, maxKey): use the stable counting sort (3 dispatches,
   * O(n + maxKey·blocks) work) instead of the bitonic sort. Keys outside the range are
   * placed last, in their original order (compared as u32 bits: negatives count as out of range).
   */
  maxKey?: number;
}

/**
 * Stable ascending argsort of a 1-D i32/u32 tensor on the GPU. Deterministic: equal keys
 * keep their original order. Without `maxKey`: a bitonic sort of (key, position) pairs,
 * O(n log² n) work in 1 + Σ stages dispatches (~15 for n = 8k). With `maxKey`: a counting
 * sort (see ArgsortOptions) — the choice for small key ranges such as MoE expert ids.
 * Both results are owned by the caller.
 */
export function argsortStable(keys: Tensor, opts: ArgsortOptions = {}): ArgsortResult {
  checkIndexTensor('argsortStable', keys);
  if (opts.maxKey !== undefined) {
    if (!Number.isInteger(opts.maxKey) || opts.maxKey < 0 || opts.maxKey >= 2 ** 31) {
      throw opError('argsortStable', `maxKey ${opts.maxKey} must be an integer in [0, 2^31)`, keys);
    }
    return countingArgsort(keys, opts.maxKey);
  }
  const device = keys.device;
  const src = keys.isContiguous ? keys : contiguousK(keys);
  const n = keys.size;
  const P = Math.max(SORT_CHUNK, 2 ** Math.ceil(Math.log2(Math.max(n, 1))));
  const sk = Tensor.empty([P], keys.dtype, device);
  const sv = Tensor.empty([P], 'i32', device);
  const signed = opts.signed ?? keys.dtype === 'i32';
  const constants = { SIGNED: signed ? 1 : 0 };
  const params = (k: number, j: number, last: boolean) => new Uint8Array(new Uint32Array([n, P, k, j, src.offset, last ? 1 : 0, 0, 0]).buffer);
  if (n > 0) {
    device.dispatch({
      kernel: 'sort',
      entry: 'local_sort',
      constants,
      uniforms: params(0, 0, P === SORT_CHUNK),
      buffers: [src.storage.buffer, sk.storage.buffer, sv.storage.buffer],
      workgroups: grid1d(P / SORT_CHUNK, 1),
      label: 'argsortStable',
    });
    for (let k = SORT_CHUNK * 2; k <= P; k *= 2) {
      for (let j = k / 2; j >= SORT_CHUNK; j /= 2) {
        device.dispatch({
          kernel: 'sort',
          entry: 'global_step',
          constants,
          uniforms: params(k, j, false),
          buffers: [sk.storage.buffer, sv.storage.buffer],
          workgroups: grid1d(P / 2),
          label: 'argsortStable',
        });
      }
      device.dispatch({
        kernel: 'sort',
        entry: 'local_merge',
        constants,
        uniforms: params(k, 0, k === P),
        buffers: [sk.storage.buffer, sv.storage.buffer],
        workgroups: grid1d(P / SORT_CHUNK, 1),
        label: 'argsortStable',
      });
    }
  }
  if (src !== keys) src.release();
  const sortedKeys = sk.view([n], [1], 0);
  const order = sv.view([n], [1], 0);
  sk.release();
  sv.release();
  return { sortedKeys, order };
}

function countingArgsort(keys: Tensor, m: number): ArgsortResult {
  const device = keys.device;
  const src = keys.isContiguous ? keys : contiguousK(keys);
  const n = keys.size;
  const sortedKeys = Tensor.empty([n], keys.dtype, device);
  const order = Tensor.empty([n], 'i32', device);
  if (n > 0) {
    // Blocks of ≥ 256 keys, but few enough that the (m+1)×nb table stays ≲ 4n entries.
    const nb = Math.max(1, Math.min(Math.ceil(n / 256), Math.floor((4 * n) / (m + 1))));
    const blk = Math.ceil(n / nb);
    const len = (m + 1) * nb;
    if (len * 4 > device.maxBinding) throw opError('argsortStable', `maxKey ${m} is too large for a counting sort of ${n} keys`, keys);
    const table = Tensor.empty([len], 'u32', device);
    const uniforms = new Uint8Array(new Uint32Array([n, m, nb, blk, src.offset, len, 0, 0]).buffer);
    const groups = grid1d(nb, 64);
    device.dispatch({ kernel: 'sort', entry: 'count_blocks', uniforms, buffers: [src.storage.buffer, table.storage.buffer], workgroups: groups, label: 'argsortStable' });
    device.dispatch({ kernel: 'sort', entry: 'scan_counts', uniforms, buffers: [table.storage.buffer], workgroups: [1], label: 'argsortStable' });
    device.dispatch({
      kernel: 'sort',
      entry: 'scatter_blocks',
      uniforms,
      buffers: [src.storage.buffer, table.storage.buffer, sortedKeys.storage.buffer, order.storage.buffer],
      workgroups: groups,
      label: 'argsortStable',
    });
    table.release();
  }
  if (src !== keys) src.release();
  return { sortedKeys, order };
}

/**
 * Deterministic scatter-add by destination:
 *   out[o, r, c] = base[o, r, c] + Σ_{k : keys[k] = r, ascending k} src[o, k, c]
 * for o < outer, r < m, c < inner; src is [outer, n, inner] (contiguous from its offset),
 * keys are n u32/i32 destinations (keys outside [0, m) are dropped), base (optional) is
 * contiguous [outer, m, inner]. Returns a new contiguous tensor of `shape`
 * (outer·m·inner elements).
 */
export function segmentScatterAddK(
  op: string,
  shape: readonly number[],
  outer: number,
  m: number,
  inner: number,
  keys: Tensor,
  src: Tensor,
  base: Tensor | null,
): Tensor {
  const dtype = floatKernelType(op, src, ...(base ? [base] : []));
  const device = src.device;
  const n = keys.size;
  if (outer * m * inner !== shapeSize(shape)) throw opError(op, `internal: ${outer}·${m}·${inner} elements for shape ${fmtShape(shape)}`);
  if (base && (!base.isContiguous || base.size !== shapeSize(shape))) throw opError(op, 'internal: base must be contiguous', base);
  if (!src.isContiguous) throw opError(op, 'internal: src must be contiguous', src);
  const total = outer * m * inner;
  if (total === 0) return Tensor.empty(shape, src.dtype, device);
  if (n === 0) return copyOrZeros(base, shape, src.dtype, device);
  // Destinations lie in [0, m) (anything else is dropped): a counting sort when the table
  // it needs is not much larger than the keys (the embedding case), else the bitonic sort.
  const counting = m + 1 <= Math.max(16 * n, 65536);
  const { sortedKeys, order } = argsortStable(keys, counting ? { maxKey: m } : { signed: false });
  const bounds = Tensor.empty([m + 1], 'u32', device);
  device.dispatch({
    kernel: 'segment',
    entry: 'segment_bounds',
    uniforms: new Uint8Array(new Uint32Array([m + 1, n, m, inner, 0, 0, 0, 0]).buffer),
    buffers: [sortedKeys.storage.buffer, bounds.storage.buffer],
    workgroups: grid1d(m + 1),
    label: op,
  });
  const out = Tensor.empty(shape, src.dtype, device);
  // Four columns per thread when rows are whole vec4s (the embedding case).
  // Several vec4s per thread when the row is long enough: fewer bounds loads per output.
  const v = inner % 4 === 0 && src.offset % 4 === 0 && (!base || base.offset % 4 === 0) ? 4 : 1;
  const cols = v === 4 ? segCols(device, inner / 4) : 1;
  const threads = total / v / cols;
  device.dispatch({
    kernel: 'segment',
    entry: v === 4 ? 'segment_sum4' : 'segment_sum',
    constants: v === 4 ? { HAS_BASE: base ? 1 : 0, COLS: cols } : { HAS_BASE: base ? 1 : 0 },
    dtype,
    uniforms: new Uint8Array(new Uint32Array([threads, n, m, inner / v, src.offset / v, base ? base.offset / v : 0, 0, 0]).buffer),
    buffers: [src.storage.buffer, order.storage.buffer, bounds.storage.buffer, (base ?? src).storage.buffer, out.storage.buffer],
    workgroups: grid1d(threads),
    label: op,
  });
  sortedKeys.release();
  order.release();
  bounds.release();
  return out;
}

/** A contiguous copy of base (any view), or zeros of `shape`. */
function copyOrZeros(base: Tensor | null, shape: readonly number[], dtype: Tensor['dtype'], device: Device): Tensor {
  if (!base) return fillK(shape, dtype, 0, 0, device);
  return contiguousK(base, Tensor.empty(shape, base.dtype, device));
}

/** Backward of indexSelect: zeros of xShape with gy's slices scatter-added at idx (deterministic). */
export function indexSelectBackwardK(gy: Tensor, axis: number, idx: Tensor, xShape: readonly number[]): Tensor {
  const outer = shapeSize(xShape.slice(0, axis));
  const inner = shapeSize(xShape.slice(axis + 1));
  const g = gy.isContiguous ? gy : contiguousK(gy);
  const out = segmentScatterAddK('indexSelect.backward', xShape, outer, xShape[axis], inner, idx, g, null);
  if (g !== gy) g.release();
  return out;
}

/**
 * out = base (or zeros of `shape`) with src[c] added at c[axis] = idx[c], for c over
 * idx.shape (PyTorch scatter_add_ semantics); deterministic.
 */
export function scatterAddK(op: IndexOpName, base: Tensor | null, shape: readonly number[], axis: number, idx: Tensor, src: Tensor): Tensor {
  const dtype = floatKernelType(op, src, ...(base ? [base] : []));
  const device = src.device;
  const n = idx.size;
  if (n === 0) return copyOrZeros(base, shape, src.dtype, device);
  const keys = Tensor.empty(idx.shape, 'u32', device);
  const vals = Tensor.empty(idx.shape, src.dtype, device);
  device.dispatch({
      kernel: 'gather',
      entry: 'scatter_keys',
      dtype,
      uniforms: paramsGather(n, axis, shape[axis], src.offset, idx.offset, errorTag(op, axis), idx.shape, src.strides, contiguousStrides(shape)),
      buffers: [src.storage.buffer, idx.storage.buffer, keys.storage.buffer, vals.storage.buffer, errorBuffer(device)],
      workgroups: grid1d(n),
    label: op,
  });
  const b = base && !base.isContiguous ? contiguousK(base) : base;
  const out = segmentScatterAddK(op, shape, 1, shapeSize(shape), 1, keys, vals, b);
  if (b && b !== base) b.release();
  keys.release();
  vals.release();
  return out;
}

// ------------------------------------------------------------------ ops

/**
 * Select slices of x along `axis` at the given indices (torch.index_select; numpy.take
 * for a multi-dimensional index): out shape = x.shape[:axis] + idx.shape + x.shape[axis+1:].
 * `indexSelect(weight, 0, ids)` is an embedding lookup. x may be any view. Gradient:
 * a deterministic scatter-add into zeros of x's shape.
 */
export const indexSelect: (x: Tensor, axis: number, idx: IndexArg) => Tensor = defineOp({
  name: 'indexSelect',
  forward(ctx, x: Tensor, axis: number, idx: IndexArg) {
    const a = normAxis('indexSelect', axis, x.rank, x);
    floatKernelType('indexSelect', x);
    checkRank('indexSelect', x);
    const it = indexTensor('indexSelect', idx, a, x.shape[a], x);
    try {
      const out = indexSelectK(x, a, it);
      ctx.save(it);
      ctx.attrs.a = a;
      ctx.attrs.xShape = [...x.shape];
      return out;
    } finally {
      it.release();
    }
  },
  backward(ctx, gy) {
    const [it] = ctx.saved;
    return [indexSelectBackwardK(gy, ctx.attrs.a as number, it, ctx.attrs.xShape as number[]), null];
  },
});

/** Embedding lookup: weight [V, D], ids of any shape → [...ids.shape, D]. */
export const embedding = (weight: Tensor, ids: IndexArg): Tensor => indexSelect(weight, 0, ids);

function checkGatherShapes(op: IndexOpName, x: Tensor, a: number, idx: Tensor, extra?: Tensor): void {
  if (idx.rank !== x.rank) throw opError(op, `the index must have the same rank as the input (${idx.rank} vs ${x.rank})`, x, idx);
  for (let d = 0; d < x.rank; d++) {
    if (d !== a && idx.shape[d] > x.shape[d]) {
      throw opError(op, `index dimension ${d} (${idx.shape[d]}) exceeds the input's (${x.shape[d]})`, x, idx);
    }
    if (extra && idx.shape[d] > extra.shape[d]) {
      throw opError(op, `index dimension ${d} (${idx.shape[d]}) exceeds the source's (${extra.shape[d]})`, x, idx, extra);
    }
  }
}

/** torch.gather: out[c] = x[c with c[axis] = idx[c]]; idx has x's rank; out shape = idx.shape. */
export const gather: (x: Tensor, axis: number, idx: Tensor) => Tensor = defineOp({
  name: 'gather',
  forward(ctx, x: Tensor, axis: number, idx: Tensor) {
    const a = normAxis('gather', axis, x.rank, x);
    floatKernelType('gather', x);
    checkIndexTensor('gather', idx, x);
    checkRank('gather', x);
    checkGatherShapes('gather', x, a, idx);
    const it = indexTensor('gather', idx, a, x.shape[a], x);
    try {
      const out = gatherK(x, a, it);
      ctx.save(it);
      ctx.attrs.a = a;
      ctx.attrs.xShape = [...x.shape];
      return out;
    } finally {
      it.release();
    }
  },
  backward(ctx, gy) {
    const [it] = ctx.saved;
    const g = gy.isContiguous ? gy : contiguousK(gy);
    const gx = scatterAddK('gather', null, ctx.attrs.xShape as number[], ctx.attrs.a as number, it, g);
    if (g !== gy) g.release();
    return [gx, null];
  },
});

/**
 * torch.scatter_add (out of place): out = base with src[c] added at c[axis] = idx[c] for
 * every c in idx.shape. idx, base and src have the same rank; idx.shape <= src.shape, and
 * <= base.shape except along the axis. Deterministic; differentiable in base and src.
 */
export const scatterAdd: (base: Tensor, axis: number, idx: Tensor, src: Tensor) => Tensor = defineOp({
  name: 'scatterAdd',
  forward(ctx, base: Tensor, axis: number, idx: Tensor, src: Tensor) {
    const a = normAxis('scatterAdd', axis, base.rank, base);
    floatKernelType('scatterAdd', base, src);
    checkIndexTensor('scatterAdd', idx, base, src);
    checkRank('scatterAdd', base, src);
    if (src.rank !== base.rank) throw opError('scatterAdd', `source and base ranks differ (${src.rank} vs ${base.rank})`, base, idx, src);
    checkGatherShapes('scatterAdd', base, a, idx, src);
    const it = indexTensor('scatterAdd', idx, a, base.shape[a], base);
    try {
      const out = scatterAddK('scatterAdd', base, base.shape, a, it, src);
      ctx.save(it);
      ctx.attrs.a = a;
      ctx.attrs.srcShape = [...src.shape];
      return out;
    } finally {
      it.release();
    }
  },
  backward(ctx, gy) {
    const [it] = ctx.saved;
    const a = ctx.attrs.a as number;
    const srcShape = ctx.attrs.srcShape as number[];
    const g = gatherK(gy, a, it, 'scatterAdd');
    let gsrc = g;
    if (srcShape.some((d, i) => d !== it.shape[i])) {
      gsrc = fillK(srcShape, gy.dtype, 0, 0, gy.device);
      const region = gsrc.view(it.shape, gsrc.strides, 0);
      contiguousK(g, region);
      region.release();
      g.release();
    }
    return [gy, null, gsrc];
  },
});
