// MoE layer and MoE LM throughput. Usage:
//   npm run bench -- moe [--cases=lm,wide] [--reps 3] [--lm-steps 4] [--no-lm] [--no-peers] [--profile]
//
// Layer rows: forward + backward (input, router and every expert weight, aux and z losses
// included) of one MoE SwiGLU layer, in ms, best of --reps after a warm-up:
//   - webomni: grouped GEMM (one launch per projection, no host sync), GPU routing;
//   - "naive webomni": the same router and GPU dispatch plan, then the per-expert token
//     counts read back to the host (a sync) and E separate dense matmuls per projection
//     over split views of the permuted rows, concatenated, then the same combine;
//   - PyTorch CPU (bench/peers/moe_torch_bench.py): a Hugging Face-style MoE block (router,
//     softmax, topk, loop over experts with index_add_) on the same machine.
// LM rows: training tokens/s (forward, backward, clip, AdamW, loss read every step) of
// configs/lm-brown-moe-tiny.yaml vs configs/lm-brown-tiny.yaml (dense, equal active
// parameters) on real Brown batches.
import { spawnSync } from 'node:child_process';
import { cpus, loadavg, tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initDevice, Tensor, type Device } from '../src/node.ts';
import { scope, keep } from '../src/tensor/scope.ts';
import { backward, noGrad } from '../src/autograd/index.ts';
import { add, concat, div, matmul, mulScalar, narrow, softmax, split, sum, swiglu, transpose, logSoftmax, mean, mul, reshape, square, sub } from '../src/ops/index.ts';
import { scaleK } from '../src/ops/reduce.ts';
import { moeCombine, moePermute, moePlan, moeTopK, readMoePlan, topkGather } from '../src/ops/moe.ts';
import { moeLayer } from '../src/nn/moe.ts';
import { clipGradNorm } from '../src/optim/clip.ts';
import { loadRunConfig } from '../src/cli/commands/train.ts';
import { buildLmRun } from '../src/train/lm.ts';
import { formatProfile } from '../src/device/profiler.ts';
import { row, writeReport, type BenchRow } from './report.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');

interface LayerCase {
  name: string;
  T: number;
  D: number;
  E: number;
  k: number;
  F: number;
}

const CASES: LayerCase[] = [
  // The MoE LM's layer: one 2048-token batch.
  { name: 'lm', T: 2048, D: 128, E: 8, k: 2, F: 176 },
  { name: 'wide', T: 2048, D: 256, E: 16, k: 4, F: 128 },
];

function flag(args: string[], name: string): string | undefined {
  const i = args.findIndex((x) => x === `--${name}` || x.startsWith(`--${name}=`));
  if (i < 0) return undefined;
  const a = args[i];
  if (a.includes('=')) return a.slice(a.indexOf('=') + 1);
  return args[i + 1] && !args[i + 1].startsWith('--') ? args[i + 1] : '';
}

function rand(n: number, scale: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}

interface Weights {
  x: Tensor;
  router: Tensor;
  gateUp: Tensor;
  down: Tensor;
  g: Tensor;
}

function makeWeights(c: LayerCase): Weights {
  const mk = (shape: number[], scale: number, seed: number, grad: boolean) => {
    const t = keep(Tensor.fromArray(rand(shape.reduce((a, b) => a * b, 1), scale, seed), shape));
    t.requiresGrad = grad;
    return t;
  };
  return {
    x: mk([c.T, c.D], 1, 1, true),
    router: mk([c.E, c.D], 1 / Math.sqrt(c.D), 2, true),
    gateUp: mk([c.E, 2 * c.F, c.D], 1 / Math.sqrt(c.D), 3, true),
    down: mk([c.E, c.D, c.F], 1 / Math.sqrt(c.F), 4, true),
    g: mk([c.T, c.D], 1, 5, false),
  };
}

function clearGrads(w: Weights): void {
  for (const t of [w.x, w.router, w.gateUp, w.down]) {
    t.grad?.release();
    t.grad = null;
  }
}

/** L = Σ g·y + 0.01·aux + 0.001·z. */
function lossOf(y: Tensor, g: Tensor, aux: Tensor, z: Tensor): Tensor {
  return add(add(sum(mul(y, g)), mulScalar(aux, 0.01)), mulScalar(z, 0.001));
}

async function stepGrouped(w: Weights, c: LayerCase): Promise<void> {
  scope(() => {
    const o = moeLayer(w.x, w.router, w.gateUp, w.down, { topK: c.k });
    backward(lossOf(o.y, w.g, o.auxLoss, o.zLoss));
  });
}

/** Same routing and plan, then E separate dense matmuls per projection over host-known segments. */
async function stepNaive(device: Device, w: Weights, c: LayerCase): Promise<void> {
  const { T, E, k, F } = c;
  const pre = scope(() => {
    const logits = matmul(w.x, transpose(w.router));
    const scores = softmax(logits);
    const idx = moeTopK(scores, k);
    let weights = topkGather(scores, idx);
    weights = div(weights, sum(weights, 1, true));
    const plan = moePlan(idx, E);
    return { logits, scores, weights, plan, ...plan };
  });
  const { tokensPerExpert } = await readMoePlan(pre.plan); // the host sync the grouped GEMM avoids
  scope(() => {
    const xp = moePermute(w.x, pre.plan);
    const parts = split(xp, tokensPerExpert, 0);
    const outs: Tensor[] = [];
    for (let e = 0; e < E; e++) {
      if (tokensPerExpert[e] === 0) continue;
      const w1 = reshape(narrow(w.gateUp, 0, e, 1), [2 * F, c.D]);
      const w2 = reshape(narrow(w.down, 0, e, 1), [c.D, F]);
      const h = matmul(parts[e], transpose(w1));
      outs.push(matmul(swiglu(narrow(h, 1, 0, F), narrow(h, 1, F, F)), transpose(w2)));
    }
    const yp = concat(outs, 0);
    const y = moeCombine(yp, pre.weights, pre.plan);
    const frac = scaleK(pre.plan.tokensPerExpert, 1 / (T * k));
    const aux = mulScalar(sum(mul(mean(pre.scores, 0), frac)), E);
    const lse = sub(narrow(pre.logits, 1, 0, 1), narrow(logSoftmax(pre.logits), 1, 0, 1));
    const z = mean(square(reshape(lse, [T])));
    backward(lossOf(y, w.g, aux, z));
  });
  for (const t of [pre.logits, pre.scores, pre.weights, pre.order, pre.expertOfRow, pre.inv, pre.rowToken, pre.offsets, pre.tokensPerExpert, pre.tiles]) t.release();
  void device;
}

async function timeIt(device: Device, reps: number, fn: () => Promise<void>, reset: () => void): Promise<number> {
  await fn();
  await device.sync();
  reset();
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await fn();
    await device.sync();
    best = Math.min(best, performance.now() - t0);
    reset();
  }
  return best;
}

function torchPeer(cases: LayerCase[], reps: number): Map<string, number> | string {
  const r = spawnSync('/usr/bin/python3', [join(here, 'peers', 'moe_torch_bench.py'), JSON.stringify({ cases, reps })], {
    encoding: 'utf8',
    timeout: 20 * 60_000,
  });
  const line = (r.stdout ?? '').trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (r.status !== 0 || !line) return `exit ${r.status ?? r.signal}: ${(r.stderr ?? '').trim().split('\n').slice(-2).join(' | ')}`;
  const out = JSON.parse(line) as { results: Array<{ case: string; ms: number }>; threads: number };
  return new Map(out.results.map((x) => [x.case, x.ms]));
}

async function lmTokensPerSecond(device: Device, config: string, steps: number): Promise<{ tps: number; params: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'webomni-bench-moe-'));
  try {
    const cfg = loadRunConfig(config, [
      ['runsDir', dir],
      ['data.cacheDir', join(root, 'runs', 'cache')],
      ['train.evalEvery', '0'],
      ['train.checkpointEvery', '0'],
    ]);
    const run = buildLmRun(device, cfg, () => {});
    const { trainer, model } = run;
    const step = async (): Promise<number> => {
      const b = trainer.train.next();
      const loss = scope(() => {
        const l = model.lossOn(b, Math.max(1, b.lossTokens));
        backward(l);
        clipGradNorm(trainer.optimizer.params, 1, { optimizer: trainer.optimizer });
        trainer.optimizer.step();
        trainer.optimizer.zeroGrad();
        return l;
      });
      await loss.item();
      loss.release();
      return b.tokens;
    };
    for (let i = 0; i < 2; i++) await step();
    await model.stepMetrics();
    const t0 = performance.now();
    let tokens = 0;
    for (let i = 0; i < steps; i++) tokens += await step();
    const tps = (tokens * 1000) / (performance.now() - t0);
    const params = model.numParameters();
    trainer.dispose();
    model.dispose();
    return { tps, params };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(args: string[]): Promise<void> {
  const only = flag(args, 'cases')?.split(',');
  const cases = only ? CASES.filter((c) => only.includes(c.name)) : CASES;
  const reps = Number(flag(args, 'reps') ?? 3);
  const lmSteps = Number(flag(args, 'lm-steps') ?? 4);
  const notes: string[] = [];
  const startLoad = loadavg()[0].toFixed(1);
  const device = await initDevice();
  const adapter = `${device.adapter.description || device.adapter.device} (${device.adapter.vendor}, ${device.adapter.architecture})`;
  console.log(`adapter: ${adapter}`);
  const rows: BenchRow[] = [];
  const ours = new Map<string, { grouped: number; naive: number }>();
  for (const c of cases) {
    const w = makeWeights(c);
    const reset = () => clearGrads(w);
    const grouped = await timeIt(device, reps, () => stepGrouped(w, c), reset);
    const naive = await timeIt(device, reps, () => stepNaive(device, w, c), reset);
    if (flag(args, 'profile') !== undefined) {
      device.startProfiling();
      await stepGrouped(w, c);
      console.log(formatProfile(await device.stopProfiling()));
      reset();
    }
    ours.set(c.name, { grouped, naive });
    console.log(`${c.name}: grouped ${grouped.toFixed(1)} ms, naive ${naive.toFixed(1)} ms`);
    for (const t of Object.values(w)) t.release();
  }
  const peer = flag(args, 'no-peers') !== undefined ? 'skipped (--no-peers)' : torchPeer(cases, reps);
  for (const c of cases) {
    const o = ours.get(c.name)!;
    const label = `MoE layer fwd+bwd T=${c.T} D=${c.D} E=${c.E} k=${c.k} F=${c.F}`;
    rows.push(row(label, 'ms', o.grouped, o.naive, 'webomni naive (E dense matmuls + host sync)', 'grouped GEMM'));
    rows.push(row(label, 'ms', o.grouped, typeof peer === 'string' ? null : (peer.get(c.name) ?? null), 'PyTorch CPU (HF-style loop)', typeof peer === 'string' ? `peer: ${peer}` : 'grouped GEMM'));
  }
  if (flag(args, 'no-lm') === undefined) {
    const moe = await lmTokensPerSecond(device, join(root, 'configs', 'lm-brown-moe-tiny.yaml'), lmSteps);
    const dense = await lmTokensPerSecond(device, join(root, 'configs', 'lm-brown-tiny.yaml'), lmSteps);
    console.log(`LM: moe ${moe.tps.toFixed(0)} tokens/s (${moe.params} params), dense ${dense.tps.toFixed(0)} tokens/s (${dense.params} params)`);
    rows.push(
      row(
        'MoE LM training (lm-brown-moe-tiny: 8 experts top-2 + 1 shared)',
        'tokens/s',
        moe.tps,
        dense.tps,
        'webomni dense LM, equal active params (lm-brown-tiny)',
        `${(moe.params / 1e6).toFixed(2)}M vs ${(dense.params / 1e6).toFixed(2)}M total params; ${lmSteps} steps of 2048 tokens after 2 warm-up steps`,
      ),
    );
  }
  device.destroy();
  notes.push('layer rows: forward + backward of L = Σ g·y + 0.01·aux + 0.001·z, gradients for x, router and every expert weight; best of reps after a warm-up');
  notes.push(`host load average ${loadavg().map((x) => x.toFixed(1)).join(' / ')} (1/5/15 min) on ${cpus().length} cores at the end (start: ${startLoad}); lavapipe runs on the same cores, so other load changes the numbers`);
  writeReport({ name: 'moe', adapter, rows, notes });
  void noGrad;
}
