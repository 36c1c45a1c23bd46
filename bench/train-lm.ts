// End-to-end LM training throughput (issue 4): tokens/s and MFU of webomni's training step
// (forward + backward + global-norm clip + fused AdamW, one optimizer step per batch, the
// loss read back every step like the Trainer does) on the lm-brown-tiny config with real
// Brown batches, against PyTorch CPU and tfjs-webgpu training the same model on the same
// batches, on the same machine, in the same run. Usage:
//   npm run bench -- train-lm [--config configs/lm-brown-tiny.yaml] [--steps 5] [--warmup 2]
//                             [--profile-steps 1] [--peers=torch,tfjs | --no-peers] [--peer-max-seconds 60]
//                             [--<key.path> <value> ...]   (config overrides, as in webomni train)
//
// MFU = model FLOP/s / peak FLOP/s, with
//   model FLOPs per step = 6·N·T + 3·layers·4·Σ_seq(L²/2)·dim
// where N = parameters that take part in matmuls (all but the embedding table; lm_head
// included), T = tokens in the batch, L = each packed sequence's length (cu_seqlens): the
// causal QKᵀ and PV of the forward are 2·(L²/2)·dim multiply-adds each = 4·(L²/2)·dim FLOPs,
// and backward costs twice the forward. Peak = this adapter's FMA throughput measured here by
// a WGSL kernel of independent FMA chains with no memory traffic (2 FLOPs per FMA).
import { readArgs } from './_args.ts';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initDevice, type Device, type Tensor } from '../src/node.ts';
import { scope } from '../src/tensor/scope.ts';
import { backward, noGrad } from '../src/autograd/index.ts';
import { add } from '../src/ops/index.ts';
import { clipGradNorm } from '../src/optim/clip.ts';
import { learningRate } from '../src/optim/schedule.ts';
import { formatProfile } from '../src/device/profiler.ts';
import { collectOverrides, loadRunConfig } from '../src/cli/commands/train.ts';
import { buildLmRun, type LmBatch, type LmRun } from '../src/train/lm.ts';
import type { RunConfig } from '../src/train/schema.ts';
import { row, writeReport, type BenchRow } from './report.ts';
import { measurePeak } from './_peak.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');

// ------------------------------------------------------------------ args

interface Args {
  config: string;
  steps: number;
  warmup: number;
  profileSteps: number;
  peerMaxSeconds: number;
  peers: string[];
  overrides: Array<[string, string]>;
}

function parseArgs(args: string[]): Args {
  const out: Args = { config: join(root, 'configs', 'lm-brown-tiny.yaml'), steps: 5, warmup: 2, profileSteps: 1, peerMaxSeconds: 60, peers: ['torch', 'tfjs'], overrides: [] };
  const rest = readArgs(args, ({ key, value, int }) => {
    if (key === '--config' || key === '-c') out.config = value();
    else if (key === '--steps') out.steps = int(1);
    else if (key === '--warmup') out.warmup = int(0);
    else if (key === '--profile-steps') out.profileSteps = int(0);
    else if (key === '--peer-max-seconds') out.peerMaxSeconds = int(1);
    else if (key === '--no-peers') out.peers = [];
    else if (key === '--peers') out.peers = value().split(',').filter(Boolean);
    else return false;
    return true;
  });
  out.overrides = collectOverrides(rest);
  return out;
}

// Peak FMA throughput: bench/_peak.ts.

// ------------------------------------------------------------------ FLOPs

interface FlopModel {
  /** Parameters in matmuls (all but the embedding table). */
  matmulParams: number;
  totalParams: number;
  layers: number;
  dim: number;
}

function stepFlops(fm: FlopModel, tokens: number, cuSeqlens: number[]): { total: number; dense: number; attention: number } {
  let sumHalfL2 = 0;
  for (let i = 1; i < cuSeqlens.length; i++) {
    const L = cuSeqlens[i] - cuSeqlens[i - 1];
    sumHalfL2 += (L * L) / 2;
  }
  const dense = 6 * fm.matmulParams * tokens;
  const attention = 3 * fm.layers * 4 * sumHalfL2 * fm.dim;
  return { total: dense + attention, dense, attention };
}

// ------------------------------------------------------------------ webomni

interface OursResult {
  tokensPerSecond: number;
  msPerStep: number;
  /** JavaScript time spent recording a step's dispatches (before waiting on the GPU). */
  recordMsPerStep: number;
  dispatchesPerStep: number;
  flopsPerSecond: number;
  losses: number[];
  profile: string | null;
  batches: LmBatch[];
  lrs: number[];
}

function lrAt(cfg: RunConfig, step: number): number {
  const t = cfg.train;
  return learningRate(step, { kind: t.schedule, lr: t.lr, warmupSteps: t.warmupSteps, totalSteps: t.steps, minRatio: t.minLrRatio });
}

/** One training step exactly as Trainer.run does it (no eval/checkpoint in the timed loop). */
function recordStep(run: LmRun, cfg: RunConfig, step: number, micro: LmBatch[]): Tensor {
  const { trainer, model } = run;
  const t = cfg.train;
  trainer.optimizer.lr = lrAt(cfg, step);
  const normalizer = Math.max(1, micro.reduce((s, b) => s + b.lossTokens, 0));
  return scope(() => {
    let total: Tensor | null = null;
    for (const b of micro) {
      const l = model.lossOn(b, normalizer);
      backward(l);
      total = total ? noGrad(() => add(total!, l)) : l;
    }
    if (t.gradClip > 0) clipGradNorm(trainer.optimizer.params, t.gradClip, { optimizer: trainer.optimizer });
    trainer.optimizer.step();
    trainer.optimizer.zeroGrad();
    return total!;
  }, 'train step');
}

async function runOurs(device: Device, run: LmRun, cfg: RunConfig, a: Args, fm: FlopModel, log: (l: string) => void): Promise<OursResult> {
  const batches: LmBatch[] = [];
  const lrs: number[] = [];
  const losses: number[] = [];
  let step = 0;
  let pending: Tensor | null = null;
  // Read the previous step's loss after recording the next one, as the Trainer does.
  const drain = async () => {
    if (!pending) return;
    const v = await pending.item();
    pending.release();
    pending = null;
    if (!Number.isFinite(v)) throw new Error(`loss became ${v}`);
    losses.push(v);
  };
  const doStep = async (record?: { ms: number }) => {
    const micro: LmBatch[] = [];
    for (let i = 0; i < cfg.train.microBatches; i++) micro.push(await run.trainer.train.next());
    batches.push(...micro);
    for (const _ of micro) lrs.push(lrAt(cfg, step));
    const t0 = performance.now();
    const loss = recordStep(run, cfg, step++, micro);
    if (record) record.ms += performance.now() - t0;
    return { loss, tokens: micro.reduce((s, b) => s + b.tokens, 0) };
  };

  log(`webomni: ${a.warmup} warm-up + ${a.steps} measured steps`);
  const tw = performance.now();
  for (let i = 0; i < a.warmup; i++) {
    const { loss } = await doStep();
    await drain();
    pending = loss;
  }
  await drain();
  await device.sync();
  log(`  warm-up ${((performance.now() - tw) / 1000).toFixed(1)} s`);
  const measuredFrom = batches.length;
  const record = { ms: 0 };
  const d0 = device.dispatchCount;
  const t0 = performance.now();
  let tokens = 0;
  for (let i = 0; i < a.steps; i++) {
    const r = await doStep(record);
    tokens += r.tokens;
    await drain();
    pending = r.loss;
  }
  await drain();
  const ms = performance.now() - t0;
  const dispatches = (device.dispatchCount - d0) / a.steps;
  let flops = 0;
  for (const b of batches.slice(measuredFrom)) flops += stepFlops(fm, b.tokens, b.host.cuSeqlens).total;
  const tps = (tokens * 1000) / ms;
  log(`  ${a.steps} steps in ${(ms / 1000).toFixed(2)} s: ${tps.toFixed(0)} tokens/s, ${(ms / a.steps).toFixed(0)} ms/step (JS recording ${(record.ms / a.steps).toFixed(0)} ms/step, ${dispatches.toFixed(0)} dispatches/step)`);

  let profile: string | null = null;
  if (a.profileSteps > 0 && device.features.has('timestamp-query')) {
    device.startProfiling();
    for (let i = 0; i < a.profileSteps; i++) {
      const { loss } = await doStep();
      await drain();
      pending = loss;
    }
    await drain();
    profile = formatProfile(await device.stopProfiling(), 20);
  } else if (a.profileSteps > 0) {
    profile = "(no profile: the adapter lacks 'timestamp-query')";
  }
  return {
    tokensPerSecond: tps,
    msPerStep: ms / a.steps,
    recordMsPerStep: record.ms / a.steps,
    dispatchesPerStep: dispatches,
    flopsPerSecond: (flops * 1000) / ms,
    losses,
    profile,
    batches,
    lrs,
  };
}

// ------------------------------------------------------------------ peers

export interface PeerSpec {
  model: {
    vocabSize: number;
    dim: number;
    layers: number;
    heads: number;
    kvHeads: number;
    ffnDim: number;
    normEps: number;
    ropeTheta: number;
    maxSeqLen: number;
    initStd: number;
  };
  train: { lr: number; betas: [number, number]; eps: number; weightDecay: number; gradClip: number };
  /** Learning rate of each batch's step (webomni's schedule), so the peers train identically. */
  lrs: number[];
  warmup: number;
  steps: number;
  /** Warm-up steps the peers run (the last ones of the warm-up batches). */
  peerWarmup: number;
  /** Peers stop measuring once this many seconds passed (after at least 2 steps). */
  peerMaxSeconds: number;
  batches: Array<{ ids: number[]; targets: number[]; positions: number[]; cuSeqlens: number[] }>;
}

export interface PeerOut {
  peer: string;
  tokensPerSecond: number;
  msPerStep: number;
  losses: number[];
  /** Peer's own reference peak in GFLOP/s (PyTorch: its best sgemm), when it measures one. */
  peakGflops?: number;
  peakNote?: string;
  notes?: string[];
}

function runPeer(cmd: string, argv: string[], timeoutMs: number): PeerOut | { error: string } {
  const r = spawnSync(cmd, argv, { cwd: root, encoding: 'utf8', maxBuffer: 16 << 20, timeout: timeoutMs });
  if (r.error) return { error: r.error.message };
  const out = (r.stdout ?? '').trim().split('\n');
  for (const l of out) if (!l.startsWith('{')) console.log(`  | ${l}`);
  const line = out.filter((l) => l.startsWith('{')).pop();
  if (r.status !== 0 || !line) {
    const why = r.signal ? `killed by ${r.signal}${r.signal === 'SIGTERM' ? ` (timeout ${timeoutMs / 1000} s)` : ''}` : `exit ${r.status}`;
    return { error: `${why}: ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}` };
  }
  const parsed = JSON.parse(line) as PeerOut | { error: string };
  return parsed;
}

// ------------------------------------------------------------------ main


export async function run(args: string[]): Promise<void> {
  const a = parseArgs(args);
  const log = (l: string) => console.log(l);
  const tmp = mkdtempSync(join(tmpdir(), 'webomni-bench-train-lm-'));
  try {
    const totalSteps = a.warmup + a.steps + a.profileSteps;
    // Runs go to a temp dir (the bench never checkpoints); the tokenizer/corpus cache is reused.
    const cfg = loadRunConfig(a.config, [['runsDir', tmp], ...a.overrides, ['train.steps', String(Math.max(totalSteps, 1))]]);
    const device = await initDevice();
    const adapter = `${device.adapter.description || device.adapter.device} (${device.adapter.vendor}, ${device.adapter.architecture})`;
    log(`adapter: ${adapter}`);
    log('measuring the adapter peak (FMA chains, no memory traffic):');
    const peak = await measurePeak(device, log);
    log(`  peak ${peak.gflops.toFixed(1)} GFLOP/s (${peak.variant})`);

    const lm = buildLmRun(device, cfg, (l) => log(`  ${l}`));
    const named = lm.model.namedParameters();
    const totalParams = named.reduce((s, [, p]) => s + p.size, 0);
    const embedParams = named.filter(([n]) => n.startsWith('embed_tokens.')).reduce((s, [, p]) => s + p.size, 0);
    const fm: FlopModel = { matmulParams: cfg.model.tieEmbeddings ? totalParams : totalParams - embedParams, totalParams, layers: cfg.model.layers, dim: cfg.model.dim };
    if (cfg.model.tieEmbeddings) log('  note: tied embeddings: the table is the lm_head matmul, so it counts in N');

    let ours: OursResult;
    try {
      ours = await runOurs(device, lm, cfg, a, fm, log);
    } finally {
      lm.trainer.dispose();
      device.destroy();
    }
    if (ours.profile) log(`webomni GPU time per op over ${a.profileSteps} profiled step(s) (one pass per dispatch while profiling):\n${ours.profile}`);

    const measured = ours.batches.slice(a.warmup, a.warmup + a.steps);
    const perTok = measured.map((b) => stepFlops(fm, b.tokens, b.host.cuSeqlens));
    const tokensMeasured = measured.reduce((s, b) => s + b.tokens, 0);
    const flopsPerToken = perTok.reduce((s, f) => s + f.total, 0) / tokensMeasured;
    const attnPerToken = perTok.reduce((s, f) => s + f.attention, 0) / tokensMeasured;
    const oursMfu = ours.flopsPerSecond / 1e9 / peak.gflops;
    const seqs = measured.reduce((s, b) => s + b.host.cuSeqlens.length - 1, 0);
    const layoutNote = `packed layout of the measured batches: ${(seqs / measured.length).toFixed(1)} sequences/batch, mean length ${(tokensMeasured / seqs).toFixed(1)} tokens, longest ${Math.max(...measured.map((b) => b.host.maxSeqlen))}`;
    log(`  ${layoutNote}`);

    // Peers get exactly the batches webomni trained on (warm-up ones first).
    const spec: PeerSpec = {
      model: {
        vocabSize: lm.model.config.vocabSize,
        dim: cfg.model.dim,
        layers: cfg.model.layers,
        heads: cfg.model.heads,
        kvHeads: cfg.model.kvHeads,
        ffnDim: cfg.model.ffnDim,
        normEps: cfg.model.normEps,
        ropeTheta: cfg.model.ropeTheta,
        maxSeqLen: cfg.model.maxSeqLen,
        initStd: cfg.model.initStd,
      },
      train: { lr: cfg.train.lr, betas: cfg.train.betas, eps: cfg.train.eps, weightDecay: cfg.train.weightDecay, gradClip: cfg.train.gradClip },
      lrs: ours.lrs.slice(0, a.warmup + a.steps),
      warmup: a.warmup,
      steps: a.steps,
      peerWarmup: Math.min(a.warmup, 1),
      peerMaxSeconds: a.peerMaxSeconds,
      batches: ours.batches.slice(0, a.warmup + a.steps).map((b) => ({
        ids: Array.from(b.host.ids),
        targets: Array.from(b.host.targets),
        positions: Array.from(b.host.positions),
        cuSeqlens: b.host.cuSeqlens,
      })),
    };
    const specPath = join(tmp, 'batches.json');
    writeFileSync(specPath, JSON.stringify(spec));

    const notes: string[] = [
      `config ${a.config} (${cfg.model.layers} layers, dim ${cfg.model.dim}, ${cfg.model.heads}/${cfg.model.kvHeads} heads, ffn ${cfg.model.ffnDim}, vocab ${spec.model.vocabSize}, ${cfg.data.tokensPerBatch} tokens/batch, ${cfg.train.microBatches} micro-batch(es)/step); ${a.warmup} warm-up + ${a.steps} measured steps per system on the same real Brown batches`,
      `model FLOPs/step = 6·N·T + 3·layers·4·Σ_seq(L²/2)·dim, N = ${fm.matmulParams.toLocaleString()} matmul parameters (all ${fm.totalParams.toLocaleString()} but the embedding table; lm_head included), L = packed sequence lengths from cu_seqlens; = ${(flopsPerToken / 1e6).toFixed(2)} MFLOP/token (${(attnPerToken / 1e6).toFixed(3)} of it attention)`,
      layoutNote,
      `peak = best of WGSL kernels of independent FMA chains with no memory traffic (2 FLOPs per FMA), timed with device.sync(): ${peak.all.map((p) => `${p.variant} ${p.gflops.toFixed(1)}`).join('; ')} GFLOP/s`,
      `webomni step: the Trainer's step (lossOn → backward → clipGradNorm into fused AdamW → zeroGrad), previous loss read back after recording the next step; ${ours.msPerStep.toFixed(0)} ms/step of which ${ours.recordMsPerStep.toFixed(0)} ms JavaScript recording, ${ours.dispatchesPerStep.toFixed(0)} dispatches/step; losses ${ours.losses.map((l) => l.toFixed(3)).join(' ')}`,
    ];
    notes.push(`host load average (1 min) after the webomni run: ${loadavg()[0].toFixed(1)} on ${cpus().length} cores (the WebGPU adapter is lavapipe on the same cores: other processes slow every system here)`);
    const rows: BenchRow[] = [];

    const peerRuns: Array<{ name: string; out: PeerOut | { error: string } }> = [];
    if (a.peers.includes('torch')) {
      log('running PyTorch CPU peer…');
      const python = process.env.PYTHON ?? '/usr/bin/python3';
      peerRuns.push({ name: 'pytorch-cpu', out: runPeer(python, [join(here, 'peers', 'train_lm_torch.py'), specPath], 10 * 60_000) });
    }
    if (a.peers.includes('tfjs')) {
      log('running tfjs-webgpu peer…');
      peerRuns.push({ name: 'tfjs-webgpu', out: runPeer(process.execPath, ['--import', 'tsx', join(here, 'peers', 'train_lm_tfjs.ts'), specPath], 10 * 60_000) });
    }

    const tokRow = 'lm-brown-tiny tokens/s';
    if (!peerRuns.length) rows.push(row(tokRow, 'tokens/s', ours.tokensPerSecond, null, '—'));
    for (const p of peerRuns) {
      if ('error' in p.out) {
        rows.push(row(tokRow, 'tokens/s', ours.tokensPerSecond, null, p.name, `peer did not run: ${p.out.error}`));
        notes.push(`${p.name}: ${p.out.error}`);
        continue;
      }
      const o = p.out;
      log(`  ${o.peer}: ${o.tokensPerSecond.toFixed(0)} tokens/s, ${o.msPerStep.toFixed(0)} ms/step, losses ${o.losses.map((l) => l.toFixed(3)).join(' ')}`);
      rows.push(row(tokRow, 'tokens/s', ours.tokensPerSecond, o.tokensPerSecond, p.name, o.peer));
      for (const n of o.notes ?? []) notes.push(`${p.name}: ${n}`);
    }

    // MFU rows.
    const mfuNote = `vs the measured WGSL FMA peak ${peak.gflops.toFixed(1)} GFLOP/s of this adapter`;
    const tfjs = peerRuns.find((p) => p.name === 'tfjs-webgpu');
    const tfjsMfu = tfjs && !('error' in tfjs.out) ? (tfjs.out.tokensPerSecond * flopsPerToken) / 1e9 / peak.gflops : null;
    rows.push(row('MFU (same WebGPU adapter peak)', 'fraction', oursMfu, tfjsMfu, 'tfjs-webgpu', mfuNote));
    const torch = peerRuns.find((p) => p.name === 'pytorch-cpu');
    if (torch) {
      const t = 'error' in torch.out ? null : torch.out;
      const torchMfu = t?.peakGflops ? (t.tokensPerSecond * flopsPerToken) / 1e9 / t.peakGflops : null;
      rows.push(
        row(
          'MFU (each vs its own peak)',
          'fraction',
          oursMfu,
          torchMfu,
          'pytorch-cpu',
          `not comparable: webomni ${mfuNote}; PyTorch vs ${t?.peakGflops ? `its own best CPU sgemm ${t.peakGflops.toFixed(1)} GFLOP/s (${t.peakNote ?? 'OpenBLAS'})` : 'n/a'}`,
        ),
      );
    }
    rows.push(row('model GFLOP/s achieved', 'GFLOP/s', ours.flopsPerSecond / 1e9, tfjs && !('error' in tfjs.out) ? (tfjs.out.tokensPerSecond * flopsPerToken) / 1e9 : null, 'tfjs-webgpu', 'model FLOPs (formula above) / wall time'));
    rows.push(row('peak GFLOP/s (WGSL FMA, measured)', 'GFLOP/s', peak.gflops, null, '—', peak.variant));
    rows.push(row('model FLOPs per token', 'MFLOP/token', flopsPerToken / 1e6, null, '—', `6·N = ${((6 * fm.matmulParams) / 1e6).toFixed(2)} + attention ${(attnPerToken / 1e6).toFixed(3)}`));
    rows.push(row('webomni ms/step', 'ms', ours.msPerStep, null, '—', `${ours.recordMsPerStep.toFixed(0)} ms JS recording, ${ours.dispatchesPerStep.toFixed(0)} dispatches`));

    writeReport({
      name: 'train-lm',
      adapter,
      rows,
      notes,
      config: a.config,
      formula: 'model FLOPs/step = 6·N·T + 3·layers·4·Σ_seq(L²/2)·dim; MFU = model FLOP/s / measured peak',
      peakGflops: peak.gflops,
      peakVariants: peak.all,
      flopsPerToken,
      matmulParams: fm.matmulParams,
      totalParams: fm.totalParams,
      webomni: { tokensPerSecond: ours.tokensPerSecond, msPerStep: ours.msPerStep, recordMsPerStep: ours.recordMsPerStep, dispatchesPerStep: ours.dispatchesPerStep, mfu: oursMfu, losses: ours.losses, profile: ours.profile },
      peers: peerRuns.map((p) => ({ name: p.name, ...p.out })),
    });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
