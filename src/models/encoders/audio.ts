// Whisper-style audio encoder:
//   clips (16 kHz mono host samples) → log-mel [frames, nMels] on the GPU (ops/melspec.ts,
//   no gradient) → stem: conv1d(k3, pad 1) → GELU → conv1d(k3, stride 2, pad 1) → GELU
//   (ops/conv1d.ts, each clip convolved on its own), or with `stem: conv2d` two 3×3
//   convs over (time, mel) and a linear map (ops/conv2d.ts) → + learned positions
//   (restarting at 0 in every clip) → blocks (bidirectional, no RoPE, one document per
//   clip) → final norm → rows [Σ tokens, dim].
// A clip of n samples has ⌊n / hop⌋ frames and ⌈frames / 2⌉ tokens: 1 s → 100 → 50.

import { Tensor } from '../../tensor/tensor.ts';
import { keep } from '../../tensor/scope.ts';
import { Module, ModuleList } from '../../nn/module.ts';
import { makeNorm, type LayerNorm, type RMSNorm } from '../../nn/norm.ts';
import { TransformerBlock } from '../../nn/block.ts';
import { Linear } from '../../nn/linear.ts';
import type { SequenceLayout } from '../../nn/attention.ts';
import { Generator, zeros } from '../../ops/creation.ts';
import { add, conv1d, conv1dOutputLength, conv2d, conv2dOutputFreq, embedding, gelu, indexSelect, logMelFromClips, matmul, melMinSamples, mul, mulScalar, sub, type MelSpecOptions } from '../../ops/index.ts';
import { registerEncoder } from '../registry.ts';
import { encoderBlocks } from './trunk.ts';
import { AudioEncoderSchema, parseEncoderConfig, type AudioEncoderConfig, type AudioEncoderConfigInput } from './schema.ts';
import { EncoderInputError, cumulativeCounts, type AudioEncoderInput, type SpecMask, type EncoderOutput, type ModalityEncoder } from './types.ts';

/** A Conv1d layer over packed sequences (weight [out, in, K] like PyTorch). */
export class Conv1d extends Module {
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernel: number,
    readonly opts: { stride?: number; padding?: number; generator?: Generator; initStd?: number; bias?: boolean } = {},
  ) {
    super();
    const gen = opts.generator ?? new Generator(0);
    const bound = 1 / Math.sqrt(inChannels * kernel);
    const std = opts.initStd;
    this.param('weight', std === undefined ? gen.uniform([outChannels, inChannels, kernel], -bound, bound) : gen.normal([outChannels, inChannels, kernel], 0, std));
    if (opts.bias !== false) this.param('bias', std === undefined ? gen.uniform([outChannels], -bound, bound) : zeros([outChannels]));
  }

  /** x [T, in] packed sequences with boundaries `cuSeqlens` → [T_out, out]. */
  forward(x: Tensor, cuSeqlens: readonly number[]): Tensor {
    const bias = this.opts.bias !== false ? this.getParam('bias') : null;
    return conv1d(x, this.getParam('weight'), bias, { stride: this.opts.stride ?? 1, padding: this.opts.padding ?? 0, cuSeqlens });
  }

  /** Output length of a sequence of `len` rows. */
  outputLength(len: number): number {
    return conv1dOutputLength(len, this.kernel, this.opts.stride ?? 1, this.opts.padding ?? 0);
  }
}

/**
 * A Conv2d layer over packed sequences of [F, C_in] frames (weight [out, in, Kt, Kf], H =
 * time, W = frequency; PyTorch's default init), padding Kt/2, Kf/2 ("same" before stride).
 */
export class Conv2d extends Module {
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernel: readonly [number, number],
    readonly stride: readonly [number, number],
    generator: Generator,
  ) {
    super();
    const bound = 1 / Math.sqrt(inChannels * kernel[0] * kernel[1]);
    this.param('weight', generator.uniform([outChannels, inChannels, kernel[0], kernel[1]], -bound, bound));
    this.param('bias', generator.uniform([outChannels], -bound, bound));
  }

  get padding(): [number, number] {
    return [Math.floor(this.kernel[0] / 2), Math.floor(this.kernel[1] / 2)];
  }

  /** x [T, F·in] packed sequences with boundaries `cuSeqlens` → [T_out, F_out·out]. */
  forward(x: Tensor, freq: number, cuSeqlens: readonly number[]): Tensor {
    return conv2d(x, this.getParam('weight'), this.getParam('bias'), { freq, stride: this.stride, padding: this.padding, cuSeqlens });
  }

  outputLength(len: number): number {
    return conv1dOutputLength(len, this.kernel[0], this.stride[0], this.padding[0]);
  }

  outputFreq(freq: number): number {
    return conv2dOutputFreq(freq, this.kernel[1], this.stride[1], this.padding[1]);
  }
}

/** The stem's two convolutions: Conv1d (Whisper) or Conv2d (Conformer-style) layers. */
type StemConv = Conv1d | Conv2d;

export class AudioEncoder extends Module implements ModalityEncoder<AudioEncoderInput> {
  readonly modality = 'audio';
  readonly config: AudioEncoderConfig;
  readonly conv1: StemConv;
  readonly conv2: StemConv;
  /** conv2d stem only: [mel/4 · channels] → dim. */
  readonly stemProj: Linear | null = null;
  readonly blocks: ModuleList<TransformerBlock>;
  readonly norm: RMSNorm | LayerNorm;
  /** Options of the log-mel front end. */
  readonly mel: Required<MelSpecOptions>;
  /** Rows of the position table: tokens of a maxSeconds clip. */
  readonly maxTokens: number;

  constructor(config: AudioEncoderConfigInput | AudioEncoderConfig) {
    super();
    const c = (this.config = parseEncoderConfig('audio encoder', AudioEncoderSchema, config));
    this.mel = {
      sampleRate: c.sampleRate,
      nFft: c.nFft,
      winLength: c.winLength,
      hopLength: c.hopLength,
      nMels: c.nMels,
      fMin: 0,
      fMax: c.sampleRate / 2,
      melScale: c.melScale,
      melNorm: c.melNorm,
      padMode: c.padMode,
      logNorm: c.logNorm,
    };
    const gen = new Generator(c.seed);
    const feats = this.featureChannels;
    if (c.stem === 'conv2d') {
      const conv1 = (this.conv1 = this.child('conv1', new Conv2d(1, c.convChannels, [3, 3], [1, 2], gen)));
      const conv2 = (this.conv2 = this.child('conv2', new Conv2d(c.convChannels, c.convChannels, [c.stemStride + 1, 3], [c.stemStride, 2], gen)));
      const bins = conv2.outputFreq(conv1.outputFreq(feats));
      this.stemProj = this.child('stem_proj', new Linear(bins * c.convChannels, c.dim, { generator: gen }));
    } else {
      this.conv1 = this.child('conv1', new Conv1d(feats, c.convChannels, 3, { padding: 1, generator: gen, initStd: c.initStd }));
      this.conv2 = this.child('conv2', new Conv1d(c.convChannels, c.dim, c.stemStride + 1, { stride: c.stemStride, padding: Math.floor((c.stemStride + 1) / 2), generator: gen, initStd: c.initStd }));
    }
    this.maxTokens = this.tokensOfFrames(Math.floor((c.maxSeconds * c.sampleRate) / c.hopLength));
    this.param('pos_embed', gen.normal([this.maxTokens, c.dim], 0, c.initStd));
    this.blocks = this.child('blocks', encoderBlocks(c, gen));
    this.norm = this.child('norm', makeNorm(c.norm, c.dim, c.normEps));
  }

  get outDim(): number {
    return this.config.dim;
  }

  get pos_embed(): Tensor {
    return this.getParam('pos_embed');
  }

  /** Smallest clip in samples (one frame; reflect padding needs more than nFft/2). */
  get minSamples(): number {
    return melMinSamples(this.mel);
  }

  /** Feature channels per frame the stem sees: cepstral coefficients or mel bins. */
  get featureChannels(): number {
    return this.config.mfcc || this.config.nMels;
  }

  /** Tokens the stem makes of a clip's `frames` mel frames. */
  tokensOfFrames(frames: number): number {
    return this.conv2.outputLength(this.conv1.outputLength(frames));
  }

  /** Mel frames of a clip of `samples` samples. */
  frameCount(samples: number): number {
    return Math.floor(samples / this.config.hopLength);
  }

  /** Host-side: tokens a clip becomes; throws EncoderInputError for an empty, too short or too long clip or a wrong rate. */
  tokenCount(input: AudioEncoderInput): number {
    const c = this.config;
    if (!input || !(input.samples instanceof Float32Array)) throw new EncoderInputError('an audio input needs its samples as a Float32Array');
    if (input.sampleRate !== undefined && input.sampleRate !== c.sampleRate) {
      throw new EncoderInputError(`audio sample rate ${input.sampleRate} Hz does not match the encoder's ${c.sampleRate} Hz (resample the clip first)`);
    }
    const n = input.samples.length;
    if (n === 0) throw new EncoderInputError('audio clip is empty (0 samples)');
    if (n < this.minSamples) {
      throw new EncoderInputError(
        `audio clip has ${n} samples; at least ${this.minSamples} are needed (${((1000 * this.minSamples) / c.sampleRate).toFixed(2)} ms at ${c.sampleRate} Hz)`,
      );
    }
    const tokens = this.tokensOfFrames(this.frameCount(n));
    if (tokens > this.maxTokens) {
      throw new EncoderInputError(
        `audio clip of ${(n / c.sampleRate).toFixed(2)} s gives ${tokens} tokens, more than the ${this.maxTokens} positions of this encoder (config maxSeconds ${c.maxSeconds})`,
      );
    }
    return tokens;
  }

  encode(inputs: readonly AudioEncoderInput[]): EncoderOutput {
    if (inputs.length === 0) throw new EncoderInputError('audio encoder: encode() needs at least one clip (use dummy() for none)');
    inputs.forEach((a, i) => {
      try {
        this.tokenCount(a);
      } catch (e) {
        if (e instanceof EncoderInputError) throw new EncoderInputError(`audio encoder, clip ${i}: ${e.message}`);
        throw e;
      }
    });
    const { mel, frames } = logMelFromClips(
      inputs.map((a) => a.samples),
      this.mel,
    );
    return this.forwardMel(mel, frames, this.training ? inputs.map((a) => a.specMask) : undefined);
  }

  /**
   * SpecAugment: a 0/1 mask [Σ frames, C] zeroing each clip's drawn frequency bands and
   * time spans, or null when no clip has masks. Built on the host (a few KB per clip) and
   * applied with one elementwise multiply, so the backward is the same mask.
   */
  private specAugmentMask(frames: readonly number[], masks: ReadonlyArray<SpecMask | undefined>, C: number): Tensor | null {
    if (!masks.some((m) => m && (m.freq.length || m.time.length))) return null;
    const total = frames.reduce((a, b) => a + b, 0);
    const m = new Float32Array(total * C).fill(1);
    let f0 = 0;
    frames.forEach((n, i) => {
      const sm = masks[i];
      if (sm) {
        for (const { at, width } of sm.freq) {
          const w = Math.min(width, C);
          const c0 = Math.floor(at * (C - w + 1));
          for (let f = f0; f < f0 + n; f++) m.fill(0, f * C + c0, f * C + c0 + w);
        }
        for (const { at, width } of sm.time) {
          const w = Math.min(width, Math.floor(sm.timeFraction * n));
          const t0 = f0 + Math.floor(at * (n - w + 1));
          m.fill(0, t0 * C, (t0 + w) * C);
        }
      }
      f0 += n;
    });
    return Tensor.fromArray(m, [total, C]);
  }

  private dctMatrix: Tensor | null = null;

  /** Orthonormal DCT-II as a [nMels, mfcc] matrix (a constant, not a parameter). */
  private dct(): Tensor {
    if (!this.dctMatrix) {
      const m = this.config.nMels;
      const k = this.config.mfcc;
      const d = new Float32Array(m * k);
      for (let i = 0; i < m; i++)
        for (let j = 0; j < k; j++) d[i * k + j] = Math.sqrt((j === 0 ? 1 : 2) / m) * Math.cos((Math.PI / m) * (i + 0.5) * j);
      // Cached across steps: taken out of the step's scope so it is not released with it.
      this.dctMatrix = keep(Tensor.fromArray(d, [m, k]));
    }
    return this.dctMatrix;
  }

  /** Features the convs see: log-mel or its cepstrum, optionally with each clip's mean removed. */
  private features(mel: Tensor, frames: readonly number[]): Tensor {
    let x = this.config.mfcc > 0 ? matmul(mel, this.dct()) : mel;
    if (this.config.cmn) {
      // means [clips, C] = A·x with A[i, f] = 1/frames_i on clip i's rows; broadcast back by row gather.
      const total = frames.reduce((a, b) => a + b, 0);
      const avg = new Float32Array(frames.length * total);
      const owner = new Int32Array(total);
      let f0 = 0;
      frames.forEach((n, i) => {
        for (let f = f0; f < f0 + n; f++) {
          avg[i * total + f] = 1 / n;
          owner[f] = i;
        }
        f0 += n;
      });
      const means = matmul(Tensor.fromArray(avg, [frames.length, total]), x);
      x = sub(x, indexSelect(means, 0, Tensor.fromArray(owner, [total], 'i32')));
    }
    return x;
  }

  /**
   * The encoder after the front end: log-mel rows [Σ frames, nMels] of clips with `frames`
   * frames each; `specMasks[i]` (training only) masks clip i's features.
   */
  forwardMel(mel: Tensor, frames: readonly number[], specMasks?: ReadonlyArray<SpecMask | undefined>): EncoderOutput {
    const cu0 = cumulativeCounts(frames);
    let feats = this.features(mel, frames);
    const mask = specMasks ? this.specAugmentMask(frames, specMasks, this.featureChannels) : null;
    if (mask) feats = mul(feats, mask);
    let x = this.stem(feats, cu0, cumulativeCounts(frames.map((f) => this.conv1.outputLength(f))));
    const counts = frames.map((f) => this.tokensOfFrames(f));
    const total = counts.reduce((a, b) => a + b, 0);
    const pos = new Int32Array(total);
    let k = 0;
    for (const n of counts) {
      if (n > this.maxTokens) throw new EncoderInputError(`audio encoder: a clip of ${n} tokens exceeds the ${this.maxTokens} positions`);
      for (let i = 0; i < n; i++) pos[k++] = i;
    }
    const positions = Tensor.fromArray(pos, [total], 'i32');
    x = add(x, embedding(this.pos_embed, positions));
    const cuSeqlens = cumulativeCounts(counts);
    const layout: SequenceLayout = { positions, cuSeqlens };
    for (const block of this.blocks) x = block.forward(x, layout);
    x = this.norm.forward(x);
    return { embeddings: x, tokenCounts: counts, cuSeqlens };
  }

  /** The conv stem: features [Σ frames, C] → [Σ tokens, dim] (cu0 / cu1: frame and conv1 row boundaries). */
  private stem(feats: Tensor, cu0: readonly number[], cu1: readonly number[]): Tensor {
    const { conv1, conv2 } = this;
    if (conv1 instanceof Conv2d && conv2 instanceof Conv2d) {
      const bins = this.featureChannels;
      const x = gelu(conv2.forward(gelu(conv1.forward(feats, bins, cu0)), conv1.outputFreq(bins), cu1));
      return this.stemProj!.forward(x);
    }
    if (conv1 instanceof Conv1d && conv2 instanceof Conv1d) return gelu(conv2.forward(gelu(conv1.forward(feats, cu0)), cu1));
    throw new Error('audio encoder: conv1 and conv2 must be the same kind of stem');
  }

  override dispose(): void {
    this.dctMatrix?.release();
    this.dctMatrix = null;
    super.dispose();
  }

  /** The shortest valid silent clip through the whole encoder, times 0 (see ModalityEncoder.dummy). */
  dummy(): EncoderOutput {
    const out = this.encode([{ samples: new Float32Array(this.minSamples) }]);
    return { ...out, embeddings: mulScalar(out.embeddings, 0) };
  }
}

registerEncoder('audio', (config) => new AudioEncoder(config as AudioEncoderConfigInput));
