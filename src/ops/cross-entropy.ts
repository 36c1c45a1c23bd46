// Cross-entropy fused with log-softmax (shaders/cross_entropy.wgsl). The forward makes one
// pass over each row of logits (online max and Σexp), saving only the per-row logsumexp;
// the backward writes dlogits = (softmax − onehot)·g/normalizer (+ the z-loss term)
// directly in one kernel. Softmax never materialises and the logits are not copied
// (row views are read in place), so the only vocab-sized buffers are the logits and their
// gradient.
//
// Out-of-range targets. Targets live on the GPU, so they cannot be checked on the host
// without a round trip. Instead:
//  * the kernel gives such a row a NaN loss (and NaN gradient): never a silent wrong value;
//  * it records the count and the first bad row in a small status buffer, and
//    `await checkCrossEntropyTargets()` reads the pending records (one tiny readback each)
//    and throws an OpError naming the row, the target, V and the shapes. Call it where the
//    loss is read anyway (e.g. once per step); at most 64 unchecked calls are remembered
//    per device (older ones are dropped);
//  * `validateTargets(hostArray, vocab)` checks host data before upload, synchronously.

import { Tensor, fmtShape } from '../tensor/tensor.ts';
import { keep } from '../tensor/scope.ts';
import { getDevice, type Device } from '../device/index.ts';
import { defineOp, opError, OpError } from './registry.ts';
import { contiguousK, fillK, floatKernelType } from './kernels.ts';
import { grid1d } from './launch.ts';
import { asRows, rowWorkgroup, type RowLayout } from './rows.ts';

export interface CrossEntropyOptions {
  /** Target value whose rows are skipped (loss 0, gradient 0). Default −100. */
  ignoreIndex?: number;
  /** Coefficient of the z-loss, zLoss · logsumexp², added per non-ignored row (default 0). */
  zLoss?: number;
  /** 'mean' (default): over non-ignored rows; 'sum'; 'none': per-row losses. */
  reduction?: 'mean' | 'sum' | 'none';
  /**
   * With 'mean': divide the sum by this instead of the count of non-ignored rows (e.g. the
   * number of real tokens across all micro-batches of a step).
   */
  normalizer?: number;
  /**
   * Write dlogits over the logits' own storage in the backward instead of a new buffer
   * (saves one logits-sized allocation, the largest of an LM step). Only when nothing
   * reads the logits after the loss's backward — neither the caller nor another op's
   * backward (e.g. logits that are directly the output of tanh/exp/softmax, which save
   * their output). Applies to computed logits with a row layout: leaf tensors (user data,
   * parameters) and views that need a copy anyway get a separate gradient buffer.
   */
  inplaceBackward?: boolean;
}

const REDUCTIONS = ['mean', 'sum', 'none'] as const;

interface PendingCheck {
  status: Tensor;
  targets: Tensor;
  call: number;
  vocab: number;
  ignore: number;
  inputs: string;
}

const MAX_PENDING = 64;
const pendingChecks = new WeakMap<Device, PendingCheck[]>();
let callCount = 0;

function remember(device: Device, rec: PendingCheck): void {
  let list = pendingChecks.get(device);
  if (!list) pendingChecks.set(device, (list = []));
  list.push(rec);
  while (list.length > MAX_PENDING) {
    const old = list.shift()!;
    old.status.release();
    old.targets.release();
  }
}

/**
 * Read the target-range status of every crossEntropy call on `device` since the last check
 * and throw an OpError describing the first call that had targets outside [0, V) (other
 * than ignoreIndex). Resolves when all were valid.
 */
export async function checkCrossEntropyTargets(device: Device = getDevice()): Promise<void> {
  const list = pendingChecks.get(device);
  if (!list || list.length === 0) return;
  pendingChecks.set(device, []);
  let error: OpError | null = null;
  try {
    for (const rec of list) {
      if (error) break;
      const st = new Uint32Array((await rec.status.toArray()).buffer);
      if (st[0] === 0) continue;
      const row = ~st[1] >>> 0;
      const v = rec.targets.view([1], [1], rec.targets.offset + row);
      const target = (await v.toArray())[0];
      v.release();
      error = new OpError(
        `cross_entropy: target ${target} at row ${row} is out of range [0, ${rec.vocab}) ` +
          `(ignoreIndex ${rec.ignore}; ${st[0]} bad target${st[0] > 1 ? 's' : ''} in cross_entropy call #${rec.call}; ` +
          `those rows have NaN loss) (inputs: ${rec.inputs})`,
      );
    }
  } finally {
    for (const rec of list) {
      rec.status.release();
      rec.targets.release();
    }
  }
  if (error) throw error;
}

/** Synchronous check of host-side targets before upload (same rule as the kernel). */
export function validateTargets(targets: ArrayLike<number>, vocabSize: number, ignoreIndex = -100): void {
  for (let i = 0; i < targets.length; i++) {
    const t = targets[i];
    if (t === ignoreIndex) continue;
    if (!Number.isInteger(t) || t < 0 || t >= vocabSize) {
      throw new OpError(`cross_entropy: target ${t} at index ${i} is out of range [0, ${vocabSize}) (ignoreIndex ${ignoreIndex})`);
    }
  }
}

interface Saved {
  layout: RowLayout;
  ignore: number;
  z: number;
  perRow: boolean;
  tOff: number;
  inplace: boolean;
}

function uniforms(l: RowLayout, tOff: number, ignore: number, z: number, norm: number): Uint8Array {
  const buf = new ArrayBuffer(32);
  new Uint32Array(buf, 0, 5).set([l.rows, l.d, l.offset, l.stride, tOff]);
  new Int32Array(buf, 20, 1)[0] = ignore;
  new Float32Array(buf, 24, 2).set([z, norm]);
  return new Uint8Array(buf);
}

function wgFor(v: number): number {
  return v >= 1024 ? 256 : rowWorkgroup(v);
}

/**
 * Cross-entropy of logits [..., V] (float; rows read in place when they have unit stride)
 * against i32 class targets [...] (the leading shape of logits). Returns an f32 scalar
 * ('mean', 'sum') or per-row losses ('none', shape of targets).
 *
 * 'mean' divides by the number of non-ignored rows, counted on the GPU (or by
 * `normalizer` when given); when every row is ignored the loss is 0 (not NaN, unlike
 * PyTorch) and so is the gradient. z-loss adds zLoss·lse² per non-ignored row, reduced
 * like the main term. See the file comment for out-of-range targets.
 */
export const crossEntropy: (logits: Tensor, targets: Tensor, opts?: CrossEntropyOptions) => Tensor = defineOp({
  name: 'cross_entropy',
  forward(ctx, logits: Tensor, targets: Tensor, opts: CrossEntropyOptions = {}) {
    const op = 'cross_entropy';
    const dtype = floatKernelType(op, logits);
    if (logits.rank < 2) throw opError(op, `logits must be [..., classes] with at least 2 dims, got ${fmtShape(logits.shape)}`, logits, targets);
    if (targets.dtype !== 'i32') throw opError(op, `targets must be an i32 tensor of class indices, got ${targets.dtype}`, logits, targets);
    const lead = logits.shape.slice(0, -1);
    if (targets.rank !== lead.length || targets.shape.some((d, i) => d !== lead[i])) {
      throw opError(op, `targets must have shape ${fmtShape(lead)} (logits ${fmtShape(logits.shape)} without the class dim), got ${fmtShape(targets.shape)}`, logits, targets);
    }
    const ignore = opts.ignoreIndex ?? -100;
    const z = opts.zLoss ?? 0;
    const reduction = opts.reduction ?? 'mean';
    if (!Number.isInteger(ignore) || Math.abs(ignore) > 2 ** 31 - 1) throw opError(op, `ignoreIndex must be a 32-bit integer, got ${ignore}`);
    if (!(z >= 0 && Number.isFinite(z))) throw opError(op, `zLoss must be a finite number ≥ 0, got ${z}`);
    if (!REDUCTIONS.includes(reduction)) throw opError(op, `reduction must be 'mean', 'sum' or 'none', got '${String(reduction)}'`);
    if (opts.normalizer !== undefined) {
      if (reduction !== 'mean') throw opError(op, `normalizer applies to reduction 'mean' only (got reduction '${reduction}')`);
      if (!(opts.normalizer > 0 && Number.isFinite(opts.normalizer))) throw opError(op, `normalizer must be a positive number, got ${opts.normalizer}`);
    }
    const V = logits.shape[logits.rank - 1];
    if (V === 0) throw opError(op, 'logits have no classes (last dim 0)', logits, targets);

    const { t: lg, layout, tmp } = asRows(logits);
    const tg = targets.isContiguous ? targets : contiguousK(targets);
    const N = layout.rows;
    const perRow = reduction === 'none';
    const device = logits.device;
    const rowLoss = Tensor.empty(perRow ? targets.shape : [N], 'f32', device);
    const lse = Tensor.empty([N], 'f32', device);
    if (N > 0) {
      const status = keep(fillK([2], 'i32', 0, 0, device));
      device.dispatch({
        kernel: 'cross_entropy',
        entry: 'forward',
        constants: { WG: wgFor(V) },
        dtype,
        uniforms: uniforms(layout, tg.offset, ignore, z, 0),
        buffers: [lg.storage.buffer, tg.storage.buffer, rowLoss.storage.buffer, lse.storage.buffer, status.storage.buffer],
        workgroups: grid1d(N, 1),
        label: op,
      });
      remember(device, {
        status,
        targets: tg.retain(),
        call: ++callCount,
        vocab: V,
        ignore,
        inputs: `${fmtShape(logits.shape)} ${logits.dtype}, ${fmtShape(targets.shape)} ${targets.dtype}`,
      });
    }
    let out = rowLoss;
    let scale = lse; // placeholder binding for 'none' (never read)
    if (!perRow) {
      out = Tensor.empty([], 'f32', device);
      scale = Tensor.empty([1], 'f32', device);
      if (N > 0) {
        device.dispatch({
          kernel: 'cross_entropy',
          entry: 'finalize',
          constants: { WG: 256, MODE: reduction === 'sum' ? 0 : 1, HAS_NORM: opts.normalizer !== undefined ? 1 : 0 },
          uniforms: uniforms(layout, tg.offset, ignore, z, opts.normalizer ?? 0),
          buffers: [rowLoss.storage.buffer, tg.storage.buffer, out.storage.buffer, scale.storage.buffer],
          workgroups: [1],
          label: op,
        });
      } else {
        out.release();
        out = fillK([], 'f32', 0, 0, device);
      }
      rowLoss.release();
    }
    ctx.save(lg, tg, lse, scale);
    const saved: Saved = { layout, ignore, z, perRow, tOff: tg.offset, inplace: (opts.inplaceBackward ?? false) && tmp === null && logits.node !== null };
    ctx.attrs.ce = saved;
    tmp?.release();
    if (tg !== targets) tg.release();
    if (scale !== lse) scale.release();
    return out;
  },
  backward(ctx, gy) {
    const [lg, tg, lse, scale] = ctx.saved;
    const s = ctx.attrs.ce as Saved;
    const { rows, d } = s.layout;
    const lead = [...tg.shape];
    const g = gy.isContiguous && gy.offset === 0 ? gy : contiguousK(gy);
    const common = {
      kernel: 'cross_entropy',
      constants: { WG: wgFor(d), PER_ROW: s.perRow ? 1 : 0 },
      dtype: floatKernelType('cross_entropy.backward', lg),
      uniforms: uniforms(s.layout, s.tOff, s.ignore, s.z, 0),
      workgroups: grid1d(rows, 1),
      label: 'cross_entropy.backward',
    };
    let out: Tensor;
    if (s.inplace) {
      // The gradient is a view of the logits' storage with the logits' own layout.
      if (rows > 0) {
        lg.device.dispatch({
          ...common,
          entry: 'backward_inplace',
          buffers: [lg.storage.buffer, tg.storage.buffer, lse.storage.buffer, g.storage.buffer, scale.storage.buffer],
        });
      }
      out = lg.view(lg.shape, lg.strides, lg.offset);
    } else {
      const dl = Tensor.empty([...lead, d], lg.dtype, lg.device);
      if (rows > 0) {
        lg.device.dispatch({
          ...common,
          entry: 'backward',
          buffers: [lg.storage.buffer, tg.storage.buffer, lse.storage.buffer, g.storage.buffer, scale.storage.buffer, dl.storage.buffer],
        });
      }
      out = dl;
    }
    if (g !== gy) g.release();
    return [out, null];
  },
});
