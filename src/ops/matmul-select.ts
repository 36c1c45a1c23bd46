// Which matmul kernel variant and workgroup shape to use for a problem.
//
// Order of precedence: a test/bench override (setMatmulOverride), then a choice measured by
// the tuner for this adapter and shape class (matmul-tuner.ts), then a heuristic default.
// Platform-neutral: no file-system access here (the tuner's on-disk cache is injected).
import type { Device } from '../device/index.ts';

export type MatmulEntry = 'simple' | 'blocked' | 'blocked8' | 'rows4' | 'tiled' | 'splitk' | 'sgb';

export interface MatmulKernel {
  entry: MatmulEntry;
  /** Workgroup size x (threads; for `sgb`/`rows4` the 1-D workgroup size). */
  wgx: number;
  wgy: number;
  /** K chunks for `splitk` (0 = choose from the shape). */
  splits?: number;
}

/** What the selector needs to know about one matmul call. */
export interface MatmulProblem {
  m: number;
  n: number;
  k: number;
  batch: number;
  /** A is stored column-major (a transposed view): its m stride is 1. */
  aT: boolean;
  /** B is stored column-major. */
  bT: boolean;
  /** B rows are contiguous and 16-byte aligned so B can be read as vec4 (`rows4`). */
  bVec4: boolean;
}

export interface VariantInfo {
  /** Shader file (shaders/<kernel>.wgsl). */
  kernel: 'matmul' | 'matmul_sg';
  /** Outputs per thread (rows, cols) — the block tile is (wgy·tm) × (wgx·tn). */
  tm: number;
  tn: number;
  /** Fixed workgroup shape, if the entry has one. */
  fixedWg?: [number, number];
  /** Workgroup shapes the tuner tries. */
  shapes: Array<[number, number]>;
  /** Override constants for a workgroup shape. */
  constants(k: MatmulKernel): Record<string, number>;
}

const wgxy = (k: MatmulKernel) => ({ WGX: k.wgx, WGY: k.wgy });

export const MATMUL_VARIANTS: Record<MatmulEntry, VariantInfo> = {
  simple: { kernel: 'matmul', tm: 1, tn: 1, shapes: [[16, 16], [8, 8], [64, 1]], constants: wgxy },
  blocked: { kernel: 'matmul', tm: 4, tn: 8, shapes: [[16, 8], [32, 2], [16, 4], [8, 8]], constants: wgxy },
  blocked8: { kernel: 'matmul', tm: 8, tn: 8, shapes: [[8, 8], [16, 4], [16, 8], [32, 2]], constants: wgxy },
  // One row of workgroups covers 8 rows; each thread 2 vec4 column groups.
  rows4: { kernel: 'matmul', tm: 8, tn: 8, shapes: [[32, 1], [64, 1], [16, 1]], constants: (k) => ({ WGX: k.wgx }) },
  tiled: { kernel: 'matmul', tm: 4, tn: 4, fixedWg: [16, 16], shapes: [[16, 16]], constants: () => ({}) },
  splitk: { kernel: 'matmul', tm: 4, tn: 8, shapes: [[16, 8], [8, 8]], constants: wgxy },
  sgb: { kernel: 'matmul_sg', tm: 16, tn: 4, shapes: [[32, 1], [64, 1], [16, 1]], constants: (k) => ({ WG: k.wgx }) },
};

/** Rows × columns of C covered by one workgroup. */
export function blockTile(k: MatmulKernel): [number, number] {
  const v = MATMUL_VARIANTS[k.entry];
  if (k.entry === 'rows4') return [8, k.wgx * 8];
  if (k.entry === 'sgb') return [16, k.wgx * 4];
  if (k.entry === 'tiled') return [64, 64];
  return [k.wgy * v.tm, k.wgx * v.tn];
}

// ---------------------------------------------------------------- per-device facts

interface DeviceFacts {
  /** Subgroup size measured by the probe kernel (0 = not measured). */
  subgroupSize: number;
  /** Tuned choices by shape class. */
  tuned: Map<string, MatmulKernel>;
}
const facts = new WeakMap<Device, DeviceFacts>();

export function deviceFacts(device: Device): DeviceFacts {
  let f = facts.get(device);
  if (!f) facts.set(device, (f = { subgroupSize: 0, tuned: new Map() }));
  return f;
}

/** A CPU rasteriser's Vulkan driver (lavapipe/llvmpipe): SIMD lanes, loads become gathers. */
export function isSoftwareAdapter(device: Device): boolean {
  const a = device.adapter;
  return a.architecture === 'software' || /llvmpipe|lavapipe|swiftshader/i.test(`${a.description} ${a.device}`);
}

/** Whether `sgb` may run: subgroups exist and are known to have ≥ 8 lanes. */
export function subgroupKernelUsable(device: Device): boolean {
  if (!device.features.has('subgroups')) return false;
  const measured = deviceFacts(device).subgroupSize;
  if (measured) return measured >= 8;
  // llvmpipe's subgroup is its SIMD width: 8 lanes (256-bit) or 16 (512-bit).
  return /llvmpipe/i.test(device.adapter.description);
}

/** A stable key for an adapter (used for the tuning caches). */
export function adapterKey(device: Device): string {
  const a = device.adapter;
  return [a.vendor, a.architecture, a.device, a.description, a.backend].join('|');
}

/** The tuning class of a problem: log2 buckets of m, n, k, batched or not, and layouts. */
export function shapeClass(p: MatmulProblem): string {
  const lg = (x: number) => Math.ceil(Math.log2(Math.max(1, x)));
  return `${lg(p.m)}.${lg(p.n)}.${lg(p.k)}.${p.batch > 1 ? 'b' : '1'}.${p.aT ? 't' : 'n'}${p.bT ? 't' : 'n'}${p.bVec4 ? 'v' : 's'}`;
}

// ---------------------------------------------------------------- choice

let override: MatmulKernel | null = null;

/**
 * Force one variant for every matmul (tests and benchmarks), or null to go back to the
 * normal choice. A forced variant that cannot run a problem (e.g. `rows4` on an unaligned
 * B) falls back to the default choice for that call.
 */
export function setMatmulOverride(k: MatmulKernel | null): void {
  override = k;
}

export function getMatmulOverride(): MatmulKernel | null {
  return override;
}

/** Whether a variant can compute this problem on this device. */
export function supports(device: Device, entry: MatmulEntry, p: MatmulProblem): boolean {
  switch (entry) {
    case 'rows4':
      return p.bVec4;
    case 'sgb':
      return subgroupKernelUsable(device);
    default:
      return true;
  }
}

/** Number of K chunks for split-K: enough workgroups to fill the device, chunks ≥ 128 deep. */
export function splitCount(device: Device, k: MatmulKernel, p: MatmulProblem): number {
  const [tr, tc] = blockTile({ ...k, entry: 'splitk' });
  const groups = Math.ceil(p.m / tr) * Math.ceil(p.n / tc) * p.batch;
  const want = k.splits && k.splits > 0 ? k.splits : Math.ceil(64 / groups);
  // Partial buffer (f32) must fit one binding; keep it ≤ 32 MiB.
  const cap = Math.max(1, Math.floor((32 << 20) / (4 * p.m * p.n * p.batch)));
  return Math.max(1, Math.min(want, Math.ceil(p.k / 128), cap, 64));
}

export function heuristicMatmulKernel(device: Device, p: MatmulProblem): MatmulKernel {
  const { m, n, k, batch } = p;
  const software = isSoftwareAdapter(device);
  // CPU SIMD adapters: the subgroup-broadcast kernel wins at every shape measured there
  // (including skinny long-K ones, as long as there are ≥ 2 workgroups for the cores).
  if (software && m >= 8 && n >= 16 && subgroupKernelUsable(device)) {
    const wg = n <= 64 ? 16 : 32;
    const groups = Math.ceil(n / (4 * wg)) * Math.ceil(m / 16) * batch;
    if (groups >= 2 || k < 1024) return { entry: 'sgb', wgx: wg, wgy: 1 };
  }
  // Few output tiles but a long reduction: split K so every core/SM has work.
  const tiles = Math.ceil(m / 32) * Math.ceil(n / 64) * batch;
  if (k >= 1024 && k >= 4 * Math.max(m, n) && tiles < 16) return { entry: 'splitk', wgx: 8, wgy: 8, splits: 0 };
  if (m * n < 4096 || m < 4 || n < 8) return { entry: 'simple', wgx: 16, wgy: 16 };
  if (software) {
    if (m >= 8 && n >= 64 && p.bVec4) return { entry: 'rows4', wgx: 32, wgy: 1 };
    return { entry: 'blocked8', wgx: 8, wgy: 8 };
  }
  if (m >= 64 && n >= 64) return { entry: 'tiled', wgx: 16, wgy: 16 };
  return { entry: 'blocked', wgx: 16, wgy: 8 };
}

export function chooseMatmulKernel(device: Device, p: MatmulProblem): MatmulKernel {
  if (override && supports(device, override.entry, p)) return override;
  const tuned = facts.get(device)?.tuned.get(shapeClass(p));
  if (tuned && supports(device, tuned.entry, p)) return tuned;
  return heuristicMatmulKernel(device, p);
}
