// An omnimodal run from a validated config: manifest dataset (text, images, audio) →
// BPE tokenizer trained on the dataset's text → multimodal packed loader → OmniModel
// (registered encoders + projectors + decoder LLM, dense or MoE) → Trainer → held-out
// evaluation (caption and spoken-word accuracy, text loss) → summary.json + report.html.
// Node-only.

import { join, resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { placeholderTokens } from '../data/multimodal/modalities.ts';
import { existsSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import type { Device } from '../device/index.ts';
import { Tensor } from '../tensor/tensor.ts';
import { scope, scopeAsync } from '../tensor/scope.ts';
import { noGrad } from '../autograd/mode.ts';
import { OmniModel, type OmniBatch, type OmniModelConfig } from '../models/omni.ts';
import { generate } from '../models/generate.ts';
import { trainBpe } from '../data/tokenizer/train.ts';
import { Tokenizer } from '../data/tokenizer/tokenizer.ts';
import { loadTokenizer, saveTokenizer } from '../data/node.ts';
import { MultimodalLoader, type MultimodalBatch, type MultimodalLoaderState } from '../data/multimodal/collate.ts';
import { createAugmenter } from '../data/multimodal/augment.ts';
import { createNodeMediaLoader, loadManifest } from '../data/multimodal/node.ts';
import { resolveMediaPath, segmentModality, type ManifestSample } from '../data/multimodal/manifest.ts';
import { MoE, MoEStatsTracker } from '../nn/moe.ts';
import { ModelSchema, TrainSchema } from './schema.ts';
import { decoderConfigOf, moeFeedForward } from './lm.ts';
import { Trainer, type BatchSource, type HostBatch, type TrainableModel, type TrainResult } from './trainer.ts';
import { writeReport } from './report.ts';

export const OmniRunSchema = z
  .object({
    name: z.string().regex(/^[\w.-]+$/, 'use letters, digits, _ . -'),
    seed: z.number().int().min(0).default(0),
    runsDir: z.string().default('runs'),
    /** Modules to import before the model is built (e.g. a file registering a new modality). */
    plugins: z.array(z.string()).default([]),
    model: z
      .object({
        llm: ModelSchema,
        /** Encoder config per modality (validated by each registered encoder). */
        encoders: z.record(z.string(), z.unknown()),
        projectorHidden: z.number().int().positive().optional(),
        /** Parameter-name prefixes to freeze (e.g. "llm", "encoders.image"). */
        freeze: z.array(z.string()).default([]),
      })
      .strict(),
    tokenizer: z
      .object({ path: z.string().optional(), vocabSize: z.number().int().positive().default(1024) })
      .strict()
      .default({ vocabSize: 1024 }),
    data: z
      .object({
        /** Directory with manifest.train.jsonl and manifest.val.jsonl. */
        dir: z.string(),
        tokensPerBatch: z.number().int().positive().default(2048),
        image: z
          .object({ size: z.number().int().positive().default(28), channels: z.union([z.literal(1), z.literal(3)]).default(1), mean: z.number().default(0), std: z.number().positive().default(1) })
          .strict()
          .default({ size: 28, channels: 1, mean: 0, std: 1 }),
        audio: z.object({ sampleRate: z.number().int().positive().default(16000), resample: z.boolean().default(true) }).strict().default({ sampleRate: 16000, resample: true }),
        /** Per source, times each training sample appears per epoch (integer ≥ 1), e.g. { speech: 3 }. */
        repeat: z.record(z.string(), z.number().int().min(1).max(1000)).default({}),
        /** Training-time perturbation of decoded media (src/data/multimodal/augment.ts); validation is never augmented. */
        augment: z
          .object({
            audio: z
              .object({
                speed: z.tuple([z.number().min(0.5).max(2), z.number().min(0.5).max(2)]).optional(),
                gainDb: z.tuple([z.number().min(-40).max(40), z.number().min(-40).max(40)]).optional(),
                noiseSnrDb: z.tuple([z.number().min(-10).max(100), z.number().min(-10).max(100)]).optional(),
                shiftMs: z.number().min(0).max(5000).optional(),
                specAugment: z
                  .object({
                    freqMasks: z.number().int().min(0).max(1000).optional(),
                    freqWidth: z.number().int().min(0).max(1000).optional(),
                    timeMasks: z.number().int().min(0).max(1000).optional(),
                    timeWidth: z.number().int().min(0).max(1000).optional(),
                    timeFraction: z.number().min(0).max(1).optional(),
                  })
                  .strict()
                  .optional(),
              })
              .strict()
              .optional(),
          })
          .strict()
          .default({}),
        /** Skip (and count) bad samples instead of failing. */
        skipBad: z.boolean().default(false),
      })
      .strict(),
    train: TrainSchema,
    eval: z
      .object({
        /** Held-out samples per source for the accuracy report (0: all). */
        maxSamples: z.number().int().min(0).default(60),
        /** Long enough for the longest caption template plus EOS (a cut-off class word counts as wrong). */
        maxNewTokens: z.number().int().positive().default(16),
      })
      .strict()
      .default({ maxSamples: 60, maxNewTokens: 16 }),
  })
  .strict();

export type OmniRunConfig = z.output<typeof OmniRunSchema>;

export interface OmniHostBatch extends HostBatch {
  host: MultimodalBatch;
}

class OmniSource implements BatchSource<OmniHostBatch> {
  constructor(readonly loader: MultimodalLoader) {}
  async next(): Promise<OmniHostBatch> {
    const host = await this.loader.next();
    return { host, tokens: host.numTokens, lossTokens: host.numTargets };
  }
  state(): unknown {
    return this.loader.state();
  }
  restore(state: unknown): void {
    this.loader.restore(state as MultimodalLoaderState);
  }
}

function toOmniBatch(b: MultimodalBatch): OmniBatch {
  return { ids: b.ids, targets: b.targets, positions: b.positions, cuSeqlens: b.cuSeqlens, media: b.media };
}

/** The OmniModel seen by the trainer; logs loss per data source over each logging window. */
export class TrainableOmni extends OmniModel implements TrainableModel<OmniHostBatch> {
  private window: Array<{ sums: Tensor; names: readonly string[]; counts: number[] }> = [];
  readonly moeStats = new MoEStatsTracker(this.llm.layers.items.map((b) => b.mlp).filter((m): m is MoE => m instanceof MoE));

  lossOn(b: OmniHostBatch, normalizer: number): Tensor {
    const names = b.host.sourceNames;
    const T = b.host.numTokens;
    const masks = new Float32Array(names.length * T);
    b.host.seqSources.forEach((src, seq) => {
      for (let i = b.host.cuSeqlens[seq]; i < b.host.cuSeqlens[seq + 1]; i++) if (b.host.targets[i] !== -100) masks[src * T + i] = 1;
    });
    const { loss, groupSums } = this.loss(toOmniBatch(b.host), normalizer, this.training ? { masks, count: names.length } : undefined);
    if (groupSums) this.window.push({ sums: groupSums.retain(), names, counts: names.map((n) => b.host.lossTokensBySource[n] ?? 0) });
    return this.training && this.moeStats.active ? this.moeStats.addPenalty(loss, b.lossTokens / normalizer) : loss;
  }

  /** Mean loss per data source over the steps since the last call. */
  async stepMetrics(): Promise<Record<string, unknown>> {
    const entries = this.window.splice(0);
    const sum = new Map<string, number>();
    const cnt = new Map<string, number>();
    for (const e of entries) {
      const v = await e.sums.toArray();
      e.sums.release();
      e.names.forEach((n, i) => {
        sum.set(n, (sum.get(n) ?? 0) + v[i]);
        cnt.set(n, (cnt.get(n) ?? 0) + e.counts[i]);
      });
    }
    const bySource: Record<string, number> = {};
    for (const [n, s] of sum) if (cnt.get(n)! > 0) bySource[n] = s / cnt.get(n)!;
    const moe = this.moeStats.active ? await this.moeStats.read() : {};
    return { lossBySource: bySource, ...moe };
  }
}

/** Train a BPE on the dataset's own text (captions, transcripts, text samples), or load one. */
function datasetTokenizer(cfg: OmniRunConfig, samples: ManifestSample[], runDir: string, log: (l: string) => void): Tokenizer {
  const modalities = Object.keys(cfg.model.encoders);
  if (cfg.tokenizer.path) {
    if (!existsSync(cfg.tokenizer.path)) throw new Error(`tokenizer.path: file not found: ${cfg.tokenizer.path}`);
    return withModalityTokens(loadTokenizer(cfg.tokenizer.path), modalities);
  }
  const path = join(runDir, 'tokenizer.json');
  if (existsSync(path)) return loadTokenizer(path);
  const texts: string[] = [];
  for (const s of samples) for (const seg of s.segments) if (seg.type === 'text') texts.push(seg.text);
  const t0 = performance.now();
  const tokenizer = withModalityTokens(trainBpe(texts, { vocabSize: cfg.tokenizer.vocabSize }).tokenizer, modalities);
  saveTokenizer(tokenizer, path);
  log(`trained a ${tokenizer.vocabSize}-token BPE on the dataset's text in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return tokenizer;
}

/** The OmniModel config of a run config (the LLM's vocabulary comes from the tokenizer). */
export function omniModelConfig(cfg: OmniRunConfig, vocabSize: number): OmniModelConfig {
  const m = cfg.model.llm;
  return {
    llm: decoderConfigOf(m, cfg.seed, vocabSize),
    encoders: cfg.model.encoders,
    projectorHidden: cfg.model.projectorHidden,
    freeze: cfg.model.freeze,
  };
}

export function omniFeedForward(cfg: OmniRunConfig): ReturnType<typeof moeFeedForward> {
  return moeFeedForward({ ...cfg, model: cfg.model.llm } as unknown as Parameters<typeof moeFeedForward>[0]);
}

/** Greedy text from one media item alone (prompt: [BOS] <|m_start|> N×<m> <|m_end|>). */
export async function generateFromMedia(
  model: OmniModel,
  tokenizer: Tokenizer,
  modality: string,
  input: unknown,
  opts: { maxNewTokens: number; temperature?: number; seed?: number },
): Promise<string> {
  const n = model.tokenCount(modality, input);
  const bos = tokenizer.bosId;
  const prompt = [
    ...(bos !== undefined ? [bos] : []),
    tokenizer.requireId(`<|${modality}_start|>`),
    ...Array<number>(n).fill(tokenizer.requireId(`<${modality}>`)),
    tokenizer.requireId(`<|${modality}_end|>`),
  ];
  const start = bos !== undefined ? 2 : 1;
  const ids = await scopeAsync(async () => {
    const { h } = noGrad(() =>
      scope(() =>
        model.embed({
          ids: Int32Array.from(prompt),
          targets: new Int32Array(prompt.length).fill(-100),
          positions: Int32Array.from(prompt.map((_, i) => i)),
          cuSeqlens: [0, prompt.length],
          media: [{ modality, start, length: n, input }],
        }),
      ),
    );
    return generate(model.llm, prompt, {
      maxNewTokens: opts.maxNewTokens,
      temperature: opts.temperature ?? 0,
      seed: opts.seed,
      promptEmbeddings: h,
      stopIds: tokenizer.eosId !== undefined ? [tokenizer.eosId] : [],
    });
  });
  return tokenizer.decode(ids).trim();
}

/** Add the placeholder tokens of every configured modality the tokenizer lacks. */
export function withModalityTokens(tokenizer: Tokenizer, modalities: readonly string[]): Tokenizer {
  const missing = modalities.flatMap((m) => Object.values(placeholderTokens(m))).filter((t) => tokenizer.tokenToId(t) === undefined);
  return missing.length ? tokenizer.withAddedTokens(missing) : tokenizer;
}

/** Import the config's plugin modules (relative paths resolve against the working directory). */
export async function loadPlugins(plugins: readonly string[]): Promise<void> {
  for (const p of plugins) {
    const abs = resolvePath(p);
    if (!existsSync(abs)) throw new Error(`plugins: module not found: ${p}`);
    await import(pathToFileURL(abs).href);
  }
}

export interface OmniRun {
  trainer: Trainer<OmniHostBatch>;
  model: TrainableOmni;
  tokenizer: Tokenizer;
  runDir: string;
  val: ManifestSample[];
  config: OmniRunConfig;
}

export function buildOmniRun(device: Device, cfg: OmniRunConfig, log: (l: string) => void): OmniRun {
  const runDir = join(cfg.runsDir, cfg.name);
  mkdirSync(runDir, { recursive: true });
  const trainPath = join(cfg.data.dir, 'manifest.train.jsonl');
  const valPath = join(cfg.data.dir, 'manifest.val.jsonl');
  for (const p of [trainPath, valPath]) if (!existsSync(p)) throw new Error(`data.dir: manifest not found: ${p}`);
  const train = loadManifest(trainPath);
  const val = loadManifest(valPath);
  const tokenizer = datasetTokenizer(cfg, train, runDir, log);
  writeFileSync(join(runDir, 'config.json'), JSON.stringify(cfg, null, 2));
  const m = cfg.model.llm;
  const model = new TrainableOmni(omniModelConfig(cfg, tokenizer.vocabSize), omniFeedForward(cfg));
  const media = createNodeMediaLoader({ image: cfg.data.image, audio: cfg.data.audio });
  const loaderOpts = {
    tokenizer,
    media,
    tokenCount: (modality: string, input: unknown) => model.tokenCount(modality, input),
    tokensPerBatch: cfg.data.tokensPerBatch,
    bos: true,
    skipBad: cfg.data.skipBad,
    onWarning: (msg: string) => log(`warning: ${msg}`),
  };
  const augment = createAugmenter(cfg.data.augment);
  const trainLoader = new MultimodalLoader(train, {
    ...loaderOpts,
    shuffle: true,
    seed: cfg.seed,
    repeat: cfg.data.repeat,
    augment,
    augmentKey: augment ? JSON.stringify(cfg.data.augment) : undefined,
  });
  const valLoader = new MultimodalLoader(val, { ...loaderOpts, shuffle: false });
  const trainable = model.trainableParameters().reduce((s, p) => s + p.size, 0);
  log(
    `model: ${(model.numParameters() / 1e6).toFixed(2)}M parameters (${(trainable / 1e6).toFixed(2)}M trainable): ` +
      `LLM ${m.layers}×${m.dim}${m.moe ? ` MoE ${m.moe.experts} experts top-${m.moe.topK}` : ''}, encoders ${model.modalities().join(', ')}; ` +
      `data: ${train.length} train / ${val.length} validation samples`,
  );
  const trainer = new Trainer<OmniHostBatch>(device, model, new OmniSource(trainLoader), new OmniSource(valLoader), { ...cfg.train, runDir, config: cfg }, log);
  return { trainer, model, tokenizer, runDir, val, config: cfg };
}

/** Word-level keyword per label: the longest word suffix shared by every target text of that label. */
export function labelKeywords(samples: readonly ManifestSample[]): Map<number, string> {
  const byLabel = new Map<number, string[][]>();
  for (const s of samples) {
    const label = (s.meta as { label?: unknown } | undefined)?.label;
    if (typeof label !== 'number') continue;
    for (const seg of s.segments) {
      if (seg.type === 'text' && seg.target) {
        const words = seg.text.toLowerCase().trim().split(/\s+/);
        byLabel.set(label, [...(byLabel.get(label) ?? []), words]);
      }
    }
  }
  const out = new Map<number, string>();
  for (const [label, lists] of byLabel) {
    let suffix = lists[0];
    for (const w of lists.slice(1)) {
      let k = 0;
      while (k < suffix.length && k < w.length && suffix[suffix.length - 1 - k] === w[w.length - 1 - k]) k++;
      suffix = suffix.slice(suffix.length - k);
    }
    if (suffix.length) out.set(label, suffix.join(' '));
  }
  return out;
}

/** The label whose keyword appears in `text` (longest keywords first, whole words). */
export function classify(text: string, keywords: Map<number, string>): number | null {
  const t = ` ${text.toLowerCase().replace(/[^a-z0-9-]+/g, ' ')} `;
  const sorted = [...keywords].sort((a, b) => b[1].length - a[1].length);
  for (const [label, kw] of sorted) if (t.includes(` ${kw} `)) return label;
  return null;
}

export interface OmniEvaluation {
  captionAccuracy: number | null;
  speechAccuracy: number | null;
  examples: Array<{ source: string; id: string; expected: string; generated: string; correct: boolean }>;
}

/**
 * Held-out accuracy: for each validation sample with a labelled media item, generate
 * from the media alone and check the text names the right class.
 */
export async function evaluateOmni(run: OmniRun, log: (l: string) => void): Promise<OmniEvaluation> {
  const { model, tokenizer, val, config } = run;
  const keywords = labelKeywords([...val, ...loadManifest(join(config.data.dir, 'manifest.train.jsonl'))]);
  const media = createNodeMediaLoader({ image: config.data.image, audio: config.data.audio });
  const results = new Map<string, { correct: number; total: number }>();
  const examples: OmniEvaluation['examples'] = [];
  model.eval();
  const perSource = new Map<string, number>();
  for (const s of val) {
    const label = (s.meta as { label?: unknown } | undefined)?.label;
    const item = s.segments.find((seg) => seg.type !== 'text');
    if (typeof label !== 'number' || !item) continue;
    const seen = perSource.get(s.source) ?? 0;
    if (config.eval.maxSamples > 0 && seen >= config.eval.maxSamples) continue;
    perSource.set(s.source, seen + 1);
    const modality = segmentModality(item);
    const input = await media.load(item, resolveMediaPath(s.baseDir, item.path));
    const text = await generateFromMedia(model, tokenizer, modality, input, { maxNewTokens: config.eval.maxNewTokens });
    const correct = classify(text, keywords) === label;
    const r = results.get(s.source) ?? { correct: 0, total: 0 };
    r.correct += correct ? 1 : 0;
    r.total++;
    results.set(s.source, r);
    if (examples.filter((e) => e.source === s.source).length < 5) {
      const expected = s.segments.map((seg) => (seg.type === 'text' ? seg.text : '')).join(' ').trim();
      examples.push({ source: s.source, id: s.id, expected, generated: text, correct });
    }
  }
  model.train();
  const acc = (src: string) => {
    const r = results.get(src);
    return r && r.total ? r.correct / r.total : null;
  };
  for (const [src, r] of results) log(`held-out ${src}: ${r.correct}/${r.total} correct`);
  // The builder's sources: captions of images and transcripts of speech.
  const captionSrc = [...results.keys()].find((k) => k.includes('caption')) ?? '';
  const speechSrc = [...results.keys()].find((k) => k.includes('speech')) ?? '';
  return { captionAccuracy: acc(captionSrc), speechAccuracy: acc(speechSrc), examples };
}

export interface OmniSummary {
  name: string;
  captionAccuracy: number | null;
  speechAccuracy: number | null;
  textValLoss: number | null;
  valLoss: number | null;
  tokensPerSecond: number;
  wallSeconds: number;
  steps: number;
}

/** Validation loss on the text-only samples (source containing 'text'). */
async function textValLoss(run: OmniRun): Promise<number | null> {
  const { model, tokenizer, val, config } = run;
  const textSamples = val.filter((s) => s.source.includes('text'));
  if (!textSamples.length) return null;
  const loader = new MultimodalLoader(textSamples, {
    tokenizer,
    media: createNodeMediaLoader({}),
    tokenCount: (m, i) => model.tokenCount(m, i),
    tokensPerBatch: config.data.tokensPerBatch,
    bos: true,
    shuffle: false,
  });
  let total = 0;
  let count = 0;
  model.eval();
  for await (const b of loader.epochBatches()) {
    if (b.numTargets === 0) continue;
    const l = noGrad(() => scope(() => model.loss(toOmniBatch(b), 1).loss));
    total += await l.item();
    l.release();
    count += b.numTargets;
  }
  model.train();
  return count ? total / count : null;
}

export async function runOmni(
  device: Device,
  cfg: OmniRunConfig,
  opts: { resume?: string | boolean; stopAtStep?: number; profileSteps?: number; log?: (l: string) => void } = {},
): Promise<{ result: TrainResult; summary: OmniSummary; evaluation: OmniEvaluation; run: OmniRun }> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const t0 = performance.now();
  await loadPlugins(cfg.plugins);
  const run = buildOmniRun(device, cfg, log);
  run.trainer.o.stopAtStep = opts.stopAtStep;
  run.trainer.o.profileSteps = opts.profileSteps;
  if (opts.resume) {
    const dir = typeof opts.resume === 'string' ? opts.resume : await run.trainer.checkpoints.latest();
    if (dir) await run.trainer.resume(dir);
  }
  const result = await run.trainer.run();
  const evaluation = await evaluateOmni(run, log);
  const summary: OmniSummary = {
    name: cfg.name,
    captionAccuracy: evaluation.captionAccuracy,
    speechAccuracy: evaluation.speechAccuracy,
    textValLoss: await textValLoss(run),
    valLoss: result.valLoss,
    tokensPerSecond: result.tokensPerSecond,
    wallSeconds: (performance.now() - t0) / 1000,
    steps: result.step,
  };
  writeFileSync(join(run.runDir, 'summary.json'), JSON.stringify({ ...summary, examples: evaluation.examples }, null, 2));
  const metrics = readFileSync(join(run.runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  writeReport(join(run.runDir, 'report.html'), { ...summary }, metrics, evaluation.examples);
  return { result, summary, evaluation, run };
}
