// RMSNorm and LayerNorm over the last axis (PyTorch semantics), each a fused kernel
// forward and a fused backward (shaders/norm.wgsl):
//   rmsNorm:   y = x / sqrt(mean(x²) + eps) · w
//   layerNorm: y = (x − mean(x)) / sqrt(var(x) + eps) · w (+ b), biased variance
// The forward saves the per-row mean and rstd (f32); the backward computes dx per row and
// dweight/dbias by a deterministic two-pass reduction over rows (no float atomics).

import { Tensor, fmtShape } from '../tensor/tensor.ts';
import { defineOp, opError } from './registry.ts';
import { contiguousK, fillK, floatKernelType } from './kernels.ts';
import { grid1d } from './launch.ts';
import { asRows, rowWorkgroup, type RowLayout } from './rows.ts';

const RMS = 0;
const LAYER = 1;

/** Row chunks of the backward's dweight/dbias reduction: enough workgroups to fill a GPU. */
const MAX_CHUNKS = 256;
/** Columns per thread the backward keeps in registers (REG_COLS in norm.wgsl). */
const REG_COLS = 16;

function checkArgs(op: string, x: Tensor, weight: Tensor, bias: Tensor | null, eps: number): void {
  const ts = bias ? [x, weight, bias] : [x, weight];
  floatKernelType(op, ...ts);
  if (x.rank === 0) throw opError(op, 'x needs at least one dimension (the normalised last axis)', ...ts);
  const d = x.shape[x.rank - 1];
  if (weight.rank !== 1 || weight.shape[0] !== d) {
    throw opError(op, `weight must have shape [${d}] (the last dim of x ${fmtShape(x.shape)}), got ${fmtShape(weight.shape)}`, ...ts);
  }
  if (bias && (bias.rank !== 1 || bias.shape[0] !== d)) {
    throw opError(op, `bias must have shape [${d}] (the last dim of x ${fmtShape(x.shape)}), got ${fmtShape(bias.shape)}`, ...ts);
  }
  if (!(typeof eps === 'number' && eps >= 0 && Number.isFinite(eps))) throw opError(op, `eps must be a finite number ≥ 0, got ${eps}`, ...ts);
}

/** A 1-D parameter bound with an element offset (copied only when strided). */
function vec(t: Tensor): Tensor {
  return t.strides[0] === 1 || t.shape[0] <= 1 ? t : contiguousK(t);
}

function params(l: RowLayout, wOff: number, bOff: number, g: RowLayout | null, eps: number, chunks = 0, perChunk = 0): Uint8Array {
  const buf = new ArrayBuffer(48);
  const u = new Uint32Array(buf);
  u.set([l.rows, l.d, l.offset, l.stride, wOff, bOff, g?.offset ?? 0, g?.stride ?? 0]);
  new Float32Array(buf)[8] = eps;
  u[9] = chunks;
  u[10] = perChunk;
  return new Uint8Array(buf);
}

function normForward(op: string, mode: number, ctx: { save(...t: Tensor[]): void; attrs: Record<string, unknown> }, x: Tensor, weight: Tensor, bias: Tensor | null, eps: number): Tensor {
  checkArgs(op, x, weight, bias, eps);
  const dtype = floatKernelType(op, x);
  const y = Tensor.empty(x.shape, x.dtype, x.device);
  const { t: xs, layout, tmp } = asRows(x);
  const w = vec(weight);
  const b = bias ? vec(bias) : null;
  const stats = Tensor.empty([layout.rows, 2], 'f32', x.device);
  if (layout.rows > 0 && layout.d > 0) {
    x.device.dispatch({
      kernel: 'norm',
      entry: 'forward',
      constants: { WG: rowWorkgroup(layout.d), MODE: mode, HAS_BIAS: b ? 1 : 0 },
      dtype,
      uniforms: params(layout, w.offset, b?.offset ?? 0, null, eps),
      // Without a bias the weight fills the (unread) bias slot.
      buffers: [xs.storage.buffer, w.storage.buffer, (b ?? w).storage.buffer, y.storage.buffer, stats.storage.buffer],
      workgroups: grid1d(layout.rows, 1),
      label: op,
    });
  }
  ctx.save(xs, w, stats);
  ctx.attrs.layout = layout;
  ctx.attrs.hasBias = b !== null;
  tmp?.release();
  if (w !== weight) w.release();
  if (b && b !== bias) b.release();
  return y;
}

function normBackward(op: string, mode: number, saved: readonly Tensor[], attrs: Record<string, unknown>, gy: Tensor): Array<Tensor | null> {
  const [xs, w, stats] = saved;
  const layout = attrs.layout as RowLayout;
  const hasBias = attrs.hasBias as boolean;
  const { rows, d } = layout;
  const shape = gy.shape;
  const dx = Tensor.empty(shape, xs.dtype, xs.device);
  if (rows === 0 || d === 0) {
    const dw = fillK([d], w.dtype, 0, 0, w.device);
    return hasBias ? [dx, dw, fillK([d], w.dtype, 0, 0, w.device)] : [dx, dw];
  }
  const dtype = floatKernelType(op, xs, gy);
  const { t: g, layout: gl, tmp } = asRows(gy);
  const perChunk = Math.ceil(rows / Math.min(rows, MAX_CHUNKS));
  const chunks = Math.ceil(rows / perChunk);
  const part = Tensor.empty([(hasBias ? 2 : 1) * chunks * d], 'f32', xs.device);
  const wg = rowWorkgroup(d);
  xs.device.dispatch({
    kernel: 'norm',
    entry: 'backward',
    constants: { WG: wg, MODE: mode, HAS_BIAS: hasBias ? 1 : 0, REG: d <= REG_COLS * wg ? 1 : 0 },
    dtype,
    uniforms: params(layout, w.offset, 0, gl, 0, chunks, perChunk),
    buffers: [xs.storage.buffer, w.storage.buffer, g.storage.buffer, stats.storage.buffer, dx.storage.buffer, part.storage.buffer],
    workgroups: grid1d(chunks, 1),
    label: op,
  });
  tmp?.release();
  const colsum = (offset: number): Tensor => {
    const out = Tensor.empty([d], w.dtype, w.device);
    xs.device.dispatch({
      kernel: 'norm',
      entry: 'colsum',
      constants: { WG: 64 },
      dtype,
      uniforms: params({ rows, d, offset, stride: 0 }, 0, 0, null, 0, chunks, perChunk),
      buffers: [part.storage.buffer, out.storage.buffer],
      workgroups: grid1d(d, 64),
      label: op,
    });
    return out;
  };
  const dw = colsum(0);
  const db = hasBias ? colsum(chunks * d) : null;
  part.release();
  return db ? [dx, dw, db] : [dx, dw];
}

/**
 * RMSNorm over the last axis: y = x / sqrt(mean(x²) + eps) · weight.
 * x: [..., D] float (any view whose rows have unit stride is read without a copy);
 * weight: [D], same dtype. Output: contiguous, shape and dtype of x.
 */
export const rmsNorm: (x: Tensor, weight: Tensor, eps?: number) => Tensor = defineOp({
  name: 'rms_norm',
  forward: (ctx, x: Tensor, weight: Tensor, eps = 1e-6) => normForward('rms_norm', RMS, ctx, x, weight, null, eps),
  backward: (ctx, gy) => normBackward('rms_norm.backward', RMS, ctx.saved, ctx.attrs, gy),
});

/**
 * LayerNorm over the last axis: y = (x − mean) / sqrt(var + eps) · weight + bias
 * (biased variance, as torch.nn.functional.layer_norm). bias may be null.
 */
export const layerNorm: (x: Tensor, weight: Tensor, bias: Tensor | null, eps?: number) => Tensor = defineOp({
  name: 'layer_norm',
  forward: (ctx, x: Tensor, weight: Tensor, bias: Tensor | null, eps = 1e-5) => normForward('layer_norm', LAYER, ctx, x, weight, bias, eps),
  backward: (ctx, gy) => normBackward('layer_norm.backward', LAYER, ctx.saved, ctx.attrs, gy),
});
