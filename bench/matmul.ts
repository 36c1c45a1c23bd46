// Matmul GFLOP/s: webomni vs tfjs-backend-webgpu (same adapter, own process and Dawn copy)
// and gpu.js (fastest mode that works here). Usage:
//   npm run bench -- matmul [--tune] [--no-peers] [--peers=tfjs,gpujs] [--only=name,...]
//                          [--min-ms=1500] [--gpujs-max-gflop=2.2]
// --tune measures the kernel variants for each shape first (choices are cached per adapter in
// ~/.cache/webomni/matmul-tuning.json and used by later runs); without it the cached or
// heuristic choice runs. GPU time = wall time around device.sync() (a non-spinning wait) over
// a batch of dispatches in one submit, best of several repetitions after a warm-up.
import { spawnSync } from 'node:child_process';
import { loadavg, cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initDevice, Tensor, matmul, transpose, type Device } from '../src/node.ts';
import { chooseMatmulKernel } from '../src/ops/matmul-select.ts';
import { loadMatmulTuning, tuneMatmul, fmtKernel, syntheticProblem } from '../src/ops/matmul-tuner.ts';
import { row, writeReport, type BenchRow } from './report.ts';

export interface MatmulCase {
  name: string;
  m: number;
  n: number;
  k: number;
  batch?: number;
  transA?: boolean;
  transB?: boolean;
}

export const CASES: MatmulCase[] = [
  { name: '2048³', m: 2048, n: 2048, k: 2048 },
  { name: '4096×1024×1024', m: 4096, n: 1024, k: 1024 },
  { name: '1024³', m: 1024, n: 1024, k: 1024 },
  { name: 'batched 16×256×64×256', batch: 16, m: 256, k: 64, n: 256 },
  { name: 'attn PV 16×256×256×64', batch: 16, m: 256, k: 256, n: 64 },
  { name: 'qkv proj 2048×1536×512', m: 2048, n: 1536, k: 512 },
  { name: 'mlp down 2048×512×2048', m: 2048, n: 512, k: 2048 },
  { name: 'dX = dY·Wᵀ 2048×512×1536', m: 2048, n: 512, k: 1536, transB: true },
  { name: 'dW = Xᵀ·dY 512×1536×2048', m: 512, n: 1536, k: 2048, transA: true },
  { name: 'skinny dW 64×64×8192 (Aᵀ)', m: 64, n: 64, k: 8192, transA: true },
];

const here = dirname(fileURLToPath(import.meta.url));

function flag(args: string[], name: string): string | undefined {
  const a = args.find((x) => x === `--${name}` || x.startsWith(`--${name}=`));
  if (a === undefined) return undefined;
  return a.includes('=') ? a.slice(a.indexOf('=') + 1) : '';
}

async function measureOurs(device: Device, c: MatmulCase, minMs: number): Promise<{ ms: number; kernel: string }> {
  const batch = c.batch ?? 1;
  const lead = batch > 1 ? [batch] : [];
  const rand = (n: number) => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
  const aStore = Tensor.fromArray(rand(batch * c.m * c.k), c.transA ? [...lead, c.k, c.m] : [...lead, c.m, c.k]);
  const bStore = Tensor.fromArray(rand(batch * c.k * c.n), c.transB ? [...lead, c.n, c.k] : [...lead, c.k, c.n]);
  const a = c.transA ? transpose(aStore) : aStore;
  const b = c.transB ? transpose(bStore) : bStore;
  const kernel = fmtKernel(chooseMatmulKernel(device, syntheticProblem(c).problem));
  const flops = 2 * batch * c.m * c.n * c.k;
  let out = matmul(a, b);
  await device.sync();
  out.release();
  const inner = Math.max(1, Math.min(32, Math.ceil(2e8 / flops)));
  let best = Infinity;
  const t0 = performance.now();
  for (let r = 0; r < 10 && (r < 3 || performance.now() - t0 < minMs); r++) {
    const t1 = performance.now();
    const outs: Tensor[] = [];
    for (let i = 0; i < inner; i++) outs.push((out = matmul(a, b)));
    await device.sync();
    best = Math.min(best, (performance.now() - t1) / inner);
    outs.forEach((t) => t.release());
  }
  for (const t of new Set([a, b, aStore, bStore])) t.release();
  return { ms: best, kernel };
}

interface PeerOut {
  peer: string;
  mode?: string;
  reason?: string;
  glError?: string;
  results: Array<{ case: string; ms: number | null; gflops: number | null; skipped?: string }>;
}

function runPeer(cmd: string[], payload: unknown): PeerOut | { error: string } {
  const r = spawnSync(process.execPath, [...cmd, JSON.stringify(payload)], {
    cwd: join(here, '..'),
    encoding: 'utf8',
    maxBuffer: 16 << 20,
    timeout: 20 * 60_000,
  });
  const line = (r.stdout ?? '').trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (r.status !== 0 || !line) return { error: `exit ${r.status ?? r.signal}: ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}` };
  return JSON.parse(line) as PeerOut;
}

export async function run(args: string[]): Promise<void> {
  const only = flag(args, 'only')?.split(',');
  const cases = only ? CASES.filter((c) => only.some((o) => c.name.includes(o))) : CASES;
  const minMs = Number(flag(args, 'min-ms') ?? 1500);
  const peers = flag(args, 'no-peers') !== undefined ? [] : (flag(args, 'peers') ?? 'tfjs,gpujs').split(',');
  const notes: string[] = [];
  const startLoad = loadavg()[0].toFixed(1);

  const device = await initDevice();
  const adapter = `${device.adapter.description || device.adapter.device} (${device.adapter.vendor}, ${device.adapter.architecture})`;
  console.log(`adapter: ${adapter}`);
  if (flag(args, 'tune') !== undefined) {
    console.log('tuning…');
    await tuneMatmul(device, cases, { log: (l) => console.log(l) });
  } else {
    const n = await loadMatmulTuning(device);
    notes.push(n ? `using ${n} tuned choices from the tuning cache` : 'no tuning cache: heuristic kernel choice (run with --tune)');
  }
  const ours = new Map<string, { gflops: number; kernel: string }>();
  for (const c of cases) {
    const { ms, kernel } = await measureOurs(device, c, minMs);
    const gflops = (2 * (c.batch ?? 1) * c.m * c.n * c.k) / ms / 1e6;
    ours.set(c.name, { gflops, kernel });
    console.log(`webomni ${c.name.padEnd(28)} ${ms.toFixed(2).padStart(9)} ms ${gflops.toFixed(2).padStart(7)} GFLOP/s  [${kernel}]`);
  }
  device.destroy();

  const peerResults: Array<{ name: string; out: PeerOut | { error: string } }> = [];
  if (peers.includes('tfjs')) {
    console.log('running tfjs-backend-webgpu…');
    const out = runPeer(['--import', 'tsx', join(here, 'peers', 'tfjs-matmul.ts')], { shapes: cases, minMs });
    peerResults.push({ name: 'tfjs-webgpu', out });
    notes.push('tfjs-backend-webgpu 4.22 runs in its own process and Dawn instance; its waits use the same non-spinning wait as webomni');
  }
  if (peers.includes('gpujs')) {
    console.log('running gpu.js…');
    const out = runPeer([join(here, 'peers', 'gpujs-matmul.cjs')], { shapes: cases, maxGflop: Number(flag(args, 'gpujs-max-gflop') ?? 2.2) });
    peerResults.push({ name: 'gpu.js', out });
    if ('mode' in out) {
      notes.push(
        out.mode === 'cpu'
          ? `gpu.js: GPU mode unavailable in Node (${out.reason || 'headlessgl mode not supported'}; ${out.glError}); numbers are its CPU mode (plain JavaScript on the CPU), its only working mode here`
          : `gpu.js ran in ${out.mode} mode`,
      );
    }
  }
  const rows: BenchRow[] = [];
  for (const c of cases) {
    const o = ours.get(c.name)!;
    if (!peerResults.length) rows.push(row(c.name, 'GFLOP/s', o.gflops, null, '—', o.kernel));
    for (const p of peerResults) {
      if ('error' in p.out) {
        rows.push(row(c.name, 'GFLOP/s', o.gflops, null, p.name, `${o.kernel}; peer failed: ${p.out.error}`));
        continue;
      }
      const r = p.out.results.find((x) => x.case === c.name);
      rows.push(row(c.name, 'GFLOP/s', o.gflops, r?.gflops ?? null, p.out.peer, r?.skipped ? `${o.kernel}; peer skipped: ${r.skipped}` : o.kernel));
    }
  }
  for (const p of peerResults) if ('error' in p.out) notes.push(`${p.name} failed: ${p.out.error}`);
  // Lavapipe runs on the host CPU: other processes' load changes the numbers directly.
  notes.push(`host load average ${loadavg().map((x) => x.toFixed(1)).join(' / ')} (1/5/15 min) on ${cpus().length} cores at the end of the run (start: ${startLoad})`);
  writeReport({ name: 'matmul', adapter, rows, notes });
}
