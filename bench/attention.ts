// Causal attention forward+backward time: webomni flash attention vs webomni's naive path
// (matmul + softmax + matmul with autograd and a -1e9 causal mask) and vs the same naive
// computation in tfjs-backend-webgpu (own process, same adapter). Usage:
//   npm run bench -- attention [--lens=128,256,512,1024,2048] [--heads=8] [--dim=64]
//                              [--no-peers] [--reps=3] [--kernel=wg|sg]
// --kernel forces a flash-attention schedule (default: the adapter's choice).
// Time = wall time from recording the forward to device.sync() after the backward, best of
// --reps after a warm-up (which compiles the kernels). Also prints the process CPU time,
// which is less sensitive to other load on a shared machine.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as W from '../src/node.ts';
import { row, writeReport, type BenchRow } from './report.ts';

const here = dirname(fileURLToPath(import.meta.url));

function flag(args: string[], name: string): string | undefined {
  const a = args.find((x) => x === `--${name}` || x.startsWith(`--${name}=`));
  if (a === undefined) return undefined;
  return a.includes('=') ? a.slice(a.indexOf('=') + 1) : '';
}

type Impl = 'flash' | 'naive';

/** One causal attention forward + backward; returns nothing (grads land on q, k, v). */
function step(impl: Impl, q: W.Tensor, k: W.Tensor, v: W.Tensor, g: W.Tensor, mask: W.Tensor): void {
  const [t, h, d] = q.shape;
  W.scope(() => {
    let o: W.Tensor;
    if (impl === 'flash') {
      o = W.flashAttention(q, k, v, { causal: true });
    } else {
      const qh = W.permute(q, [1, 0, 2]); // [H, T, D]
      const kh = W.permute(k, [1, 2, 0]); // [H, D, T]
      const vh = W.permute(v, [1, 0, 2]);
      const s = W.add(W.mulScalar(W.matmul(qh, kh), 1 / Math.sqrt(d)), mask);
      const p = W.softmax(s);
      o = W.permute(W.matmul(p, vh), [1, 0, 2]);
    }
    void t;
    void h;
    W.backward(o, g);
  });
}

async function measure(dev: W.Device, impl: Impl, t: number, h: number, d: number, reps: number): Promise<{ ms: number; cpuMs: number }> {
  const q = W.randn([t, h, d]);
  const k = W.randn([t, h, d]);
  const v = W.randn([t, h, d]);
  const g = W.randn([t, h, d]);
  for (const x of [q, k, v]) x.requiresGrad = true;
  const maskData = new Float32Array(t * t);
  for (let i = 0; i < t; i++) for (let j = i + 1; j < t; j++) maskData[i * t + j] = -1e9;
  const mask = impl === 'naive' ? W.Tensor.fromArray(maskData, [t, t]) : W.zeros([1]);
  const clear = () => {
    for (const x of [q, k, v]) {
      x.grad?.release();
      x.grad = null;
    }
  };
  step(impl, q, k, v, g, mask); // warm-up: compiles
  await dev.sync();
  clear();
  let best = Infinity;
  let bestCpu = Infinity;
  for (let r = 0; r < reps; r++) {
    await dev.sync();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    step(impl, q, k, v, g, mask);
    await dev.sync();
    best = Math.min(best, performance.now() - t0);
    const cu = process.cpuUsage(c0);
    bestCpu = Math.min(bestCpu, (cu.user + cu.system) / 1000);
    clear();
  }
  for (const x of [q, k, v, g, mask]) x.release();
  return { ms: best, cpuMs: bestCpu };
}

export async function run(args: string[]): Promise<void> {
  const lens = (flag(args, 'lens') ?? '128,256,512,1024,2048').split(',').map(Number);
  const heads = Number(flag(args, 'heads') ?? 8);
  const dim = Number(flag(args, 'dim') ?? 64);
  const reps = Number(flag(args, 'reps') ?? 3);
  const peers = flag(args, 'no-peers') === undefined;
  const kernel = flag(args, 'kernel');
  if (kernel !== undefined && kernel !== 'wg' && kernel !== 'sg') throw new Error(`--kernel must be wg or sg, got '${kernel}'`);
  const dev = await W.initDevice();
  if (kernel) W.setFlashAttentionKernel(kernel);
  const adapter = `${dev.adapter.vendor} ${dev.adapter.description || dev.adapter.architecture}`.trim();
  const rows: BenchRow[] = [];
  const notes: string[] = [
    `causal, single sequence, ${heads} heads × ${dim} dims; fwd+bwd wall ms (best of ${reps}); cpu = process CPU ms; ` +
      `flash schedule: ${W.flashAttentionKernel(dev)}${kernel ? ' (forced)' : ''}`,
  ];
  const ours: Record<number, { ms: number; cpuMs: number }> = {};
  for (const t of lens) {
    const f = await measure(dev, 'flash', t, heads, dim, reps);
    ours[t] = f;
    const n = await measure(dev, 'naive', t, heads, dim, reps);
    console.log(`T=${t}: flash ${f.ms.toFixed(1)} ms (cpu ${f.cpuMs.toFixed(0)}), naive ${n.ms.toFixed(1)} ms (cpu ${n.cpuMs.toFixed(0)})`);
    rows.push(row(`fwd+bwd T=${t}`, 'ms', f.ms, n.ms, 'webomni naive (matmul+softmax+matmul)', `cpu ms: flash ${f.cpuMs.toFixed(0)}, naive ${n.cpuMs.toFixed(0)}`));
  }
  dev.destroy();
  if (peers) {
    const res = spawnSync(process.execPath, ['--import', 'tsx', join(here, 'peers', 'tfjs-attention.ts'), JSON.stringify({ lens, heads, dim, reps })], {
      encoding: 'utf8',
      timeout: 30 * 60_000,
      env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
    });
    const line = (res.stdout ?? '').trim().split('\n').pop() ?? '';
    try {
      const peer = JSON.parse(line) as Array<{ t: number; ms: number }>;
      for (const p of peer) rows.push(row(`fwd+bwd T=${p.t}`, 'ms', ours[p.t]?.ms ?? null, p.ms, 'tfjs-webgpu naive'));
    } catch {
      notes.push(`tfjs peer failed: ${(res.stderr ?? '').slice(-400)}`);
    }
  }
  writeReport({ name: 'attention', adapter, rows, notes });
}
