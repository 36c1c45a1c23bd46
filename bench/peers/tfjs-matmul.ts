// Peer process: tfjs-backend-webgpu matmul GFLOP/s on this machine's WebGPU adapter (its own
// Dawn instance). argv[2] = JSON {shapes: MatmulCase[], minMs}. Prints one JSON line.
// Waits use webomni's non-spinning gpuAwait (Dawn's Node binding otherwise spins a core,
// which on lavapipe slows the kernels themselves), so the comparison is like for like.
import { gpuAwait } from '../../src/device/wait.ts';
import type { MatmulCase } from '../matmul.ts';

const { shapes, minMs } = JSON.parse(process.argv[2]) as { shapes: MatmulCase[]; minMs: number };
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
const device = backend.device;

async function sync(): Promise<void> {
  backend.endComputePassEncoder();
  backend.submitQueue();
  await gpuAwait(device.queue.onSubmittedWorkDone());
}

const out: Array<{ case: string; ms: number; gflops: number }> = [];
for (const s of shapes) {
  const batch = s.batch ?? 1;
  const aShape = s.transA ? [batch, s.k, s.m] : [batch, s.m, s.k];
  const bShape = s.transB ? [batch, s.n, s.k] : [batch, s.k, s.n];
  const a = tf.randomUniform(aShape, -1, 1, 'float32');
  const b = tf.randomUniform(bShape, -1, 1, 'float32');
  const once = () => tf.matMul(a, b, !!s.transA, !!s.transB);
  const flops = 2 * batch * s.m * s.n * s.k;
  // warm-up (compiles the program)
  let c = once();
  await c.data();
  c.dispose();
  const inner = Math.max(1, Math.min(32, Math.ceil(2e8 / flops)));
  let best = Infinity;
  const t0 = performance.now();
  for (let r = 0; r < 10 && (r < 3 || performance.now() - t0 < minMs); r++) {
    const t1 = performance.now();
    const cs = [];
    for (let i = 0; i < inner; i++) cs.push(once());
    await sync();
    best = Math.min(best, (performance.now() - t1) / inner);
    cs.forEach((x) => x.dispose());
  }
  out.push({ case: s.name, ms: best, gflops: flops / best / 1e6 });
  a.dispose();
  b.dispose();
}
console.log(JSON.stringify({ peer: 'tfjs-webgpu 4.22', results: out }));
device.destroy();
process.exit(0);
