// Matmul tuner: measures the kernel variants and workgroup shapes on the current adapter for
// given problem shapes, and remembers the fastest per shape class (matmul-select.ts reads
// the choice). Choices persist through an injected store: on Node a JSON file under
// ~/.cache/webomni/ (matmul-tuner-node.ts), in a browser none unless one is set.
//
// Timing: wall time around device.sync() (which waits without spinning the CPU) over a
// batch of dispatches in one submit, best of a few repetitions, after a warm-up that also
// compiles the pipeline.
import type { Device, KernelDType } from '../device/index.ts';
import { encodeMatmul } from './matmul.ts';
import {
  adapterKey,
  deviceFacts,
  MATMUL_VARIANTS,
  shapeClass,
  supports,
  type MatmulEntry,
  type MatmulKernel,
  type MatmulProblem,
} from './matmul-select.ts';

export interface TuneShape {
  m: number;
  n: number;
  k: number;
  batch?: number;
  /** A given as a transposed view (stored [k, m]). */
  transA?: boolean;
  /** B given as a transposed view (stored [n, k]). */
  transB?: boolean;
}

export interface TuneCandidate {
  kernel: MatmulKernel;
  ms: number;
  gflops: number;
}

export interface TuneResult {
  shape: TuneShape;
  shapeClass: string;
  choice: MatmulKernel;
  candidates: TuneCandidate[];
}

export interface TuneOptions {
  /** Timed repetitions per candidate (best is kept). Default 3. */
  reps?: number;
  /** Only these variants. */
  entries?: MatmulEntry[];
  /** Write the choices to the store (default true). */
  persist?: boolean;
  dtype?: KernelDType;
  log?: (line: string) => void;
}

/** Where tuned choices live between processes, keyed by adapter. */
export interface TuneStore {
  load(adapter: string): Promise<Record<string, MatmulKernel> | undefined>;
  save(adapter: string, choices: Record<string, MatmulKernel>): Promise<void>;
}

let store: TuneStore | null | undefined;

/** Set the persistent store (null: memory only). Node defaults to the JSON file store. */
export function setMatmulTuneStore(s: TuneStore | null): void {
  store = s;
}

async function getStore(): Promise<TuneStore | null> {
  if (store !== undefined) return store;
  store = null;
  const isNode = typeof process !== 'undefined' && !!(process as { versions?: { node?: string } }).versions?.node;
  if (isNode) {
    // A non-literal specifier keeps bundlers from pulling node:fs into browser builds.
    const spec = './matmul-tuner-node.ts';
    try {
      const mod = (await import(/* @vite-ignore */ spec)) as { fileTuneStore: TuneStore };
      store = mod.fileTuneStore;
    } catch {
      store = null;
    }
  }
  return store;
}

/** Load previously tuned choices for this adapter into the selector (no-op without a store). */
export async function loadMatmulTuning(device: Device): Promise<number> {
  const s = await getStore();
  const saved = s ? await s.load(adapterKey(device)) : undefined;
  if (!saved) return 0;
  const tuned = deviceFacts(device).tuned;
  for (const [cls, k] of Object.entries(saved)) if (k && k.entry in MATMUL_VARIANTS) tuned.set(cls, k);
  return Object.keys(saved).length;
}

/** Forget tuned choices for this device (memory only). */
export function clearMatmulTuning(device: Device): void {
  deviceFacts(device).tuned.clear();
}

/** Measure the subgroup size with a one-thread kernel (0 without the subgroups feature). */
export async function probeSubgroupSize(device: Device): Promise<number> {
  const f = deviceFacts(device);
  if (f.subgroupSize) return f.subgroupSize;
  if (!device.features.has('subgroups')) return 0;
  const buf = device.pool.acquire(16);
  try {
    device.dispatch({ kernel: 'matmul_sg', entry: 'probe', buffers: [buf], workgroups: [1], label: 'matmul.probe' });
    f.subgroupSize = new Uint32Array(await device.read(buf, 0, 4))[0];
  } finally {
    device.pool.release(buf);
  }
  return f.subgroupSize;
}

/** Parameters (shaders/matmul.wgsl Params) and selector facts for a synthetic problem. */
export function syntheticProblem(s: TuneShape): { problem: MatmulProblem; u: Uint32Array } {
  const batch = s.batch ?? 1;
  const { m, n, k } = s;
  const u = new Uint32Array(28);
  u.set([m, n, k, batch, 0, 0, 0, batch > 1 ? 1 : 0]);
  u.set([s.transA ? 1 : k, s.transA ? m : 1, s.transB ? 1 : n, s.transB ? k : 1], 8);
  if (batch > 1) {
    u[12] = batch;
    u[16] = m * k;
    u[20] = k * n;
  }
  const problem: MatmulProblem = {
    m,
    n,
    k,
    batch,
    aT: !!s.transA && m > 1,
    bT: !!s.transB && n > 1,
    bVec4: !s.transB && n % 4 === 0 && (batch === 1 || (k * n) % 4 === 0),
  };
  return { problem, u };
}

/** Every (variant, workgroup shape) the tuner would try for a problem on this device. */
export function matmulCandidates(device: Device, p: MatmulProblem, entries?: MatmulEntry[]): MatmulKernel[] {
  const out: MatmulKernel[] = [];
  const flops = 2 * p.m * p.n * p.k * p.batch;
  for (const [entry, v] of Object.entries(MATMUL_VARIANTS) as Array<[MatmulEntry, (typeof MATMUL_VARIANTS)[MatmulEntry]]>) {
    if (entries && !entries.includes(entry)) continue;
    if (!supports(device, entry, p)) continue;
    // One output per thread is never competitive on big problems; don't spend seconds on it.
    if (entry === 'simple' && flops > 2 ** 28 && !entries) continue;
    if (entry === 'splitk' && p.k < 256) continue;
    for (const [wgx, wgy] of v.shapes) {
      if (entry === 'splitk') for (const splits of [0, 4, 16]) out.push({ entry, wgx, wgy, splits });
      else out.push({ entry, wgx, wgy });
    }
  }
  return out;
}

/**
 * Measure the candidates for each shape, pick the fastest, and make it the choice for the
 * shape's class on this device (and in the persistent store, unless persist is false).
 */
export async function tuneMatmul(device: Device, shapes: TuneShape[], opts: TuneOptions = {}): Promise<TuneResult[]> {
  const reps = opts.reps ?? 3;
  const dtype = opts.dtype ?? 'f32';
  const bytes = dtype === 'f16' ? 2 : 4;
  if (device.features.has('subgroups')) await probeSubgroupSize(device);
  const results: TuneResult[] = [];
  const facts = deviceFacts(device);
  for (const shape of shapes) {
    const { problem, u } = syntheticProblem(shape);
    const { m, n, k, batch } = problem;
    const flops = 2 * m * n * k * batch;
    const A = device.pool.acquire(Math.max(4, batch * m * k * bytes));
    const B = device.pool.acquire(Math.max(4, batch * k * n * bytes));
    const C = device.pool.acquire(Math.max(4, batch * m * n * bytes));
    const cands: TuneCandidate[] = [];
    try {
      // Enough dispatches per timed submit that per-submit overhead is small (~20 ms of work
      // at 10 GFLOP/s), at most 64.
      const inner = Math.max(1, Math.min(64, Math.ceil(2e8 / flops)));
      let best = Infinity;
      for (const kernel of matmulCandidates(device, problem, opts.entries)) {
        const t0 = performance.now();
        encodeMatmul(device, kernel, problem, u, dtype, A, B, C, 'matmul.tune');
        await device.sync();
        const first = performance.now() - t0;
        let ms = first;
        // A candidate over twice as slow as the best so far (even counting compile time) is
        // dropped after its warm-up run.
        if (first < 2 * best || best === Infinity) {
          ms = Infinity;
          // Long runs are stable: one timed repetition is enough past half a second.
          const n = first > 500 ? 1 : reps;
          for (let r = 0; r < n; r++) {
            const t1 = performance.now();
            for (let i = 0; i < inner; i++) encodeMatmul(device, kernel, problem, u, dtype, A, B, C, 'matmul.tune');
            await device.sync();
            ms = Math.min(ms, (performance.now() - t1) / inner);
          }
        }
        best = Math.min(best, ms);
        cands.push({ kernel, ms, gflops: flops / ms / 1e6 });
        opts.log?.(`  ${fmtKernel(kernel).padEnd(22)} ${ms.toFixed(3).padStart(10)} ms ${(flops / ms / 1e6).toFixed(2).padStart(8)} GFLOP/s`);
      }
    } finally {
      device.pool.release(A);
      device.pool.release(B);
      device.pool.release(C);
    }
    cands.sort((x, y) => x.ms - y.ms);
    const choice = cands[0].kernel;
    const cls = shapeClass(problem);
    facts.tuned.set(cls, choice);
    results.push({ shape, shapeClass: cls, choice, candidates: cands });
    opts.log?.(`${fmtShape(shape)} → ${fmtKernel(choice)} (${cands[0].gflops.toFixed(2)} GFLOP/s), class ${cls}`);
  }
  if (opts.persist !== false) {
    const s = await getStore();
    if (s) {
      const key = adapterKey(device);
      const prev = (await s.load(key)) ?? {};
      for (const r of results) prev[r.shapeClass] = r.choice;
      await s.save(key, prev);
    }
  }
  return results;
}

export function fmtKernel(k: MatmulKernel): string {
  const fixed = MATMUL_VARIANTS[k.entry].fixedWg;
  const wg = fixed ? '' : k.entry === 'sgb' || k.entry === 'rows4' ? ` wg${k.wgx}` : ` ${k.wgx}x${k.wgy}`;
  return `${k.entry}${wg}${k.entry === 'splitk' ? ` s${k.splits || 'auto'}` : ''}`;
}

function fmtShape(s: TuneShape): string {
  return `${s.batch && s.batch > 1 ? `${s.batch}×` : ''}${s.m}×${s.n}×${s.k}${s.transA ? ' Aᵀ' : ''}${s.transB ? ' Bᵀ' : ''}`;
}
