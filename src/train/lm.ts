// A language-model run from a validated config: Brown corpus → BPE tokenizer → packed
// loader → DecoderLM → Trainer. Node-only (files, corpus).

import { join } from 'node:path';
import { existsSync, mkdirSync, copyFileSync, writeFileSync } from 'node:fs';
import type { Device } from '../device/index.ts';
import { Tensor } from '../tensor/tensor.ts';
import { DecoderLM, DEFAULT_DECODER, type DecoderConfig } from '../models/decoder.ts';
import { PackedLoader, type PackedBatch as HostPackedBatch, type LoaderState } from '../data/packing.ts';
import { prepareBrown, loadTokenizer, saveTokenizer } from '../data/node.ts';
import type { Tokenizer } from '../data/tokenizer/tokenizer.ts';
import { Trainer, type BatchSource, type HostBatch, type TrainableModel, type TrainResult } from './trainer.ts';
import type { RunConfig } from './schema.ts';
import { MoE, MoEStatsTracker } from '../nn/moe.ts';
import type { Generator } from '../ops/creation.ts';

export interface LmBatch extends HostBatch {
  host: HostPackedBatch;
}

export class LoaderSource implements BatchSource<LmBatch> {
  constructor(readonly loader: PackedLoader) {}
  next(): LmBatch {
    const host = this.loader.next();
    return { host, tokens: host.ids.length, lossTokens: host.numTargets };
  }
  state(): unknown {
    return this.loader.state();
  }
  restore(state: unknown): void {
    this.loader.restore(state as LoaderState);
  }
}

/** The DecoderLM seen by the trainer: uploads a host batch and returns its loss. */
export class TrainableLM extends DecoderLM implements TrainableModel<LmBatch> {
  zLoss = 0;
  /** MoE layers' aux/z penalties (added to the training loss) and load metrics. */
  readonly moeStats = new MoEStatsTracker(this.layers.items.map((b) => b.mlp).filter((m): m is MoE => m instanceof MoE));
  stepMetrics(): Promise<Record<string, unknown>> {
    return this.moeStats.read();
  }
  lossOn(b: LmBatch, normalizer: number): Tensor {
    const T = b.host.ids.length;
    const batch = {
      ids: Tensor.fromArray(b.host.ids, [T], 'i32'),
      targets: Tensor.fromArray(b.host.targets, [T], 'i32'),
      positions: Tensor.fromArray(b.host.positions, [T], 'i32'),
      cuSeqlens: b.host.cuSeqlens,
    };
    const loss = this.loss(batch, { normalizer, zLoss: this.zLoss || undefined });
    return this.training && this.moeStats.active ? this.moeStats.addPenalty(loss, b.lossTokens / normalizer) : loss;
  }
}

/** The MoE feed-forward factory of `model.moe` (undefined for a dense model). */
export function moeFeedForward(cfg: RunConfig): ((layer: number, gen: Generator) => MoE | null) | undefined {
  const m = cfg.model;
  const o = m.moe;
  if (!o) return undefined;
  if (m.activationCheckpointing) throw new Error('model.moe: activation checkpointing of MoE layers is not supported yet');
  if (m.mlp !== 'swiglu') throw new Error('model.moe: experts are SwiGLU MLPs (set model.mlp: swiglu)');
  return (layer, gen) =>
    layer >= o.firstDenseLayers && (layer - o.firstDenseLayers) % o.everyNLayers === 0
      ? new MoE({ ...o, dim: m.dim, generator: gen, initStd: m.initStd })
      : null;
}

export function decoderConfig(cfg: RunConfig, vocabSize: number): DecoderConfig {
  return decoderConfigOf(cfg.model, cfg.seed, vocabSize);
}

/** The DecoderLM config of a validated `model` section (also an omni run's `model.llm`). */
export function decoderConfigOf(m: RunConfig['model'], seed: number, vocabSize: number): DecoderConfig {
  return {
    ...DEFAULT_DECODER,
    vocabSize,
    dim: m.dim,
    layers: m.layers,
    heads: m.heads,
    kvHeads: m.kvHeads,
    ffnDim: m.ffnDim,
    mlp: m.mlp,
    norm: m.norm,
    normEps: m.normEps,
    ropeTheta: m.ropeTheta,
    tieEmbeddings: m.tieEmbeddings,
    maxSeqLen: m.maxSeqLen,
    initStd: m.initStd,
    seed,
    activationCheckpointing: m.activationCheckpointing,
  };
}

export interface LmRun {
  trainer: Trainer<LmBatch, LoaderSource>;
  model: TrainableLM;
  tokenizer: Tokenizer;
  runDir: string;
}

export function buildLmRun(device: Device, cfg: RunConfig, log: (l: string) => void): LmRun {
  const runDir = join(cfg.runsDir, cfg.name);
  mkdirSync(runDir, { recursive: true });
  let tokenizer: Tokenizer | undefined;
  if (cfg.tokenizer.path) {
    if (!existsSync(cfg.tokenizer.path)) throw new Error(`tokenizer.path: file not found: ${cfg.tokenizer.path}`);
    tokenizer = loadTokenizer(cfg.tokenizer.path);
  }
  const data = prepareBrown({
    cacheDir: cfg.data.cacheDir,
    vocabSize: cfg.tokenizer.vocabSize,
    valFraction: cfg.data.valFraction,
    tokenizer,
    log,
  });
  const tokPath = join(runDir, 'tokenizer.json');
  if (data.tokenizerPath) copyFileSync(data.tokenizerPath, tokPath);
  else saveTokenizer(data.tokenizer, tokPath);
  writeFileSync(join(runDir, 'config.json'), JSON.stringify(cfg, null, 2));
  const eosId = data.tokenizer.eosId;
  if (eosId === undefined) throw new Error('the tokenizer has no <|eos|> token');
  const pack = { tokensPerBatch: cfg.data.tokensPerBatch, maxSeqLen: cfg.model.maxSeqLen, eosId, bosId: data.tokenizer.bosId };
  const trainLoader = new PackedLoader(data.train, { ...pack, shuffle: true, seed: cfg.seed, tail: 'carry' });
  const valLoader = new PackedLoader(data.val, { ...pack, shuffle: false, tail: 'carry' });
  const model = new TrainableLM(decoderConfig(cfg, data.tokenizer.vocabSize), moeFeedForward(cfg));
  model.zLoss = cfg.train.zLoss;
  log(
    `model: ${(model.numParameters() / 1e6).toFixed(2)}M parameters (${cfg.model.layers} layers, dim ${cfg.model.dim}, ` +
      `${cfg.model.heads}/${cfg.model.kvHeads} heads, vocab ${data.tokenizer.vocabSize}); ` +
      `data: ${data.train.tokens.length.toLocaleString()} train / ${data.val.tokens.length.toLocaleString()} validation tokens`,
  );
  const t = cfg.train;
  const trainer = new Trainer<LmBatch, LoaderSource>(
    device,
    model,
    new LoaderSource(trainLoader),
    new LoaderSource(valLoader),
    { ...t, runDir, config: cfg },
    log,
  );
  return { trainer, model, tokenizer: data.tokenizer, runDir };
}

export async function runLm(
  device: Device,
  cfg: RunConfig,
  opts: { resume?: string | boolean; stopAtStep?: number; profileSteps?: number; log?: (l: string) => void } = {},
): Promise<TrainResult & { run: LmRun }> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const run = buildLmRun(device, cfg, log);
  run.trainer.o.stopAtStep = opts.stopAtStep;
  run.trainer.o.profileSteps = opts.profileSteps;
  if (opts.resume) {
    const dir = typeof opts.resume === 'string' ? opts.resume : await run.trainer.checkpoints.latest();
    if (dir) await run.trainer.resume(dir);
    else log('no checkpoint to resume from: starting fresh');
  }
  const result = await run.trainer.run();
  return { ...result, run };
}
