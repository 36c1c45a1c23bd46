// Every matmul kernel variant, forced through the selector's override hook, against the
// float64 reference: odd sizes across tile edges, transposed operands (views), broadcast
// batches, k = 0 / m = 0 edges, f16, error messages, and the tuner.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as W from '../../src/node.ts';
import { matmul as refMatmul } from '../reference/nd.ts';
import { checkOp } from '../helpers/check.ts';
import { useDevice } from '../helpers/device.ts';
import { matmulLaunches, probeSubgroupSize, tuneMatmul, setMatmulTuneStore, loadMatmulTuning, clearMatmulTuning } from '../../src/ops/matmul.ts';
import {
  chooseMatmulKernel,
  heuristicMatmulKernel,
  setMatmulOverride,
  shapeClass,
  subgroupKernelUsable,
  type MatmulEntry,
  type MatmulKernel,
} from '../../src/ops/matmul-select.ts';
import { fileTuneStore } from '../../src/ops/matmul-tuner-node.ts';

const ctx = useDevice();

const VARIANTS: MatmulKernel[] = [
  { entry: 'simple', wgx: 16, wgy: 16 },
  { entry: 'blocked', wgx: 16, wgy: 8 },
  { entry: 'blocked8', wgx: 8, wgy: 8 },
  { entry: 'rows4', wgx: 16, wgy: 1 },
  { entry: 'tiled', wgx: 16, wgy: 16 },
  { entry: 'splitk', wgx: 8, wgy: 8, splits: 3 },
  { entry: 'sgb', wgx: 32, wgy: 1 },
];

afterEach(() => setMatmulOverride(null));
// Measure the subgroup size so `sgb` is exercised on every adapter where it may run.
beforeAll(async () => {
  await probeSubgroupSize(ctx.device);
});

const mm = (a: W.Tensor, b: W.Tensor) => W.matmul(a, b);
const fwd = (shape: number[], transposed = false) => ({ shape, grad: false, transposed });

/** Runs `body` with `k` forced and checks that the variant actually launched. */
async function forced(k: MatmulKernel, body: () => Promise<void>): Promise<void> {
  const before = matmulLaunches[k.entry];
  setMatmulOverride(k);
  await body();
  setMatmulOverride(null);
  const usable = k.entry !== 'sgb' || subgroupKernelUsable(ctx.device);
  if (usable) expect(matmulLaunches[k.entry], `${k.entry} launched`).toBeGreaterThan(before);
  else expect(matmulLaunches[k.entry], `${k.entry} not usable here: fell back`).toBe(before);
}

describe.each(VARIANTS)('matmul variant $entry', (k) => {
  it('odd sizes across tile edges (forward)', async () => {
    await forced(k, async () => {
      for (const [m, kk, n] of [[1, 1, 1], [3, 17, 5], [65, 33, 132], [130, 7, 65], [17, 130, 3], [1, 64, 260]]) {
        await checkOp({ name: `${k.entry} ${m}x${kk}x${n}`, inputs: [fwd([m, kk]), fwd([kk, n])], gpu: mm, ref: refMatmul });
      }
    });
  });
  it('forward + backward vs float64 reference and finite differences', async () => {
    await forced(k, async () => {
      await checkOp({ name: `${k.entry} grad`, inputs: [{ shape: [17, 9] }, { shape: [9, 20] }], gpu: mm, ref: refMatmul });
    });
  });
  it('transposed A and/or B (strided views)', async () => {
    await forced(k, async () => {
      await checkOp({ name: `${k.entry} Aᵀ`, inputs: [{ shape: [6, 11], transposed: true }, { shape: [11, 8] }], gpu: mm, ref: refMatmul });
      await checkOp({ name: `${k.entry} Bᵀ`, inputs: [{ shape: [5, 7] }, { shape: [7, 12], transposed: true }], gpu: mm, ref: refMatmul });
      await checkOp({ name: `${k.entry} AᵀBᵀ`, inputs: [{ shape: [9, 4], transposed: true }, { shape: [4, 6], transposed: true }], gpu: mm, ref: refMatmul });
      await checkOp({ name: `${k.entry} AᵀBᵀ big`, inputs: [fwd([70, 45], true), fwd([45, 136], true)], gpu: mm, ref: refMatmul });
    });
  });
  it('broadcast batch dims, size-1 batch dims', async () => {
    await forced(k, async () => {
      await checkOp({ name: `${k.entry} bcast`, inputs: [{ shape: [2, 1, 5, 7] }, { shape: [3, 7, 4] }], gpu: mm, ref: refMatmul, fdSamples: 2 });
      await checkOp({ name: `${k.entry} size-1`, inputs: [fwd([1, 3, 1, 18, 5]), fwd([1, 1, 2, 5, 20])], gpu: mm, ref: refMatmul });
      await checkOp({ name: `${k.entry} batch big`, inputs: [fwd([3, 33, 17]), fwd([17, 68])], gpu: mm, ref: refMatmul });
    });
  });
});

describe('matmul edges and errors', () => {
  it('k = 0 gives zeros, m = 0 gives an empty result', async () => {
    for (const k of VARIANTS) {
      setMatmulOverride(k);
      const a = W.Tensor.fromArray([], [3, 0]);
      const b = W.Tensor.fromArray([], [0, 4]);
      const c = W.matmul(a, b);
      expect(c.shape).toEqual([3, 4]);
      expect(Array.from(await c.toArray())).toEqual(new Array(12).fill(0));
      const e = W.matmul(W.Tensor.fromArray([], [0, 5]), W.Tensor.fromArray(new Array(20).fill(1), [5, 4]));
      expect(e.shape).toEqual([0, 4]);
      expect((await e.toArray()).length).toBe(0);
    }
  });
  it('mismatched inner dimensions name both shapes', () => {
    const a = W.Tensor.fromArray(new Array(6).fill(1), [2, 3]);
    const b = W.Tensor.fromArray(new Array(20).fill(1), [4, 5]);
    expect(() => W.matmul(a, b)).toThrow(/inner dimensions differ: \[2, 3\] · \[4, 5\]/);
    const c = W.Tensor.fromArray(new Array(24).fill(1), [2, 3, 4]);
    const d = W.Tensor.fromArray(new Array(60).fill(1), [3, 4, 5]);
    expect(() => W.matmul(c, d)).toThrow(/batch dimensions cannot be broadcast: \[2\] vs \[3\]/);
  });
  it('f16 storage with f32 accumulation', async () => {
    if (!ctx.device.hasF16) {
      expect(() => W.matmul(W.Tensor.fromArray([1], [1, 1], 'f16'), W.Tensor.fromArray([1], [1, 1], 'f16'))).toThrow(/shader-f16/);
      return;
    }
    for (const k of VARIANTS) {
      await forced(k, async () => {
        await checkOp({
          name: `${k.entry} f16`,
          dtype: 'f16',
          inputs: [fwd([33, 40]), fwd([40, 68])],
          gpu: mm,
          ref: refMatmul,
          atol: 2e-2,
          rtol: 1e-2,
        });
      });
    }
  });
  it('a long reduction (split-K shape) matches the reference', async () => {
    await checkOp({ name: 'skinny long k', inputs: [fwd([8, 1500], true), fwd([1500, 12])], gpu: mm, ref: refMatmul, atol: 1e-4 });
  });
});

describe('selector and tuner', () => {
  it('heuristic picks by shape, the override wins, unsupported overrides fall back', () => {
    const d = ctx.device;
    const p = (m: number, n: number, k: number, extra: Partial<{ bVec4: boolean; batch: number }> = {}) => ({
      m, n, k, batch: extra.batch ?? 1, aT: false, bT: false, bVec4: extra.bVec4 ?? true,
    });
    expect(heuristicMatmulKernel(d, p(2, 3, 4)).entry).toBe('simple');
    expect(['splitk', 'sgb']).toContain(heuristicMatmulKernel(d, p(64, 64, 8192)).entry);
    expect(heuristicMatmulKernel(d, p(8, 12, 1500)).entry).toBe('splitk');
    const big = heuristicMatmulKernel(d, p(1024, 1024, 1024)).entry;
    expect(['sgb', 'rows4', 'blocked8', 'tiled']).toContain(big);
    setMatmulOverride({ entry: 'rows4', wgx: 32, wgy: 1 });
    expect(chooseMatmulKernel(d, p(64, 64, 64, { bVec4: false })).entry).not.toBe('rows4');
    expect(chooseMatmulKernel(d, p(64, 64, 64)).entry).toBe('rows4');
  });
  it('tuneMatmul measures candidates, applies and persists the choice', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'webomni-tune-'));
    const old = process.env.WEBOMNI_CACHE_DIR;
    process.env.WEBOMNI_CACHE_DIR = dir;
    setMatmulTuneStore(fileTuneStore);
    try {
      const entries: MatmulEntry[] = ['blocked', 'blocked8', 'simple'];
      const [r] = await tuneMatmul(ctx.device, [{ m: 48, n: 40, k: 32 }], { entries, reps: 1 });
      expect(r.candidates.length).toBeGreaterThanOrEqual(3);
      expect(r.candidates.every((c) => c.ms > 0 && Number.isFinite(c.gflops) && entries.includes(c.kernel.entry))).toBe(true);
      expect(r.choice).toEqual(r.candidates[0].kernel);
      const problem = { m: 48, n: 40, k: 32, batch: 1, aT: false, bT: false, bVec4: true };
      expect(r.shapeClass).toBe(shapeClass(problem));
      expect(chooseMatmulKernel(ctx.device, problem)).toEqual(r.choice);
      const saved = JSON.parse(readFileSync(join(dir, 'matmul-tuning.json'), 'utf8')) as Record<string, Record<string, MatmulKernel>>;
      expect(Object.values(saved)[0][r.shapeClass]).toEqual(r.choice);
      // A fresh process would load it back.
      clearMatmulTuning(ctx.device);
      expect(chooseMatmulKernel(ctx.device, problem)).toEqual(heuristicMatmulKernel(ctx.device, problem));
      expect(await loadMatmulTuning(ctx.device)).toBe(1);
      expect(chooseMatmulKernel(ctx.device, problem)).toEqual(r.choice);
      // The tuned choice computes correctly.
      await checkOp({ name: 'tuned', inputs: [fwd([48, 32]), fwd([32, 40])], gpu: mm, ref: refMatmul });
    } finally {
      clearMatmulTuning(ctx.device);
      setMatmulTuneStore(null);
      if (old === undefined) delete process.env.WEBOMNI_CACHE_DIR;
      else process.env.WEBOMNI_CACHE_DIR = old;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

