// 2-D convolution over packed variable-length sequences of feature maps, e.g. log-mel
// spectrograms: rows are time frames, each row holds a [F, C_in] map (frequency-major,
// channels innermost), and every sequence (clip) is convolved on its own.
//
//   conv2d(x [T, F·C_in], weight [C_out, C_in, Kt, Kf], bias [C_out] | null,
//          { freq: F, stride: [st, sf], padding: [pt, pf], cuSeqlens }) → [T_out, F_out·C_out]
//
// The output has the same row layout (frequency-major, channels inner), so convolutions
// stack. Weight layout is PyTorch's Conv2d with H = time and W = frequency.
//
// Built from two im2col passes of unfold1d, so forward and backward are conv1d's kernels
// (deterministic gathers) plus one matmul:
//   1. along time, x viewed as [T, F·C_in]:   col (f·C_in + c)·Kt + dt   → [T_out, F·C_in·Kt]
//   2. that viewed as [T_out·F, C_in·Kt], along frequency with one sequence per output
//      frame (length F):                       col (c·Kt + dt)·Kf + df   → [T_out·F_out, C_in·Kt·Kf]
// whose columns are exactly the flattened [C_in, Kt, Kf] weight.
import { Tensor, fmtShape } from '../tensor/tensor.ts';
import { opError } from './registry.ts';
import { add } from './elementwise.ts';
import { matmul } from './matmul.ts';
import { reshape, transpose } from './shape.ts';
import { conv1dCuSeqlens, conv1dOutputLength, unfold1d } from './conv1d.ts';

export interface Conv2dOptions {
  /** Frequency bins F of every row (the row holds F·C_in values). */
  freq: number;
  /** [time, frequency] steps (default [1, 1]). */
  stride?: readonly [number, number];
  /** [time, frequency] zeros at both ends (default [0, 0]); time padding is per sequence. */
  padding?: readonly [number, number];
  /** Cumulative sequence lengths [0, …, T]; default one sequence. */
  cuSeqlens?: readonly number[];
}

const OP = 'conv2d';

/** Output frequency bins for `freq` input bins. */
export function conv2dOutputFreq(freq: number, kernelF: number, strideF = 1, paddingF = 0): number {
  return conv1dOutputLength(freq, kernelF, strideF, paddingF);
}

/** Packed 2-D convolution (see the file comment); differentiable in x, weight and bias. */
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null, opts: Conv2dOptions): Tensor {
  if (weight.rank !== 4) throw opError(OP, `weight must be [C_out, C_in, Kt, Kf], got ${fmtShape(weight.shape)}`, x, weight);
  if (x.rank !== 2) throw opError(OP, `expects rows [T, F·C_in], got rank ${x.rank} ${fmtShape(x.shape)}`, x, weight);
  const [cout, cin, kt, kf] = weight.shape;
  const F = opts.freq;
  if (!Number.isInteger(F) || F < 1) throw opError(OP, `freq must be a positive integer, got ${F}`, x);
  if (x.shape[1] !== F * cin) throw opError(OP, `rows have ${x.shape[1]} values but freq ${F} × ${cin} input channels needs ${F * cin}`, x, weight);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== cout)) throw opError(OP, `bias must be [${cout}], got ${fmtShape(bias.shape)}`, x, weight, bias);
  const [st, sf] = opts.stride ?? [1, 1];
  const [pt, pf] = opts.padding ?? [0, 0];
  const fout = conv2dOutputFreq(F, kf, sf, pf);
  if (fout < 1) throw opError(OP, `freq ${F} is too small for kernel ${kf} with padding ${pf}`, x, weight);
  const cuT = opts.cuSeqlens ?? [0, x.shape[0]];
  const byTime = unfold1d(x, kt, { stride: st, padding: pt, cuSeqlens: cuT });
  const tout = byTime.shape[0];
  const perFrame = Array.from({ length: tout + 1 }, (_, i) => i * F);
  const col = unfold1d(reshape(byTime, [tout * F, cin * kt]), kf, { stride: sf, padding: pf, cuSeqlens: perFrame });
  let y = matmul(col, transpose(reshape(weight, [cout, cin * kt * kf])));
  if (bias) y = add(y, bias);
  return reshape(y, [tout, fout * cout]);
}

/** cuSeqlens of conv2d's output rows (the time axis behaves as conv1d's). */
export const conv2dCuSeqlens = conv1dCuSeqlens;
