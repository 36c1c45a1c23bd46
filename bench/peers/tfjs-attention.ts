// Peer process for bench/attention.ts: naive causal attention forward+backward in
// tfjs-backend-webgpu on this machine's adapter (its own Dawn instance). argv[2] = JSON
// {lens, heads, dim, reps}. Prints one JSON line [{t, ms}]. Non-spinning waits as in
// tfjs-matmul.ts so the comparison is like for like.
import { gpuAwait } from '../../src/device/wait.ts';

const { lens, heads, dim, reps } = JSON.parse(process.argv[2]) as { lens: number[]; heads: number; dim: number; reps: number };
if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = '/tmp';
const dawn = (await import('webgpu')) as unknown as { create(f: string[]): GPU; globals: Record<string, unknown> };
for (const [k, v] of Object.entries(dawn.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
const gpu = dawn.create([]);
Object.defineProperty(globalThis, 'navigator', { value: { gpu, userAgent: 'node' }, configurable: true });
const tf = await import('@tensorflow/tfjs-core');
await import('@tensorflow/tfjs-backend-webgpu');
await tf.setBackend('webgpu');
await tf.ready();
type WebGPUBackendLike = { device: GPUDevice; endComputePassEncoder(): void; submitQueue(): void };
const backend = tf.backend() as unknown as WebGPUBackendLike;

async function sync(): Promise<void> {
  // tfjs may already have submitted everything (no open encoder then).
  try {
    backend.endComputePassEncoder();
    backend.submitQueue();
  } catch {
    /* nothing pending */
  }
  await gpuAwait(backend.device.queue.onSubmittedWorkDone());
}

const out: Array<{ t: number; ms: number }> = [];
for (const t of lens) {
  const q = tf.randomNormal([heads, t, dim]);
  const k = tf.randomNormal([heads, t, dim]);
  const v = tf.randomNormal([heads, t, dim]);
  const g = tf.randomNormal([heads, t, dim]);
  const mask = tf.tidy(() => tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([t, t]), -1, 0)), -1e9));
  // Forward and the hand-written backward (tfjs-core's ESM build cannot load its gradient
  // registry in Node): the same five matmuls and softmax backward autograd would run.
  const sc = 1 / Math.sqrt(dim);
  const once = () =>
    tf.tidy(() => {
      const p = tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), sc), mask));
      const o = tf.matMul(p, v);
      const dp = tf.matMul(g, v, false, true);
      const dv = tf.matMul(p, g, true, false);
      const ds = tf.mul(p, tf.sub(dp, tf.sum(tf.mul(dp, p), -1, true)));
      const dq = tf.mul(tf.matMul(ds, k), sc);
      const dk = tf.mul(tf.matMul(ds, q, true, false), sc);
      return [o, dq, dk, dv];
    });
  let gs = once();
  await gs[0].data();
  gs.forEach((x) => x.dispose());
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    gs = once();
    await sync();
    best = Math.min(best, performance.now() - t0);
    gs.forEach((x) => x.dispose());
  }
  out.push({ t, ms: best });
  for (const x of [q, k, v, g, mask]) x.dispose();
}
console.log(JSON.stringify(out));
