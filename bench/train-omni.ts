// End-to-end omnimodal training throughput: tokens/s and MFU of webomni's training step on
// the omni-fashion-tiny config (MoE LLM + vision and audio encoders + projectors) with real
// batches of the committed data/omni-fashion-mini, the per-modality encoder cost, and the
// share of GPU time per op family from profiled steps (median per op). No peer runs this model: rows
// carry peer null. Usage:
//   npm run bench -- train-omni [--config configs/omni-fashion-tiny.yaml] [--steps 5] [--warmup 2]
//                               [--encoder-reps 4] [--profile-steps 3] [--<key.path> <value> ...]
//
// Training step = exactly the Trainer's: lossOn → backward → global-norm clip folded into
// the fused AdamW → zeroGrad, each step submitted with its loss readback and the previous
// step's value awaited after recording the next (as Trainer.run does).
//
// MFU = model FLOP/s / peak FLOP/s, with model FLOPs per batch
//   = 6 · N_llm · T                                  (T = text + placeholder tokens)
//   + Σ_modality 6 · Σ_layer(params · rows it is applied to)   (encoders + projectors)
//   + 3 · 4 · layers · dim · Σ_seq (L²/2)             (LLM causal attention, fwd + 2× bwd)
//   + 3 · 4 · layers_e · dim_e · Σ_item L_e²          (encoder bidirectional attention)
// N_llm = LLM matmul parameters one token uses: attention projections, dense MLPs, the MoE
// router, the shared experts, topK/E of the routed experts' weights, and the lm_head (the
// embedding table only when tied). Encoder rows: the vision patch-embed and blocks run on
// every patch, a 2×2 merger on a quarter of them, the audio conv1 on every mel frame, conv2
// and the blocks on every audio token, the projector on every media token. Norms, biases,
// position tables and the gradient-free log-mel front end are not counted.
// Peak = this adapter's FMA throughput measured in the same run by a WGSL kernel of
// independent FMA chains with no memory traffic (2 FLOPs per FMA).
import { readArgs } from './_args.ts';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initDevice, type Device, type Tensor } from '../src/node.ts';
import { scope } from '../src/tensor/scope.ts';
import { backward, noGrad } from '../src/autograd/index.ts';
import { add, sum } from '../src/ops/index.ts';
import { clipGradNorm } from '../src/optim/clip.ts';
import { learningRate } from '../src/optim/schedule.ts';
import { formatProfile, type KernelTime } from '../src/device/profiler.ts';
import { collectOverrides, loadAnyConfig } from '../src/cli/commands/train.ts';
import { buildOmniRun, loadPlugins, type OmniHostBatch, type OmniRun, type OmniRunConfig } from '../src/train/omni.ts';
import { VisionEncoder } from '../src/models/encoders/vision.ts';
import { AudioEncoder } from '../src/models/encoders/audio.ts';
import { row, writeReport, type BenchRow } from './report.ts';
import { measurePeak } from './_peak.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');

// ------------------------------------------------------------------ args

interface Args {
  config: string;
  steps: number;
  warmup: number;
  encoderReps: number;
  profileSteps: number;
  overrides: Array<[string, string]>;
}

function parseArgs(args: string[]): Args {
  const out: Args = { config: join(root, 'configs', 'omni-fashion-tiny.yaml'), steps: 5, warmup: 2, encoderReps: 4, profileSteps: 3, overrides: [] };
  const rest = readArgs(args, ({ key, value, int }) => {
    if (key === '--config' || key === '-c') out.config = value();
    else if (key === '--steps') out.steps = int(1);
    else if (key === '--warmup') out.warmup = int(0);
    else if (key === '--encoder-reps') out.encoderReps = int(1);
    else if (key === '--profile-steps') out.profileSteps = int(0);
    else return false;
    return true;
  });
  out.overrides = collectOverrides(rest);
  return out;
}

// Peak FMA throughput: bench/_peak.ts.

// ------------------------------------------------------------------ FLOPs

/** Parameters that are matmul weights: rank ≥ 2, not a position table. */
function isMatmulWeight(name: string, p: Tensor): boolean {
  return p.rank >= 2 && !/(^|\.)pos_embed$/.test(name);
}

interface LlmFlops {
  /** Matmul parameters one token uses (MoE: topK/E of the routed experts). */
  activeParams: number;
  /** All LLM matmul parameters (every expert). */
  matmulParams: number;
  layers: number;
  dim: number;
  topK: number | null;
  experts: number | null;
}

function llmFlopModel(run: OmniRun): LlmFlops {
  const cfg = run.config.model.llm;
  const moe = cfg.moe;
  let active = 0;
  let all = 0;
  for (const [name, p] of run.model.llm.namedParameters()) {
    if (!isMatmulWeight(name, p)) continue;
    // The input embedding is a lookup; with tied embeddings the same table is the lm_head matmul.
    if (name.startsWith('embed_tokens.') && !cfg.tieEmbeddings) continue;
    all += p.size;
    // Routed experts' stacked weights [E, …]: a token goes through topK of the E experts.
    const routed = /\.experts\.(gate_up_proj|down_proj)$/.test(name);
    active += routed && moe ? (p.size * moe.topK) / moe.experts : p.size;
  }
  return { activeParams: active, matmulParams: all, layers: cfg.layers, dim: cfg.dim, topK: moe?.topK ?? null, experts: moe?.experts ?? null };
}

interface EncoderFlops {
  /** 6 · Σ params · rows. */
  dense: number;
  attention: number;
  /** Encoder output (= placeholder) tokens. */
  tokens: number;
  items: number;
}

/** Rows each matmul weight of a modality's encoder + projector is applied to, for the given inputs. */
function encoderFlops(run: OmniRun, modality: string, inputs: readonly unknown[]): EncoderFlops {
  const enc = run.model.encoders.items.get(modality)!;
  const proj = run.model.projectors.items.get(modality)!;
  const counts = inputs.map((x) => enc.tokenCount(x));
  const tokens = counts.reduce((a, b) => a + b, 0);
  let rowsOf: (name: string) => number = () => tokens;
  let seqLens = counts;
  let layers = 0;
  let dim = enc.outDim;
  if (enc instanceof VisionEncoder) {
    const cells = enc.grid[0] * enc.grid[1];
    const patches = inputs.length * cells;
    rowsOf = (n) => (n.startsWith('merger.') ? patches / 4 : patches);
    seqLens = inputs.map(() => cells);
    layers = enc.config.layers;
    dim = enc.config.dim;
  } else if (enc instanceof AudioEncoder) {
    const a = inputs as ReadonlyArray<{ samples: Float32Array }>;
    const conv1Rows = a.reduce((s, x) => s + enc.conv1.outputLength(enc.frameCount(x.samples.length)), 0);
    rowsOf = (n) => (n.startsWith('conv1.') ? conv1Rows : tokens);
    layers = enc.config.layers;
    dim = enc.config.dim;
  }
  let dense = 0;
  for (const [name, p] of enc.namedParameters()) {
    if (!isMatmulWeight(name, p)) continue;
    // A conv weight [out, in, K] is a matmul of out·in·K per output row.
    dense += 6 * p.size * rowsOf(name);
  }
  for (const [name, p] of proj.namedParameters()) if (isMatmulWeight(name, p)) dense += 6 * p.size * tokens;
  const attention = 3 * 4 * layers * dim * seqLens.reduce((s, L) => s + L * L, 0);
  return { dense, attention, tokens, items: inputs.length };
}

interface BatchFlops {
  total: number;
  llmDense: number;
  llmAttention: number;
  encoders: Record<string, EncoderFlops>;
}

function batchFlops(run: OmniRun, fm: LlmFlops, b: OmniHostBatch): BatchFlops {
  const host = b.host;
  let halfL2 = 0;
  for (let i = 1; i < host.cuSeqlens.length; i++) {
    const L = host.cuSeqlens[i] - host.cuSeqlens[i - 1];
    halfL2 += (L * L) / 2;
  }
  const llmDense = 6 * fm.activeParams * host.numTokens;
  const llmAttention = 3 * 4 * fm.layers * fm.dim * halfL2;
  const encoders: Record<string, EncoderFlops> = {};
  let total = llmDense + llmAttention;
  for (const m of run.model.modalities()) {
    const inputs = host.media.filter((s) => s.modality === m).map((s) => s.input);
    if (!inputs.length) continue;
    const e = encoderFlops(run, m, inputs);
    encoders[m] = e;
    total += e.dense + e.attention;
  }
  return { total, llmDense, llmAttention, encoders };
}

// ------------------------------------------------------------------ training steps

function lrAt(cfg: OmniRunConfig, step: number): number {
  const t = cfg.train;
  return learningRate(step, { kind: t.schedule, lr: t.lr, warmupSteps: t.warmupSteps, totalSteps: t.steps, minRatio: t.minLrRatio });
}

/** One training step exactly as Trainer.run does it (no eval/checkpoint in the timed loop). */
function recordStep(run: OmniRun, step: number, micro: OmniHostBatch[]): Tensor {
  const { trainer, model, config: cfg } = run;
  trainer.optimizer.lr = lrAt(cfg, step);
  const normalizer = Math.max(1, micro.reduce((s, b) => s + b.lossTokens, 0));
  return scope(() => {
    let total: Tensor | null = null;
    for (const b of micro) {
      const l = model.lossOn(b, normalizer);
      backward(l);
      total = total ? noGrad(() => add(total!, l)) : l;
    }
    if (cfg.train.gradClip > 0) clipGradNorm(trainer.optimizer.params, cfg.train.gradClip, { optimizer: trainer.optimizer });
    trainer.optimizer.step();
    trainer.optimizer.zeroGrad();
    return total!;
  }, 'train step');
}

interface StepsResult {
  tokensPerSecond: number;
  msPerStep: number;
  recordMsPerStep: number;
  dispatchesPerStep: number;
  flops: number;
  tokens: number;
  ms: number;
  losses: number[];
  measured: OmniHostBatch[];
  profile: KernelTime[] | null;
  loaderMsPerStep: number;
}

async function runSteps(device: Device, run: OmniRun, a: Args, fm: LlmFlops, log: (l: string) => void): Promise<StepsResult & { all: OmniHostBatch[] }> {
  const cfg = run.config;
  const all: OmniHostBatch[] = [];
  const losses: number[] = [];
  let step = 0;
  let pending: { loss: Tensor; step: number; value: Promise<number> } | null = null;
  // As the Trainer does: submit each step with its loss readback right after recording it,
  // and await the previous step's value (with its per-source metrics every logEvery steps).
  const drain = async () => {
    if (!pending) return;
    const v = await pending.value;
    pending.loss.release();
    if (!Number.isFinite(v)) throw new Error(`loss became ${v}`);
    losses.push(v);
    if (pending.step % cfg.train.logEvery === 0) await run.model.stepMetrics();
    pending = null;
  };
  const timing = { record: 0, loader: 0 };
  const doStep = async () => {
    const micro: OmniHostBatch[] = [];
    const tl = performance.now();
    for (let i = 0; i < cfg.train.microBatches; i++) micro.push(await run.trainer.train.next());
    timing.loader += performance.now() - tl;
    all.push(...micro);
    const t0 = performance.now();
    const loss = recordStep(run, step++, micro);
    timing.record += performance.now() - t0;
    const value = loss.item();
    value.catch(() => {}); // awaited in drain()
    await drain();
    pending = { loss, step, value };
    return micro.reduce((s, b) => s + b.tokens, 0);
  };

  log(`training: ${a.warmup} warm-up + ${a.steps} measured steps`);
  const tw = performance.now();
  for (let i = 0; i < a.warmup; i++) await doStep();
  await drain();
  await device.sync();
  log(`  warm-up ${((performance.now() - tw) / 1000).toFixed(1)} s`);
  const measuredFrom = all.length;
  timing.record = 0;
  timing.loader = 0;
  const d0 = device.dispatchCount;
  const t0 = performance.now();
  let tokens = 0;
  for (let i = 0; i < a.steps; i++) tokens += await doStep();
  await drain();
  const ms = performance.now() - t0;
  const dispatches = (device.dispatchCount - d0) / a.steps;
  const measured = all.slice(measuredFrom);
  const flops = measured.reduce((s, b) => s + batchFlops(run, fm, b).total, 0);
  const tps = (tokens * 1000) / ms;
  log(
    `  ${a.steps} steps in ${(ms / 1000).toFixed(2)} s: ${tps.toFixed(0)} tokens/s, ${(ms / a.steps).toFixed(0)} ms/step ` +
      `(JS recording ${(timing.record / a.steps).toFixed(0)} ms, loader ${(timing.loader / a.steps).toFixed(0)} ms, ${dispatches.toFixed(0)} dispatches per step)`,
  );
  const result = {
    tokensPerSecond: tps,
    msPerStep: ms / a.steps,
    recordMsPerStep: timing.record / a.steps,
    loaderMsPerStep: timing.loader / a.steps,
    dispatchesPerStep: dispatches,
    flops,
    tokens,
    ms,
    losses,
    measured,
    profile: null as KernelTime[] | null,
    all,
  };

  if (a.profileSteps > 0 && device.features.has('timestamp-query')) {
    // Each step profiled on its own; per op the median over the steps, since one step's
    // timestamps on a loaded CPU adapter can swing by a large factor.
    log(`profiling ${a.profileSteps} step(s) (one compute pass per dispatch while profiling)…`);
    const perStep: KernelTime[][] = [];
    for (let i = 0; i < a.profileSteps; i++) {
      await drain();
      await device.sync();
      device.startProfiling();
      await doStep();
      await drain();
      perStep.push(await device.stopProfiling());
    }
    result.profile = medianProfile(perStep);
  } else if (a.profileSteps > 0) {
    log("  no profile: the adapter lacks 'timestamp-query'");
  }
  await run.model.stepMetrics(); // release the retained per-source sums
  return result;
}

/** Per op label: the median over steps of its GPU ms and calls (0 in a step that lacks it). */
function medianProfile(steps: KernelTime[][]): KernelTime[] {
  const labels = new Set(steps.flatMap((rows) => rows.map((r) => r.label)));
  const med = (xs: number[]) => {
    const v = [...xs].sort((x, y) => x - y);
    const h = Math.floor(v.length / 2);
    return v.length % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
  };
  const out: KernelTime[] = [];
  for (const label of labels) {
    const got = steps.map((rows) => rows.find((r) => r.label === label));
    out.push({ label, calls: Math.round(med(got.map((r) => r?.calls ?? 0))), ms: med(got.map((r) => r?.ms ?? 0)) });
  }
  return out.sort((x, y) => y.ms - x.ms);
}

// ------------------------------------------------------------------ per-modality encoder time

interface EncoderTime {
  modality: string;
  items: number;
  tokens: number;
  forwardMs: number;
  fwdBwdMs: number;
  flops: number;
}

/** Forward, and forward + backward of a sum, of encoder + projector on one batch's media of each modality. */
async function timeEncoders(device: Device, run: OmniRun, batches: OmniHostBatch[], reps: number, log: (l: string) => void): Promise<EncoderTime[]> {
  const out: EncoderTime[] = [];
  for (const m of run.model.modalities()) {
    const batch = batches.find((b) => b.host.media.some((s) => s.modality === m));
    if (!batch) {
      log(`  ${m}: no item in the batches seen, not timed`);
      continue;
    }
    const inputs = batch.host.media.filter((s) => s.modality === m).map((s) => s.input);
    const enc = run.model.encoders.items.get(m)!;
    const proj = run.model.projectors.items.get(m)!;
    const forward = () => proj.forward(enc.encode(inputs).embeddings);
    const timeRep = async (withBackward: boolean) => {
      await device.sync();
      const t0 = performance.now();
      if (withBackward) scope(() => backward(sum(forward())), `bench ${m} fwd+bwd`);
      else noGrad(() => scope(() => void forward(), `bench ${m} fwd`));
      await device.sync();
      const ms = performance.now() - t0;
      run.trainer.optimizer.zeroGrad();
      return ms;
    };
    // One untimed pass of each (pipelines, buffer pool), then the median of `reps`.
    await timeRep(false);
    await timeRep(true);
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
    const f: number[] = [];
    const fb: number[] = [];
    for (let r = 0; r < reps; r++) {
      f.push(await timeRep(false));
      fb.push(await timeRep(true));
    }
    const fl = encoderFlops(run, m, inputs);
    const t: EncoderTime = { modality: m, items: inputs.length, tokens: fl.tokens, forwardMs: median(f), fwdBwdMs: median(fb), flops: fl.dense + fl.attention };
    log(
      `  ${m}: ${t.items} items → ${t.tokens} tokens: forward ${t.forwardMs.toFixed(1)} ms, forward+backward ${t.fwdBwdMs.toFixed(1)} ms ` +
        `(median of ${reps}; ${(t.flops / 1e9).toFixed(3)} GFLOP → ${(t.flops / 1e6 / t.fwdBwdMs).toFixed(2)} GFLOP/s)`,
    );
    out.push(t);
  }
  return out;
}

// ------------------------------------------------------------------ op families

/** An op label's family: the kernel name without shape/variant suffixes. */
function opFamily(label: string): string {
  const l = label.toLowerCase();
  const rules: Array<[RegExp, string]> = [
    [/flash|attention|attn|sdpa/, 'attention'],
    [/moe|expert|router|topk|gate_up|grouped|argsort/, 'moe routing/experts'],
    [/rope/, 'rope'],
    [/patchify/, 'patchify'],
    [/matmul|gemm|linear/, 'matmul'],
    [/conv1d|conv/, 'conv1d'],
    [/mel|stft|fft/, 'log-mel'],
    [/adamw|adam|clip|grad_norm|gradnorm|optim/, 'optimizer (AdamW + clip)'],
    [/norm/, 'norms'],
    [/cross_?entropy|softmax|logsumexp/, 'cross-entropy/softmax'],
    [/gelu|silu|swiglu|relu|act/, 'activations'],
    [/embed|gather|index|scatter|select/, 'embedding/gather/scatter'],
    [/reduce|sum|mean/, 'reductions'],
    [/add|mul|sub|div|scale|affine|elementwise|binary|unary|fill|copy|contiguous|cast|zero/, 'elementwise/copy'],
  ];
  for (const [re, fam] of rules) if (re.test(l)) return fam;
  return 'other';
}

function families(rows: KernelTime[]): Array<{ family: string; ms: number; calls: number; share: number; ops: string[] }> {
  const total = rows.reduce((s, r) => s + r.ms, 0);
  const m = new Map<string, { ms: number; calls: number; ops: string[] }>();
  for (const r of rows) {
    const f = opFamily(r.label);
    const cur = m.get(f) ?? { ms: 0, calls: 0, ops: [] };
    cur.ms += r.ms;
    cur.calls += r.calls;
    cur.ops.push(r.label);
    m.set(f, cur);
  }
  return [...m]
    .map(([family, v]) => ({ family, ...v, share: total > 0 ? v.ms / total : 0 }))
    .sort((a, b) => b.ms - a.ms);
}

// ------------------------------------------------------------------ main

/** The commit and any uncommitted engine changes the numbers were taken with. */
function sourceState(): string {
  const git = (...a: string[]) => spawnSync('git', a, { cwd: root, encoding: 'utf8' }).stdout ?? '';
  const head = git('rev-parse', '--short', 'HEAD').trim() || 'unknown';
  const dirty = git('status', '--porcelain', '--', 'src', 'shaders').split('\n').filter(Boolean).map((l) => l.slice(3));
  return `commit ${head}${dirty.length ? `, with uncommitted changes to ${dirty.join(', ')}` : ', clean src/ and shaders/'}`;
}

function cores(): number {
  return availableParallelism();
}

export async function run(args: string[]): Promise<void> {
  const a = parseArgs(args);
  const log = (l: string) => console.log(l);
  const load0 = loadavg();
  const tBench = performance.now();
  const tmp = mkdtempSync(join(tmpdir(), 'webomni-bench-train-omni-'));
  try {
    const totalSteps = a.warmup + a.steps + a.profileSteps;
    const any = await loadAnyConfig(a.config, [['runsDir', tmp], ...a.overrides, ['train.steps', String(Math.max(totalSteps, 1))]]);
    if (any.kind !== 'omni') throw new Error(`${a.config} is not an omnimodal config (no model.llm); use bench train-lm`);
    const cfg = any.cfg;
    await loadPlugins(cfg.plugins);
    const device = await initDevice();
    const adapter = `${device.adapter.description || device.adapter.device} (${device.adapter.vendor}, ${device.adapter.architecture})`;
    log(`adapter: ${adapter}; load average ${load0.map((x) => x.toFixed(1)).join(' ')} on ${cores()} cores`);
    log('measuring the adapter peak (FMA chains, no memory traffic):');
    const peak = await measurePeak(device, log);
    log(`  peak ${peak.gflops.toFixed(1)} GFLOP/s (${peak.variant})`);

    const omni = buildOmniRun(device, cfg, (l) => log(`  ${l}`));
    const fm = llmFlopModel(omni);
    let steps: Awaited<ReturnType<typeof runSteps>>;
    let enc: EncoderTime[];
    try {
      steps = await runSteps(device, omni, a, fm, log);
      log(`encoder + projector time on one batch's media (wall clock around device.sync()):`);
      enc = await timeEncoders(device, omni, steps.measured, a.encoderReps, log);
    } finally {
      omni.trainer.dispose();
      device.destroy();
    }
    const load1 = loadavg();

    // FLOP breakdown over the measured batches.
    const per = steps.measured.map((b) => batchFlops(omni, fm, b));
    const tokens = steps.tokens;
    const sumOf = (f: (x: BatchFlops) => number) => per.reduce((s, x) => s + f(x), 0);
    const llmDense = sumOf((x) => x.llmDense);
    const llmAttn = sumOf((x) => x.llmAttention);
    const encDense: Record<string, number> = {};
    const encAttn: Record<string, number> = {};
    const encTokens: Record<string, number> = {};
    const encItems: Record<string, number> = {};
    for (const x of per) {
      for (const [m, e] of Object.entries(x.encoders)) {
        encDense[m] = (encDense[m] ?? 0) + e.dense;
        encAttn[m] = (encAttn[m] ?? 0) + e.attention;
        encTokens[m] = (encTokens[m] ?? 0) + e.tokens;
        encItems[m] = (encItems[m] ?? 0) + e.items;
      }
    }
    const flopsPerToken = steps.flops / tokens;
    const achieved = (steps.flops * 1000) / steps.ms;
    const mfu = achieved / 1e9 / peak.gflops;
    const n = steps.measured.length;
    const byMod = steps.measured.reduce<Record<string, number>>((acc, b) => {
      for (const [k, v] of Object.entries(b.host.tokensByModality)) acc[k] = (acc[k] ?? 0) + v;
      return acc;
    }, {});
    const seqs = steps.measured.reduce((s, b) => s + b.host.cuSeqlens.length - 1, 0);
    const layoutNote =
      `measured batches: ${(tokens / n).toFixed(0)} tokens/batch (${Object.entries(byMod).map(([k, v]) => `${k} ${(v / n).toFixed(0)}`).join(', ')}), ` +
      `${(seqs / n).toFixed(1)} samples/batch, ${Object.entries(encItems).map(([m, v]) => `${(v / n).toFixed(1)} ${m} items`).join(', ')}, ` +
      `${(steps.measured.reduce((s, b) => s + b.lossTokens, 0) / n).toFixed(0)} loss tokens/batch`;
    log(`  ${layoutNote}`);
    const flopNote =
      `model FLOPs/batch = 6·N_llm·T + Σ_modality 6·Σ_layer(params·rows) + 3·4·layers·dim·Σ_seq(L²/2) + 3·4·layers_e·dim_e·Σ_item L_e², ` +
      `N_llm = ${fm.activeParams.toLocaleString()} active LLM matmul parameters/token (of ${fm.matmulParams.toLocaleString()}` +
      `${fm.experts ? `; routed experts counted at top-${fm.topK}/${fm.experts}` : ''}; embedding table ${cfg.model.llm.tieEmbeddings ? 'tied = lm_head, counted' : 'not counted, lm_head counted'}), ` +
      `T = text + placeholder tokens; encoder rows: vision patch-embed/blocks per patch, merger per 4 patches, audio conv1 per mel frame, conv2/blocks per audio token, projector per media token; ` +
      `norms, biases, position tables and the log-mel front end not counted. Per token over the measured batches: ${(flopsPerToken / 1e6).toFixed(3)} MFLOP = ` +
      `LLM dense ${(llmDense / tokens / 1e6).toFixed(3)} + LLM attention ${(llmAttn / tokens / 1e6).toFixed(3)}` +
      Object.keys(encDense).map((m) => ` + ${m} ${((encDense[m] + encAttn[m]) / tokens / 1e6).toFixed(3)} (attention ${(encAttn[m] / tokens / 1e6).toFixed(3)})`).join('');
    log(`  ${flopNote}`);

    // Profile: top ops and op families.
    let profileText: string | null = null;
    let fams: ReturnType<typeof families> = [];
    if (steps.profile) {
      profileText = formatProfile(steps.profile, 15);
      fams = families(steps.profile);
      log(`GPU time per op, median over ${a.profileSteps} separately profiled step(s):\n${profileText}`);
      log('GPU time per op family:');
      for (const f of fams) {
        const ops = f.ops.length > 6 ? `${f.ops.slice(0, 6).join(', ')}, …` : f.ops.join(', ');
        log(`  ${f.family.padEnd(28)} ${String(f.calls).padStart(6)} calls ${f.ms.toFixed(1).padStart(9)} ms ${(100 * f.share).toFixed(1).padStart(6)}%  (${ops})`);
      }
    }

    const name = cfg.name;
    const loadNote = `host load average (1/5/15 min) at the start ${load0.map((x) => x.toFixed(1)).join(' ')}, at the end ${load1.map((x) => x.toFixed(1)).join(' ')} on ${cores()} cores; the WebGPU adapter is lavapipe on the same cores, so other processes slow every number here`;
    const rows: BenchRow[] = [
      row(`${name} tokens/s`, 'tokens/s', steps.tokensPerSecond, null, '—', `${a.steps} full training steps (fwd, bwd, clip, AdamW, loss read), text + placeholder tokens`),
      row(`${name} ms/step`, 'ms', steps.msPerStep, null, '—', `${steps.recordMsPerStep.toFixed(0)} ms JS recording, ${steps.loaderMsPerStep.toFixed(0)} ms loader, ${steps.dispatchesPerStep.toFixed(0)} dispatches`),
      row('MFU (vs measured FMA peak)', 'fraction', mfu, null, '—', `${(100 * mfu).toFixed(1)}%: model FLOPs (formula in notes) / wall time / peak`),
      row('model GFLOP/s achieved', 'GFLOP/s', achieved / 1e9, null, '—'),
      row('peak GFLOP/s (WGSL FMA, measured)', 'GFLOP/s', peak.gflops, null, '—', peak.variant),
      row('model FLOPs per token', 'MFLOP/token', flopsPerToken / 1e6, null, '—', `LLM dense ${(llmDense / tokens / 1e6).toFixed(3)}, LLM attn ${(llmAttn / tokens / 1e6).toFixed(3)}, encoders ${(Object.keys(encDense).reduce((s, m) => s + encDense[m] + encAttn[m], 0) / tokens / 1e6).toFixed(3)}`),
    ];
    for (const e of enc) {
      rows.push(row(`${e.modality} encoder+projector fwd+bwd`, 'ms', e.fwdBwdMs, null, '—', `${e.items} items → ${e.tokens} tokens, ${(e.flops / 1e6 / e.fwdBwdMs).toFixed(2)} GFLOP/s`));
      rows.push(row(`${e.modality} encoder+projector forward`, 'ms', e.forwardMs, null, '—', `${e.items} items → ${e.tokens} tokens`));
    }
    for (const f of fams.slice(0, 8)) rows.push(row(`GPU time share: ${f.family}`, 'fraction', f.share, null, '—', `${f.ms.toFixed(1)} ms, ${f.calls} dispatches per step (median of ${a.profileSteps} profiled steps)`));
    const notes = [
      `config ${a.config}: LLM ${cfg.model.llm.layers}×${cfg.model.llm.dim}${cfg.model.llm.moe ? ` MoE ${cfg.model.llm.moe.experts} experts top-${cfg.model.llm.moe.topK}` : ''}, encoders ${omni.model.modalities().join(', ')}, ${cfg.data.tokensPerBatch} tokens/batch, ${cfg.train.microBatches} micro-batch(es)/step; ${a.warmup} warm-up + ${a.steps} measured steps on real batches of ${cfg.data.dir}`,
      flopNote,
      layoutNote,
      `peak = best of WGSL kernels of independent FMA chains with no memory traffic (2 FLOPs per FMA), timed with device.sync() in this run: ${peak.all.map((p) => `${p.variant} ${p.gflops.toFixed(1)}`).join('; ')} GFLOP/s`,
      `step: the Trainer's (lossOn → backward → clipGradNorm folded into fused AdamW → zeroGrad), each step submitted with its loss readback, the previous step's value awaited after recording the next; losses ${steps.losses.map((l) => l.toFixed(3)).join(' ')}`,
      `encoder times: encode + projector (forward, no grad) and encode + projector + backward of sum(output), on the media of one measured batch, wall clock between device.sync() calls, median of ${a.encoderReps} after one untimed pass; includes host work (pixel upload, log-mel) and dispatch recording`,
      `GPU time per op: each of ${a.profileSteps} steps profiled on its own (every dispatch its own timestamped pass, so totals exceed an unprofiled step), per op the median over the steps; op families from label patterns. Single-step profiles on this loaded CPU adapter swing a lot (one step showed AdamW at 1.6 s, the others ~20 ms)`,
      loadNote,
      `source: ${sourceState()}`,
    ];
    log(`bench wall time ${((performance.now() - tBench) / 1000).toFixed(0)} s`);
    writeReport({
      name: 'train-omni',
      adapter,
      rows,
      notes,
      config: a.config,
      formula: 'model FLOPs/batch = 6·N_llm(active, MoE top-k of E)·T + Σ_modality 6·Σ_layer(params·rows) + 3·4·layers·dim·Σ_seq(L²/2) + 3·4·layers_e·dim_e·Σ_item L_e²; MFU = model FLOP/s / measured FMA peak',
      peakGflops: peak.gflops,
      peakVariants: peak.all,
      flopsPerToken,
      llm: fm,
      loadAverage: { start: load0, end: load1 },
      webomni: {
        tokensPerSecond: steps.tokensPerSecond,
        msPerStep: steps.msPerStep,
        recordMsPerStep: steps.recordMsPerStep,
        loaderMsPerStep: steps.loaderMsPerStep,
        dispatchesPerStep: steps.dispatchesPerStep,
        mfu,
        losses: steps.losses,
      },
      encoders: enc,
      profile: steps.profile ? { ops: steps.profile, families: fams, text: profileText } : null,
    });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
