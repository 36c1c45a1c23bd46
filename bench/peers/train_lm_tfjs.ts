// Peer process of `npm run bench -- train-lm`: the same decoder LM trained with
// tfjs-backend-webgpu on this machine's WebGPU adapter (its own Dawn instance).
// argv[2] = path of the JSON spec written by bench/train-lm.ts (sizes, AdamW settings, the
// exact packed Brown batches webomni trained on). Prints one JSON line.
//
// Model in tfjs ops: embedding gather, RMSNorm, q/k/v projections, RoPE (rotate-half),
// GQA by tiling k/v heads, causal attention over packed sequences done as matmul + masked
// softmax over chunks (consecutive sequences grouped into chunks of ≤ maxSeqLen tokens,
// padded, with an additive causal + same-sequence mask; tfjs has no flash/varlen
// attention), SwiGLU MLP, untied lm_head, sparse softmax cross-entropy (log-softmax picked
// by a one-hot), gradients by tf.variableGrads, global-norm clipping and AdamW by hand
// (tf.train.adam has no decoupled weight decay). One optimizer step per batch; the loss is
// read back every step.
//
// Waiting: tfjs' own `await data()` leaves a WebGPU promise pending, during which Dawn's
// Node binding spins the main thread (on lavapipe that steals a core from the kernels). So
// each step is submitted and waited for with webomni's non-spinning gpuAwait on
// onSubmittedWorkDone() first; the loss' data() then only copies 4 bytes back.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gpuAwait } from '../../src/device/wait.ts';
import type { PeerSpec } from '../train-lm.ts';

/**
 * tfjs-core's Node build registers no gradient functions (the @tensorflow/tfjs umbrella,
 * not installed here, bundles them), and its ESM dist cannot be imported by Node directly
 * (directory imports). So bundle core + all gradients + the WebGPU backend from their ESM
 * sources into one module with esbuild (a dev dependency): a single copy of tfjs.
 */
async function loadTfjs(): Promise<typeof import('@tensorflow/tfjs-core')> {
  const esbuild = await import('esbuild');
  const dir = mkdtempSync(join(tmpdir(), 'webomni-tfjs-'));
  const outfile = join(dir, 'tfjs.mjs');
  try {
    await esbuild.build({
      stdin: {
        contents:
          "export * from '@tensorflow/tfjs-core';\n" +
          "import '@tensorflow/tfjs-core/dist/register_all_gradients';\n" +
          "import '@tensorflow/tfjs-backend-webgpu';\n",
        resolveDir: join(dirname(fileURLToPath(import.meta.url)), '..', '..'),
        loader: 'js',
      },
      bundle: true,
      format: 'esm',
      platform: 'node',
      mainFields: ['module', 'main'],
      outfile,
      logLevel: 'error',
      banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    });
    return (await import(pathToFileURL(outfile).href)) as typeof import('@tensorflow/tfjs-core');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const spec = JSON.parse(readFileSync(process.argv[2], 'utf8')) as PeerSpec;
if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = '/tmp';
const dawn = (await import('webgpu')) as unknown as { create(f: string[]): GPU; globals: Record<string, unknown> };
for (const [k, v] of Object.entries(dawn.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
const gpu = dawn.create([]);
Object.defineProperty(globalThis, 'navigator', { value: { gpu, userAgent: 'node' }, configurable: true });
const tf = await loadTfjs();
await tf.setBackend('webgpu');
await tf.ready();
type WebGPUBackendLike = { device: GPUDevice; ensureCommandEncoderReady(): void; endComputePassEncoder(): void; submitQueue(): void };
const backend = tf.backend() as unknown as WebGPUBackendLike;
const device = backend.device;
// A WebGPU validation error drops a whole command buffer: fail loudly instead of timing nothing.
const gpuErrors: string[] = [];
device.addEventListener('uncapturederror', (ev) => gpuErrors.push((ev as GPUUncapturedErrorEvent).error.message));

async function sync(): Promise<void> {
  backend.ensureCommandEncoderReady();
  backend.endComputePassEncoder();
  backend.submitQueue();
  await gpuAwait(device.queue.onSubmittedWorkDone());
}

type T = import('@tensorflow/tfjs-core').Tensor;
type Var = import('@tensorflow/tfjs-core').Variable;

const m = spec.model;
const C = m.maxSeqLen;
const hd = m.dim / m.heads;
const rep = m.heads / m.kvHeads;

// ---------------------------------------------------------------- parameters (weights [out, in])
const vars: Var[] = [];
const param = (name: string, shape: number[], ones = false): Var => {
  const v = tf.variable(ones ? tf.ones(shape) : tf.randomNormal(shape, 0, m.initStd, 'float32'), true, name);
  vars.push(v);
  return v;
};
const embed = param('embed_tokens.weight', [m.vocabSize, m.dim]);
const layers = Array.from({ length: m.layers }, (_, i) => {
  const p = `layers.${i}.`;
  return {
    attnNorm: param(p + 'attn_norm.weight', [m.dim], true),
    wq: param(p + 'attn.q_proj.weight', [m.heads * hd, m.dim]),
    wk: param(p + 'attn.k_proj.weight', [m.kvHeads * hd, m.dim]),
    wv: param(p + 'attn.v_proj.weight', [m.kvHeads * hd, m.dim]),
    wo: param(p + 'attn.o_proj.weight', [m.dim, m.heads * hd]),
    mlpNorm: param(p + 'mlp_norm.weight', [m.dim], true),
    wg: param(p + 'mlp.gate_proj.weight', [m.ffnDim, m.dim]),
    wu: param(p + 'mlp.up_proj.weight', [m.ffnDim, m.dim]),
    wd: param(p + 'mlp.down_proj.weight', [m.dim, m.ffnDim]),
  };
});
const finalNorm = param('norm.weight', [m.dim], true);
const lmHead = param('lm_head.weight', [m.vocabSize, m.dim]);

// ---------------------------------------------------------------- batches (host prep, like a loader)
interface Prepared {
  T: number;
  lr: number;
  n: number;
  ids: T;
  targets: T;
  weights: T;
  count: number;
  cos: T;
  sin: T;
  gather: T;
  slot: T;
  maskBias: T;
}

/** Chunks of ≤ C tokens made of whole consecutive sequences (greedy). */
function chunksOf(cu: number[]): Array<[number, number]> {
  const chunks: Array<[number, number]> = [];
  let s = 0;
  for (let i = 1; i < cu.length; i++) {
    if (cu[i] - s > C) {
      chunks.push([s, cu[i - 1]]);
      s = cu[i - 1];
    }
    if (cu[i] - s > C) throw new Error(`sequence of ${cu[i] - cu[i - 1]} tokens exceeds maxSeqLen ${C}`);
  }
  chunks.push([s, cu[cu.length - 1]]);
  return chunks;
}
// Static shapes (tfjs-webgpu compiles programs per shape): every batch gets as many chunks
// as the batch needing the most; extra chunks are all padding.
const nChunks = Math.max(...spec.batches.map((b) => chunksOf(b.cuSeqlens).length));

function prepare(b: PeerSpec['batches'][number], index: number): Prepared {
  const cu = b.cuSeqlens;
  const T = b.ids.length;
  const chunks = chunksOf(cu);
  while (chunks.length < nChunks) chunks.push([T, T]);
  const n = chunks.length;
  const doc = new Int32Array(T);
  for (let i = 0; i + 1 < cu.length; i++) doc.fill(i, cu[i], cu[i + 1]);
  const slot = new Int32Array(T);
  const gather = new Int32Array(n * C);
  const bias = new Float32Array(n * C * C).fill(-1e9);
  chunks.forEach(([a, e], j) => {
    for (let r = 0; r < C; r++) {
      const row = j * C * C + r * C;
      if (a + r < e) {
        slot[a + r] = j * C + r;
        gather[j * C + r] = a + r;
        for (let c = 0; c <= r; c++) if (doc[a + c] === doc[a + r]) bias[row + c] = 0;
      } else bias[row + r] = 0; // padding rows see themselves only (no NaN)
    }
  });
  // RoPE tables [T, 1, hd] (rotate-half convention).
  const cos = new Float32Array(T * hd);
  const sin = new Float32Array(T * hd);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < hd / 2; i++) {
      const ang = b.positions[t] * m.ropeTheta ** (-(2 * i) / hd);
      cos[t * hd + i] = cos[t * hd + i + hd / 2] = Math.cos(ang);
      sin[t * hd + i] = sin[t * hd + i + hd / 2] = Math.sin(ang);
    }
  }
  const tgt = Int32Array.from(b.targets, (x) => (x < 0 ? 0 : x));
  const w = Float32Array.from(b.targets, (x) => (x < 0 ? 0 : 1));
  return {
    T,
    lr: spec.lrs[index],
    n,
    ids: tf.tensor1d(Int32Array.from(b.ids), 'int32'),
    targets: tf.tensor1d(tgt, 'int32'),
    weights: tf.tensor1d(w),
    count: Math.max(1, w.reduce((x, y) => x + y, 0)),
    cos: tf.tensor3d(cos, [T, 1, hd]),
    sin: tf.tensor3d(sin, [T, 1, hd]),
    gather: tf.tensor1d(gather, 'int32'),
    slot: tf.tensor1d(slot, 'int32'),
    maskBias: tf.tensor4d(bias, [n, 1, C, C]),
  };
}

// ---------------------------------------------------------------- model
const rms = (x: T, w: T): T => tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), m.normEps))), w);
const linear = (x: T, w: T): T => tf.matMul(x, w, false, true);

function rope(x: T, b: Prepared): T {
  const x1 = tf.slice(x, [0, 0, 0], [-1, -1, hd / 2]);
  const x2 = tf.slice(x, [0, 0, hd / 2], [-1, -1, hd / 2]);
  return tf.add(tf.mul(x, b.cos), tf.mul(tf.concat([tf.neg(x2), x1], -1), b.sin));
}

function attention(q: T, k: T, v: T, b: Prepared): T {
  const { T, n } = b;
  const expand = (x: T) => tf.reshape(tf.tile(tf.reshape(x, [T, m.kvHeads, 1, hd]), [1, 1, rep, 1]), [T, m.heads, hd]);
  const chunked = (x: T) => tf.reshape(tf.transpose(tf.reshape(tf.gather(x, b.gather), [n, C, m.heads, hd]), [0, 2, 1, 3]), [n * m.heads, C, hd]);
  const qc = chunked(q);
  const kc = chunked(expand(k));
  const vc = chunked(expand(v));
  const s = tf.add(tf.reshape(tf.mul(tf.matMul(qc, kc, false, true), 1 / Math.sqrt(hd)), [n, m.heads, C, C]), b.maskBias);
  const p = tf.reshape(tf.softmax(s), [n * m.heads, C, C]);
  const o = tf.reshape(tf.transpose(tf.reshape(tf.matMul(p, vc), [n, m.heads, C, hd]), [0, 2, 1, 3]), [n * C, m.heads * hd]);
  return tf.gather(o, b.slot);
}

function loss(b: Prepared): import('@tensorflow/tfjs-core').Scalar {
  let h = tf.gather(embed, b.ids);
  for (const l of layers) {
    const x = rms(h, l.attnNorm);
    const q = rope(tf.reshape(linear(x, l.wq), [b.T, m.heads, hd]), b);
    const k = rope(tf.reshape(linear(x, l.wk), [b.T, m.kvHeads, hd]), b);
    const v = tf.reshape(linear(x, l.wv), [b.T, m.kvHeads, hd]);
    h = tf.add(h, linear(attention(q, k, v, b), l.wo));
    const y = rms(h, l.mlpNorm);
    const g = linear(y, l.wg);
    h = tf.add(h, linear(tf.mul(tf.mul(g, tf.sigmoid(g)), linear(y, l.wu)), l.wd));
  }
  const logits = linear(rms(h, finalNorm), lmHead);
  const picked = tf.sum(tf.mul(tf.logSoftmax(logits), tf.oneHot(b.targets, m.vocabSize)), -1);
  return tf.div(tf.neg(tf.sum(tf.mul(picked, b.weights))), b.count) as import('@tensorflow/tfjs-core').Scalar;
}

// ---------------------------------------------------------------- AdamW + clipping
const tr = spec.train;
const state = vars.map((v) => ({ m: tf.variable(tf.zerosLike(v), false), v: tf.variable(tf.zerosLike(v), false) }));
let t = 0;

function step(b: Prepared): T {
  const { value, grads } = tf.variableGrads(() => loss(b), vars);
  t++;
  tf.tidy(() => {
    const gs = vars.map((v) => grads[v.name]);
    let scale: T = tf.scalar(1);
    if (tr.gradClip > 0) {
      // Not tf.addN: its WebGPU kernel binds every input at once and exceeds the adapter's
      // storage-buffer limit with this many parameters.
      const norm = tf.sqrt(gs.map((g) => tf.sum(tf.square(g))).reduce((a, b) => tf.add(a, b)));
      scale = tf.minimum(1, tf.div(tr.gradClip, tf.add(norm, 1e-6)));
    }
    const [b1, b2] = tr.betas;
    const bc1 = 1 - b1 ** t;
    const bc2 = 1 - b2 ** t;
    vars.forEach((p, i) => {
      const g = tf.mul(gs[i], scale);
      const s = state[i];
      s.m.assign(tf.add(tf.mul(s.m, b1), tf.mul(g, 1 - b1)));
      s.v.assign(tf.add(tf.mul(s.v, b2), tf.mul(tf.square(g), 1 - b2)));
      const upd = tf.div(tf.div(s.m, bc1), tf.add(tf.sqrt(tf.div(s.v, bc2)), tr.eps));
      p.assign(tf.sub(tf.mul(p, 1 - b.lr * tr.weightDecay), tf.mul(upd, b.lr)));
    });
  });
  tf.dispose(Object.values(grads));
  return value;
}

async function readLoss(l: T): Promise<number> {
  await sync();
  if (gpuErrors.length) throw new Error(`WebGPU error in tfjs: ${gpuErrors[0].split('\n')[0]}`);
  const v = (await l.data())[0];
  l.dispose();
  if (!Number.isFinite(v)) throw new Error(`loss became ${v}`);
  return v;
}

// ---------------------------------------------------------------- run
const warmup = Math.min(spec.peerWarmup, spec.warmup);
const maxSeconds = spec.peerMaxSeconds;
const prepared = spec.batches.map((b, i) => prepare(b, i));
const losses: number[] = [];
for (const b of prepared.slice(spec.warmup - warmup, spec.warmup)) losses.push(await readLoss(step(b)));
const measured = prepared.slice(spec.warmup, spec.warmup + spec.steps);
const t0 = performance.now();
let tokens = 0;
let done = 0;
for (const b of measured) {
  losses.push(await readLoss(step(b)));
  tokens += b.T;
  done++;
  if (done >= 2 && (performance.now() - t0) / 1000 > maxSeconds) break;
}
const ms = performance.now() - t0;
console.log(
  JSON.stringify({
    peer: 'tfjs-webgpu 4.22',
    tokensPerSecond: (tokens * 1000) / ms,
    msPerStep: ms / done,
    losses,
    notes: [
      `${warmup} warm-up + ${done} measured steps; attention = matmul + masked softmax over ${nChunks} padded chunks of ${C} tokens per batch (static shapes); ` +
        'AdamW + global-norm clip by hand in tfjs ops; each step submitted then waited for with the non-spinning gpuAwait(onSubmittedWorkDone) before data()',
    ],
  }),
);
tf.dispose(prepared.flatMap((p) => [p.ids, p.targets, p.weights, p.cos, p.sin, p.gather, p.slot, p.maskBias]));
device.destroy();
process.exit(0);
