// Encoder and projector configs: plain interfaces (what the code takes, defaults filled
// in) and zod schemas that validate user configs (strict: a misspelled key is an error
// naming it) and fill the defaults.
import { z } from 'zod';
import type { MlpKind } from '../../nn/mlp.ts';
import type { NormKind } from '../../nn/norm.ts';

/** Transformer trunk shared by the encoders (bidirectional, no RoPE, learned positions). */
export interface EncoderTrunkConfig {
  /** Encoder width. */
  dim: number;
  layers: number;
  heads: number;
  /** Key/value heads (default heads). */
  kvHeads: number;
  /** MLP hidden width (default 4·dim). */
  ffnDim: number;
  mlp: MlpKind;
  norm: NormKind;
  normEps: number;
  /** Biases in the attention projections. */
  attnBias: boolean;
  /** Std of the normal init of weight matrices and position tables. */
  initStd: number;
  seed: number;
}

export interface VisionEncoderConfig extends EncoderTrunkConfig {
  /** Image height and width in pixels (every image of this encoder has this size). */
  imageSize: [number, number];
  patchSize: number;
  channels: number;
  /** 2×2 patch merging after the blocks (concat 4 neighbours → Linear): 4× fewer tokens. */
  merge: boolean;
}

export interface AudioEncoderConfig extends EncoderTrunkConfig {
  sampleRate: number;
  nMels: number;
  nFft: number;
  winLength: number;
  hopLength: number;
  melScale: 'slaney' | 'htk';
  melNorm: 'slaney' | 'none';
  padMode: 'reflect' | 'zero';
  logNorm: 'whisper' | 'none';
  /**
   * Cepstral coefficients (DCT-II of the log-mel frame) fed to the convs instead of the
   * log-mel bins, or 0 for log-mel. The low coefficients keep the spectral envelope and
   * drop the pitch harmonics, which helps with few speakers.
   */
  mfcc: number;
  /** Subtract each clip's mean feature vector (cepstral mean normalisation: channel and speaker offsets). */
  cmn: boolean;
  /**
   * The convolutional front end, both halving the frame rate (1 s → 50 tokens):
   * - 'conv1d' (Whisper): conv1d k3 → GELU → conv1d k3 stride 2 → GELU, mixing all mel
   *   bins at once.
   * - 'conv2d' (Conformer-style subsampling): two 3×3 convs over (time, mel) with
   *   `convChannels` channels, stride (1, 2) then (2, 2), GELU after each, then a linear
   *   map of the [mel/4, channels] frame to dim. Its filters slide along the mel axis, so
   *   a formant or pitch pattern is recognised wherever it sits: less speaker-specific.
   */
  stem: 'conv1d' | 'conv2d';
  /**
   * Frames per token: the stem's second conv has this stride and a kernel one longer
   * (2: Whisper's 50 tokens per second; 4: 25, half the audio tokens in the LLM).
   */
  stemStride: number;
  /** Output channels of the first conv (conv1d stem; the second outputs dim) or of both 2-D convs. */
  convChannels: number;
  /** Longest clip in seconds: sizes the learned position table. */
  maxSeconds: number;
}

export interface ProjectorConfig {
  inDim: number;
  /** Hidden width of Linear → GELU → Linear. */
  hidden: number;
  outDim: number;
  bias: boolean;
  initStd: number;
  seed: number;
}

const positiveInt = z.number().int().positive();

const trunk = {
  dim: positiveInt,
  layers: z.number().int().min(0),
  heads: positiveInt,
  kvHeads: positiveInt.optional(),
  ffnDim: positiveInt.optional(),
  mlp: z.enum(['swiglu', 'gelu']).default('gelu'),
  norm: z.enum(['rmsnorm', 'layernorm']).default('layernorm'),
  normEps: z.number().positive().default(1e-6),
  attnBias: z.boolean().default(true),
  initStd: z.number().positive().default(0.02),
  seed: z.number().int().min(0).default(0),
};

function trunkDefaults<T extends { dim: number; heads: number; kvHeads?: number; ffnDim?: number }>(c: T): T & { kvHeads: number; ffnDim: number } {
  return { ...c, kvHeads: c.kvHeads ?? c.heads, ffnDim: c.ffnDim ?? 4 * c.dim };
}

function checkTrunk(c: { dim: number; heads: number; kvHeads: number }, ctx: z.RefinementCtx): void {
  if (c.dim % c.heads !== 0) ctx.addIssue({ code: 'custom', path: ['heads'], message: `dim ${c.dim} must be divisible by heads ${c.heads}` });
  if (c.heads % c.kvHeads !== 0) ctx.addIssue({ code: 'custom', path: ['kvHeads'], message: `heads ${c.heads} must be a multiple of kvHeads ${c.kvHeads}` });
  if (c.dim / c.heads > 128) ctx.addIssue({ code: 'custom', path: ['heads'], message: `head dim ${c.dim / c.heads} exceeds 128` });
}

export const VisionEncoderSchema = z
  .object({
    type: z.literal('image').optional(),
    imageSize: z.union([positiveInt, z.tuple([positiveInt, positiveInt])]),
    patchSize: positiveInt,
    channels: positiveInt.default(3),
    merge: z.boolean().default(false),
    ...trunk,
  })
  .strict()
  .transform((c): VisionEncoderConfig => {
    const { type: _type, imageSize, ...rest } = c;
    return trunkDefaults({ ...rest, imageSize: typeof imageSize === 'number' ? [imageSize, imageSize] : imageSize });
  })
  .superRefine((c, ctx) => {
    checkTrunk(c, ctx);
    const [h, w] = c.imageSize;
    if (h % c.patchSize !== 0 || w % c.patchSize !== 0) {
      ctx.addIssue({ code: 'custom', path: ['imageSize'], message: `image size ${h}×${w} must be a multiple of patchSize ${c.patchSize}` });
    } else if (c.merge && ((h / c.patchSize) % 2 !== 0 || (w / c.patchSize) % 2 !== 0)) {
      ctx.addIssue({
        code: 'custom',
        path: ['merge'],
        message: `2×2 merging needs an even patch grid, got ${h / c.patchSize}×${w / c.patchSize} (image ${h}×${w}, patch ${c.patchSize})`,
      });
    }
  });

export const AudioEncoderSchema = z
  .object({
    type: z.literal('audio').optional(),
    sampleRate: positiveInt.default(16000),
    nMels: positiveInt.default(80),
    nFft: positiveInt.default(400),
    winLength: positiveInt.optional(),
    hopLength: positiveInt.default(160),
    melScale: z.enum(['slaney', 'htk']).default('slaney'),
    melNorm: z.enum(['slaney', 'none']).default('slaney'),
    padMode: z.enum(['reflect', 'zero']).default('reflect'),
    logNorm: z.enum(['whisper', 'none']).default('whisper'),
    mfcc: z.number().int().min(0).default(0),
    cmn: z.boolean().default(false),
    stem: z.enum(['conv1d', 'conv2d']).default('conv1d'),
    stemStride: z.number().int().min(1).max(8).default(2),
    convChannels: positiveInt.optional(),
    maxSeconds: z.number().positive().default(30),
    ...trunk,
  })
  .strict()
  .transform((c): AudioEncoderConfig => {
    const { type: _type, ...rest } = c;
    return trunkDefaults({ ...rest, winLength: c.winLength ?? c.nFft, convChannels: c.convChannels ?? (c.stem === 'conv2d' ? 16 : c.dim) });
  })
  .superRefine((c, ctx) => {
    checkTrunk(c, ctx);
    if (c.nFft % 2 !== 0) ctx.addIssue({ code: 'custom', path: ['nFft'], message: `nFft must be even, got ${c.nFft}` });
    if (c.winLength > c.nFft) ctx.addIssue({ code: 'custom', path: ['winLength'], message: `winLength ${c.winLength} exceeds nFft ${c.nFft}` });
    if (c.mfcc > c.nMels) ctx.addIssue({ code: 'custom', path: ['mfcc'], message: `mfcc ${c.mfcc} exceeds nMels ${c.nMels} (at most one coefficient per mel band)` });
  });

export const ProjectorSchema = z
  .object({
    inDim: positiveInt,
    hidden: positiveInt,
    outDim: positiveInt,
    bias: z.boolean().default(true),
    initStd: z.number().positive().default(0.02),
    seed: z.number().int().min(0).default(0),
  })
  .strict();

export type VisionEncoderConfigInput = z.input<typeof VisionEncoderSchema>;
export type AudioEncoderConfigInput = z.input<typeof AudioEncoderSchema>;
export type ProjectorConfigInput = z.input<typeof ProjectorSchema>;

/** Validate with a schema; errors list every problem with its dotted path. */
export function parseEncoderConfig<S extends z.ZodType>(what: string, schema: S, config: unknown): z.output<S> {
  const r = schema.safeParse(config);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
  throw new Error(`invalid ${what} config: ${problems.join('; ')}`);
}

// Compile-time checks that the schemas produce the interfaces.
const _p: (c: z.output<typeof ProjectorSchema>) => ProjectorConfig = (c) => c;
void _p;
