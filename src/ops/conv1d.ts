// 1-D convolution over packed variable-length sequences (time-major rows), as an unfold
// (im2col) kernel plus a matmul:
//
//   conv1d(x [T, C_in], weight [C_out, C_in, K], bias [C_out] | null,
//          { stride, padding, cuSeqlens }) → [T_out, C_out]
//
// `cuSeqlens` = [0, l1, l1+l2, …, T] packs several sequences (audio clips) into T rows;
// each is convolved on its own with `padding` zeros at both of its ends, so no output
// row sees another sequence. Output sequence s has conv1dOutputLength(l_s, K, stride,
// padding) rows and the outputs are packed in the same order (see conv1dCuSeqlens).
// Weight layout [C_out, C_in, K] is PyTorch's Conv1d (cross-correlation, no flip).
//
// Backward: unfold's backward is a deterministic gather (shaders/conv1d.wgsl `fold`);
// the weight and bias gradients come from matmul / sum's own backward.

import { Tensor, fmtShape } from '../tensor/tensor.ts';
import { keep } from '../tensor/scope.ts';
import { defineOp, opError } from './registry.ts';
import { floatKernelType } from './kernels.ts';
import { grid1d } from './launch.ts';
import { add } from './elementwise.ts';
import { matmul } from './matmul.ts';
import { reshape, transpose } from './shape.ts';

export interface Conv1dOptions {
  /** Step between output positions (default 1). */
  stride?: number;
  /** Zeros added at both ends of every sequence (default 0). */
  padding?: number;
  /** Cumulative sequence lengths [0, …, T] of the packed rows; default: one sequence. */
  cuSeqlens?: readonly number[];
}

const OP = 'conv1d';

/** Output length of one sequence: ⌊(len + 2·padding − kernel) / stride⌋ + 1 (≤ 0: too short). */
export function conv1dOutputLength(len: number, kernel: number, stride = 1, padding = 0): number {
  return Math.floor((len + 2 * padding - kernel) / stride) + 1;
}

/** cuSeqlens of conv1d's output for input cuSeqlens `cu`. */
export function conv1dCuSeqlens(cu: readonly number[], kernel: number, stride = 1, padding = 0): number[] {
  const out = [0];
  for (let i = 1; i < cu.length; i++) out.push(out[i - 1] + conv1dOutputLength(cu[i] - cu[i - 1], kernel, stride, padding));
  return out;
}

interface UnfoldGeom {
  cin: number;
  k: number;
  stride: number;
  pad: number;
  nseg: number;
  tin: number;
  tout: number;
}

function checkInt(op: string, what: string, v: number, min: number, x: Tensor): void {
  if (!Number.isInteger(v) || v < min) throw opError(op, `${what} must be an integer ≥ ${min}, got ${v}`, x);
}

/** Validated segment table: (in_start, in_len, out_start, out_len) per sequence. */
function segmentTable(op: string, x: Tensor, k: number, stride: number, pad: number, cuIn: readonly number[] | undefined): { table: Uint32Array; tout: number } {
  const T = x.shape[0];
  const cu = cuIn ? Array.from(cuIn) : [0, T];
  if (cu.length < 2 || cu[0] !== 0 || cu[cu.length - 1] !== T) {
    throw opError(op, `cuSeqlens must run from 0 to the row count ${T}, got [${cu.join(', ')}]`, x);
  }
  const nseg = cu.length - 1;
  const table = new Uint32Array(nseg * 4);
  let outStart = 0;
  for (let s = 0; s < nseg; s++) {
    const len = cu[s + 1] - cu[s];
    if (!Number.isInteger(len) || len < 0) throw opError(op, `cuSeqlens must be non-decreasing integers, got [${cu.join(', ')}]`, x);
    const lout = conv1dOutputLength(len, k, stride, pad);
    if (lout < 1) {
      throw opError(op, `sequence ${s} has ${len} rows, too short for kernel ${k} with padding ${pad} (needs ≥ ${Math.max(1, k - 2 * pad)})`, x);
    }
    table.set([cu[s], len, outStart, lout], 4 * s);
    outStart += lout;
  }
  return { table, tout: outStart };
}

function unfoldK(x: Tensor, segs: Tensor, g: UnfoldGeom): Tensor {
  const dtype = floatKernelType(`${OP}.unfold`, x);
  const col = Tensor.empty([g.tout, g.cin * g.k], x.dtype, x.device);
  if (col.size === 0) return col;
  x.device.dispatch({
    kernel: 'conv1d',
    entry: 'unfold',
    dtype,
    uniforms: new Uint32Array([g.cin, g.k, g.stride, g.pad, g.nseg, col.size, x.strides[0], x.strides[1], x.offset, 0, 0, 0]),
    buffers: [x.storage.buffer, segs.storage.buffer, col.storage.buffer],
    workgroups: grid1d(col.size),
    label: `${OP}.unfold`,
  });
  return col;
}

function foldK(dcol: Tensor, segs: Tensor, g: UnfoldGeom): Tensor {
  const dtype = floatKernelType(`${OP}.fold`, dcol);
  const dx = Tensor.empty([g.tin, g.cin], dcol.dtype, dcol.device);
  if (dx.size === 0) return dx;
  dcol.device.dispatch({
    kernel: 'conv1d',
    entry: 'fold',
    dtype,
    uniforms: new Uint32Array([g.cin, g.k, g.stride, g.pad, g.nseg, dx.size, dcol.strides[0], dcol.strides[1], dcol.offset, 0, 0, 0]),
    buffers: [dcol.storage.buffer, segs.storage.buffer, dx.storage.buffer],
    workgroups: grid1d(dx.size),
    label: `${OP}.fold`,
  });
  return dx;
}

/**
 * im2col of packed sequences: x [T, C] → [T_out, C·K] with column c·K + k holding
 * x[t·stride − padding + k, c] of the row's own sequence (zero outside it).
 */
export const unfold1d: (x: Tensor, kernel: number, opts?: Conv1dOptions) => Tensor = defineOp({
  name: 'unfold1d',
  forward(ctx, x: Tensor, kernel: number, opts: Conv1dOptions = {}) {
    const op = 'unfold1d';
    floatKernelType(op, x);
    if (x.rank !== 2) throw opError(op, `expects rows [T, C], got rank ${x.rank} ${fmtShape(x.shape)}`, x);
    const stride = opts.stride ?? 1;
    const pad = opts.padding ?? 0;
    checkInt(op, 'kernel size', kernel, 1, x);
    checkInt(op, 'stride', stride, 1, x);
    checkInt(op, 'padding', pad, 0, x);
    const { table, tout } = segmentTable(op, x, kernel, stride, pad, opts.cuSeqlens);
    const g: UnfoldGeom = { cin: x.shape[1], k: kernel, stride, pad, nseg: table.length / 4, tin: x.shape[0], tout };
    const segs = keep(Tensor.fromArray(table, [g.nseg, 4], 'u32', x.device));
    ctx.save(segs);
    segs.release();
    ctx.attrs.g = g;
    return unfoldK(x, segs, g);
  },
  backward: (ctx, gcol) => [foldK(gcol, ctx.saved[0], ctx.attrs.g as UnfoldGeom)],
});

/**
 * Conv1d over packed sequences: x [T, C_in] (time-major rows), weight [C_out, C_in, K],
 * optional bias [C_out] → [T_out, C_out]. Differentiable in x, weight and bias.
 */
export function conv1d(x: Tensor, weight: Tensor, bias: Tensor | null, opts: Conv1dOptions = {}): Tensor {
  if (weight.rank !== 3) throw opError(OP, `weight must be [C_out, C_in, K], got ${fmtShape(weight.shape)}`, x, weight);
  if (x.rank !== 2) throw opError(OP, `expects rows [T, C_in], got rank ${x.rank} ${fmtShape(x.shape)}`, x, weight);
  const [cout, cin, k] = weight.shape;
  if (x.shape[1] !== cin) throw opError(OP, `input has ${x.shape[1]} channels but the weight expects ${cin}`, x, weight);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== cout)) throw opError(OP, `bias must be [${cout}], got ${fmtShape(bias.shape)}`, x, weight, bias);
  const col = unfold1d(x, k, opts);
  const w2 = reshape(weight, [cout, cin * k]);
  const y = matmul(col, transpose(w2));
  return bias ? add(y, bias) : y;
}
