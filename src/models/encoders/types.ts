// The contract between modality encoders and the omni composition that uses them.
//
// For one training batch the composition:
//  (a) asks each encoder, on the host and before anything runs, how many tokens each
//      input becomes (`tokenCount`, also the place where a bad input is rejected with a
//      clear error), to pack text with placeholder positions under a token budget;
//  (b) calls `encode` once per modality with that batch's inputs of the modality, in
//      order: it returns the rows [Σ tokenCounts, outDim] (input 0's rows first) and the
//      per-input token counts (equal to tokenCount(input) for every input);
//  (c) projects the rows to the LLM width (Projector) and scatters them into the
//      placeholder positions of the text sequence;
//  (d) when a batch (on this rank) has NO input of a modality, calls `dummy()` instead
//      and adds `zeroContribution(projector.forward(dummy.embeddings))` to the loss. The
//      dummy runs the encoder's whole forward on one tiny built-in input, so every
//      parameter takes part in the graph (and in whatever collectives a parallel plan
//      attaches to the forward and backward) and gets a gradient that is exactly zero.
//      Data-parallel ranks then issue the same collectives whether or not they had data
//      of that modality, and never hang on a missing one.

import type { SpecMask } from '../../data/multimodal/media.ts';
import type { Tensor } from '../../tensor/tensor.ts';
import type { Module } from '../../nn/module.ts';
import { mulScalar, sum } from '../../ops/index.ts';

/** One image: a float tensor [C, H, W] (already normalised), or host pixels in that layout. */
export type ImageEncoderInput = Tensor | HostImage;

export interface HostImage {
  /** C·H·W floats, channel-major ([C, H, W] row-major), already normalised. */
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

/** One mono audio clip (host samples, any length the front end accepts). */
export interface AudioEncoderInput {
  samples: Float32Array;
  /** Samples per second; when given it must equal the encoder's sampleRate (no resampling). */
  sampleRate?: number;
  /** Training-time SpecAugment masks (data/multimodal/augment.ts); ignored in eval mode. */
  specMask?: SpecMask;
}

export type { SpecMask };

/** What `encode` and `dummy` return. */
export interface EncoderOutput {
  /** [Σ tokenCounts, outDim]: the rows of input 0, then input 1, …. */
  embeddings: Tensor;
  /** Rows per input, in input order. */
  tokenCounts: number[];
  /** Cumulative token counts [0, n0, n0+n1, …] (the row offset of each input). */
  cuSeqlens: number[];
}

export interface ModalityEncoder<I = unknown> extends Module {
  /** The registry name of the modality ('image', 'audio', …). */
  readonly modality: string;
  /** Width of the rows `encode` returns. */
  readonly outDim: number;
  /**
   * Tokens `input` becomes, computed on the host (no GPU work). Throws an
   * EncoderInputError naming the problem when the encoder cannot take the input.
   */
  tokenCount(input: I): number;
  /** Encode a non-empty list of inputs of this modality (differentiable in every parameter). */
  encode(inputs: readonly I[]): EncoderOutput;
  /**
   * The zero-cost stand-in for a batch without this modality: the forward of one tiny
   * built-in input with the result multiplied by 0. Its embeddings are exact zeros that
   * depend on every parameter; see zeroContribution.
   */
  dummy(): EncoderOutput;
}

/** A bad encoder input (wrong size, channel count, sample rate, empty clip…). */
export class EncoderInputError extends Error {
  override name = 'EncoderInputError';
}

/**
 * A scalar 0 that depends on `t` (Σ t · 0): add it to the loss so that everything `t`
 * was computed from receives a gradient, all of it exactly zero.
 */
export function zeroContribution(t: Tensor): Tensor {
  return mulScalar(sum(t), 0);
}

/** [0, a, a+b, …] of a list of counts. */
export function cumulativeCounts(counts: readonly number[]): number[] {
  const out = [0];
  for (const c of counts) out.push(out[out.length - 1] + c);
  return out;
}
