// The run config: what `webomni train --config <file>` reads. Every section is strict, so
// a misspelled key is an error naming it; defaults make small configs short.
import { z } from 'zod';

const positiveInt = z.number().int().positive();

/** Mixture-of-experts feed-forward layers (replacing the dense MLP where enabled). */
export const MoeSchema = z
  .object({
    experts: positiveInt,
    topK: positiveInt.default(2),
    /** Hidden size of each expert. */
    ffnDim: positiveInt,
    sharedExperts: z.number().int().min(0).default(0),
    sharedFfnDim: positiveInt.optional(),
    scoring: z.enum(['softmax', 'sigmoid']).default('softmax'),
    renormalize: z.boolean().default(true),
    auxLossCoef: z.number().min(0).default(0.01),
    zLossCoef: z.number().min(0).default(0.001),
    /** MoE in every N-th layer from `firstDenseLayers` on (1: all of them). */
    everyNLayers: positiveInt.default(1),
    firstDenseLayers: z.number().int().min(0).default(0),
  })
  .strict();

export const ModelSchema = z
  .object({
    type: z.literal('decoder').default('decoder'),
    dim: positiveInt,
    layers: positiveInt,
    heads: positiveInt,
    kvHeads: positiveInt,
    ffnDim: positiveInt,
    mlp: z.enum(['swiglu', 'gelu']).default('swiglu'),
    norm: z.enum(['rmsnorm', 'layernorm']).default('rmsnorm'),
    normEps: z.number().positive().default(1e-6),
    ropeTheta: z.number().positive().default(10000),
    tieEmbeddings: z.boolean().default(false),
    maxSeqLen: positiveInt.default(1024),
    initStd: z.number().positive().default(0.02),
    activationCheckpointing: z.boolean().default(false),
    moe: MoeSchema.optional(),
  })
  .strict();

export const TokenizerSchema = z
  .object({
    /** Path of a tokenizer.json to use; trained on the corpus and cached when absent. */
    path: z.string().optional(),
    vocabSize: positiveInt.default(4096),
  })
  .strict();

export const DataSchema = z
  .object({
    corpus: z.literal('brown').default('brown'),
    tokensPerBatch: positiveInt.default(4096),
    /** Fraction of documents held out for validation. */
    valFraction: z.number().min(0).max(0.5).default(0.05),
    /** Where tokenized corpora and trained tokenizers are cached. */
    cacheDir: z.string().default("runs/cache"),
  })
  .strict();

export const TrainSchema = z
  .object({
    steps: positiveInt,
    lr: z.number().positive(),
    schedule: z.enum(['cosine', 'linear', 'constant']).default('cosine'),
    warmupSteps: z.number().int().min(0).default(0),
    minLrRatio: z.number().min(0).max(1).default(0.1),
    weightDecay: z.number().min(0).default(0.1),
    betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]).default([0.9, 0.95]),
    eps: z.number().positive().default(1e-8),
    /** Global gradient-norm clip; 0 disables. */
    gradClip: z.number().min(0).default(1),
    /** Micro-batches accumulated per optimizer step. */
    microBatches: positiveInt.default(1),
    zLoss: z.number().min(0).default(0),
    evalEvery: z.number().int().min(0).default(100),
    evalBatches: positiveInt.default(8),
    checkpointEvery: z.number().int().min(0).default(200),
    keepLast: positiveInt.default(3),
    logEvery: positiveInt.default(10),
    /** Stop after this many seconds of training (0: no limit); a checkpoint is written. */
    maxSeconds: z.number().min(0).default(0),
  })
  .strict();

export const RunSchema = z
  .object({
    name: z.string().regex(/^[\w.-]+$/, 'use letters, digits, _ . -'),
    seed: z.number().int().min(0).default(0),
    runsDir: z.string().default('runs'),
    model: ModelSchema,
    tokenizer: TokenizerSchema.default({ vocabSize: 4096 }),
    data: DataSchema.default({ corpus: 'brown', tokensPerBatch: 4096, valFraction: 0.05, cacheDir: "runs/cache" }),
    train: TrainSchema,
  })
  .strict();

export type RunConfig = z.output<typeof RunSchema>;
