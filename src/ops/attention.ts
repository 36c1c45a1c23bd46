// Flash attention over packed variable-length sequences with grouped-query heads
// (shaders/flash_attention.wgsl), forward and backward, never materialising T×T scores.
//
//   flashAttention(q [T, Hq, D], k [T, Hkv, D], v [T, Hkv, D], { causal, cuSeqlens, scale })
//     → [T, Hq, D]
//
// `cuSeqlens` = [0, l1, l1+l2, …, T] packs several documents into T tokens; tokens never
// attend across documents. Empty documents (repeated offsets) are allowed and produce
// nothing. Without it, T is one sequence. A 4-D [B, S, H, D] batch is accepted as B
// documents of length S. Query head h reads KV head ⌊h / (Hq/Hkv)⌋.

import { Tensor, fmtShape } from '../tensor/tensor.ts';
import type { Device, KernelDType } from '../device/index.ts';
import { defineOp, opError } from './registry.ts';
import { contiguousK, floatKernelType } from './kernels.ts';
import { reshape } from './shape.ts';
import { isSoftwareAdapter, subgroupKernelUsable } from './matmul-select.ts';

export interface FlashAttentionOptions {
  /** Mask keys after the query (within each document). Default false. */
  causal?: boolean;
  /** Cumulative document lengths [0, …, T] of the packed tokens (host values). */
  cuSeqlens?: readonly number[] | Int32Array;
  /** Score scale; default 1/√D. */
  scale?: number;
}

const OP = 'flash_attention';
const MAX_HEAD_DIM = 128;
const LOG2E = 1.4426950408889634;

/**
 * The two schedules of the same kernels: `wg` (flash_attention.wgsl: 128 threads stage
 * row blocks and streamed K/V tiles in workgroup memory, for GPUs) and `sg` (flash_attention_sg.wgsl: one 8-lane
 * subgroup per 16 rows, registers and subgroup broadcasts only, for CPU-SIMD adapters
 * such as lavapipe, where every load is a gather and barriers are expensive).
 */
export type FlashAttentionKernel = 'wg' | 'sg';

const KERNELS: Record<FlashAttentionKernel, { kernel: string; rows: number }> = {
  wg: { kernel: 'flash_attention', rows: 64 }, // rows: the most a `wg` plan uses (wgPlan picks per call)
  sg: { kernel: 'flash_attention_sg', rows: 16 },
};

let forced: FlashAttentionKernel | null = null;

/** Force one schedule (tests and benchmarks), or null for the normal per-adapter choice. */
export function setFlashAttentionKernel(k: FlashAttentionKernel | null): void {
  forced = k;
}

/** The schedule used on this device: `sg` on software adapters with ≥ 8-lane subgroups. */
export function flashAttentionKernel(device: Device): FlashAttentionKernel {
  if (forced === 'sg' && !subgroupKernelUsable(device)) {
    throw new Error(`${OP}: the 'sg' schedule needs subgroups of at least 8 lanes, which this adapter does not have`);
  }
  if (forced) return forced;
  return isSoftwareAdapter(device) && subgroupKernelUsable(device) ? 'sg' : 'wg';
}

interface BlockTable {
  buffer: GPUBuffer;
  count: number;
}

// Per device, the GPU block tables of recent document layouts (a training step calls
// attention once per layer with the same layout).
const tableCache = new WeakMap<Device, Map<string, BlockTable>>();
const TABLE_CACHE_SIZE = 16;

function blockTable(device: Device, cu: readonly number[], br: number, heavyFirst = false): BlockTable {
  let cache = tableCache.get(device);
  if (!cache) tableCache.set(device, (cache = new Map()));
  const key = `${br}|${heavyFirst ? 'r' : ''}|${cu.join(',')}`;
  const hit = cache.get(key);
  if (hit) {
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  const rows: number[] = [];
  for (let i = 0; i + 1 < cu.length; i++) {
    const start = cu[i];
    const len = cu[i + 1] - start;
    for (let r = 0; r < len; r += br) rows.push(start, len, r, 0);
  }
  if (heavyFirst) {
    // Last blocks of the longest documents first (they have the most causal work), so the
    // GPU starts the long workgroups early and the short ones fill the tail.
    const entries: number[][] = [];
    for (let i = 0; i < rows.length; i += 4) entries.push(rows.slice(i, i + 4));
    entries.sort((a, b) => b[2] - a[2] || b[1] - a[1] || a[0] - b[0]);
    rows.length = 0;
    for (const e of entries) rows.push(...e);
  }
  const data = new Uint32Array(rows.length ? rows : [0, 0, 0, 0]);
  const buffer = device.pool.acquire(data.byteLength, 'flash_attention blocks');
  device.write(buffer, 0, data);
  const table = { buffer, count: rows.length / 4 };
  cache.set(key, table);
  if (cache.size > TABLE_CACHE_SIZE) {
    const [oldKey, old] = cache.entries().next().value as [string, BlockTable];
    cache.delete(oldKey);
    device.pool.release(old.buffer);
  }
  return table;
}

/** A [T, H, D] operand as (tensor, offset, token stride, head stride); copies unless D has unit stride. */
function asView(t: Tensor): { t: Tensor; view: [number, number, number, number]; copied: boolean } {
  const [, h, d] = t.shape;
  if (t.strides[2] === 1 || d === 1) {
    return { t, view: [t.offset, t.strides[0], h === 1 ? d : t.strides[1], 0], copied: false };
  }
  const c = contiguousK(t);
  return { t: c, view: [0, h * d, d, 0], copied: true };
}

interface Config {
  causal: boolean;
  scale: number;
  cu: number[];
}

function params(hq: number, hkv: number, ntok: number, d: number, cfg: Config, views: Array<[number, number, number, number]>): ArrayBuffer {
  const buf = new ArrayBuffer(8 * 4 + 4 * 16);
  const u = new Uint32Array(buf);
  const f = new Float32Array(buf);
  u[0] = hq;
  u[1] = hkv;
  u[2] = hq / hkv;
  u[3] = ntok;
  f[4] = cfg.scale * LOG2E;
  f[5] = cfg.scale;
  u[6] = d;
  u[7] = cfg.causal ? 1 : 0;
  views.forEach((v, i) => u.set(v, 8 + 4 * i));
  return buf;
}

/** `sg` pipeline specialisation: only the head-dim class (value-phase columns per lane). */
function sgConstants(d: number): Record<string, number> {
  return { DM: d <= 32 ? 4 : d <= 64 ? 8 : 16 };
}

type WgEntry = 'forward' | 'dq' | 'dkdv';

/** A `wg` pipeline: TR rows per invocation (16·TR per workgroup), KT streamed rows per invocation per tile (8·KT per tile), DV4 = head-dim class (32·DV4 ≥ D). */
interface WgConfig {
  TR: number;
  KT: number;
  DV4: number;
}

type WgPlan = Record<WgEntry, WgConfig>;

/** Workgroup memory (f32 words) of a `wg` entry point; mirrors the `var<workgroup>` arrays of flash_attention.wgsl. */
function wgSmemFloats(entry: WgEntry, c: WgConfig): number {
  const br = 16 * c.TR;
  const bc = 8 * c.KT;
  const dp = 32 * c.DV4;
  const tiles = 2 * bc * (dp + 4);
  if (entry === 'forward') return br * dp + tiles + br * bc + 8 * br;
  if (entry === 'dq') return 2 * br * dp + tiles + br * bc + 8 * br;
  return 2 * br * dp + tiles + 2 * br * bc + 2 * bc;
}

// At most 48 KiB of workgroup memory (an H100 through Dawn/Vulkan offers 48 KiB; lavapipe,
// Apple and many mobile GPUs 32 KiB, where the same code runs with smaller tiles).
const WG_SMEM_BYTES = 49152;
// Enough workgroups for ~2 per compute unit of a large GPU (an H100 has 132 SMs); dq wants
// ~4 (measured on an H100: its tiles are short, so more workgroups hide more latency).
const WG_MIN_GROUPS: Record<WgEntry, number> = { forward: 256, dq: 512, dkdv: 256 };
// dq: at most 16 keys per tile (measured on an H100: 32-key tiles were 10–25% slower).
const WG_MAX_KT: Record<WgEntry, number> = { forward: 4, dq: 2, dkdv: 4 };
// Register accumulators per invocation (S, dP and the value tiles, floats).
const WG_MAX_ACC = 96;

function wgAccumulators(entry: WgEntry, c: WgConfig): number {
  const value = c.TR * 4 * c.DV4;
  if (entry === 'forward') return c.TR * c.KT + value;
  if (entry === 'dq') return 2 * c.TR * c.KT + value;
  return 2 * c.TR * c.KT + 2 * value;
}

function lexGreater(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] > b[i];
  return false;
}

function rowBlocks(cu: readonly number[], rows: number): number {
  let n = 0;
  for (let i = 1; i < cu.length; i++) n += Math.ceil((cu[i] - cu[i - 1]) / rows);
  return n;
}

/**
 * Per entry point, the `wg` tile shape for this problem: workgroup memory within the
 * adapter's limit (and 48 KiB), at most WG_MAX_ACC accumulators, then the largest register
 * tile (TR·KT) among shapes that still give WG_MIN_GROUPS workgroups (fewer rows per
 * workgroup for small problems), preferring more rows per workgroup at equal tiles.
 * Forward and backward recompute the same plan; the forward also saves it in ctx.attrs.
 */
function wgPlan(device: Device, d: number, cu: readonly number[], hq: number, hkv: number): WgPlan {
  const dv4 = d <= 32 ? 1 : d <= 64 ? 2 : 4;
  const budget = Math.min(WG_SMEM_BYTES, device.limits.maxComputeWorkgroupStorageSize) / 4;
  const maxGroups = device.limits.maxComputeWorkgroupsPerDimension;
  const pick = (entry: WgEntry, heads: number): WgConfig => {
    let best: { c: WgConfig; score: number[] } | null = null;
    for (const TR of [4, 2, 1]) {
      for (const KT of [4, 2, 1]) {
        const c = { TR, KT, DV4: dv4 };
        const blocks = rowBlocks(cu, 16 * TR);
        if (wgSmemFloats(entry, c) > budget || blocks > maxGroups || KT > WG_MAX_KT[entry]) continue;
        if (wgAccumulators(entry, c) > WG_MAX_ACC && !(TR === 1 && KT === 1)) continue;
        const enough = blocks * heads >= WG_MIN_GROUPS[entry] ? 1 : 0;
        // Enough workgroups first, then the largest register tile, then fewer, larger row
        // blocks; short of enough workgroups, the most workgroups, then the largest tile.
        const score = enough ? [1, TR * KT, TR] : [0, blocks * heads, TR * KT];
        if (!best || lexGreater(score, best.score)) best = { c, score };
      }
    }
    if (!best) throw new Error(`${OP}: no tile shape fits ${budget * 4} bytes of workgroup memory for head dim ${d}`);
    return best.c;
  };
  return { forward: pick('forward', hq), dq: pick('dq', hq), dkdv: pick('dkdv', hkv) };
}

function wgConstants(c: WgConfig): Record<string, number> {
  return { TR: c.TR, KT: c.KT, DV4: c.DV4 };
}

/** Block table, constants and grid of one entry point: `sg` [blocks, heads]; `wg` [heads, blocks], heaviest blocks first. */
function launch(
  device: Device,
  kind: FlashAttentionKernel,
  plan: WgPlan | null,
  entry: WgEntry,
  d: number,
  cu: readonly number[],
  heads: number,
): { table: GPUBuffer; count: number; constants: Record<string, number>; workgroups: [number, number] } {
  if (kind === 'sg' || !plan) {
    const t = blockTable(device, cu, KERNELS.sg.rows);
    return { table: t.buffer, count: t.count, constants: sgConstants(d), workgroups: [t.count, heads] };
  }
  const c = plan[entry];
  const t = blockTable(device, cu, 16 * c.TR, true);
  return { table: t.buffer, count: t.count, constants: wgConstants(c), workgroups: [heads, t.count] };
}

const flashAttentionOp = defineOp({
  name: OP,
  forward(ctx, q: Tensor, k: Tensor, v: Tensor, cfg: Config) {
    const dtype = floatKernelType(OP, q, k, v) as KernelDType;
    const [ntok, hq, d] = q.shape;
    const hkv = k.shape[1];
    const device = q.device;
    const out = Tensor.empty([ntok, hq, d], q.dtype, device);
    // stats[0 .. T·Hq): log2-sum-exp2 per row; [T·Hq .. 2·T·Hq): Dᵢ for the backward.
    const stats = Tensor.empty([2, ntok, hq], 'f32', device);
    const kind = flashAttentionKernel(device);
    const plan = kind === 'wg' ? wgPlan(device, d, cfg.cu, hq, hkv) : null;
    if (ntok > 0 && hq > 0) {
      const [qv, kv, vv] = [asView(q), asView(k), asView(v)];
      const l = launch(device, kind, plan, 'forward', d, cfg.cu, hq);
      if (l.count > 0) {
        device.dispatch({
          kernel: KERNELS[kind].kernel,
          entry: 'forward',
          constants: l.constants,
          dtype,
          uniforms: new Uint8Array(params(hq, hkv, ntok, d, cfg, [qv.view, kv.view, vv.view, [0, 0, 0, 0]])),
          buffers: [l.table, qv.t.storage.buffer, kv.t.storage.buffer, vv.t.storage.buffer, out.storage.buffer, stats.storage.buffer],
          workgroups: l.workgroups,
          label: OP,
        });
      }
      for (const x of [qv, kv, vv]) if (x.copied) x.t.release();
    }
    ctx.save(q, k, v, out, stats);
    stats.release();
    ctx.attrs.cfg = cfg;
    ctx.attrs.kind = kind;
    ctx.attrs.plan = plan;
    return out;
  },
  backward(ctx, gy) {
    const [q, k, v, out, stats] = ctx.saved;
    const cfg = ctx.attrs.cfg as Config;
    const kind = ctx.attrs.kind as FlashAttentionKernel;
    const plan = ctx.attrs.plan as WgPlan | null;
    const dtype = floatKernelType(`${OP}.backward`, q, k, v, gy) as KernelDType;
    const [ntok, hq, d] = q.shape;
    const hkv = k.shape[1];
    const device = q.device;
    const dq = Tensor.empty(q.shape, q.dtype, device);
    const dk = Tensor.empty(k.shape, k.dtype, device);
    const dv = Tensor.empty(v.shape, v.dtype, device);
    if (ntok > 0 && hq > 0) {
      const [qv, kv, vv, gv] = [asView(q), asView(k), asView(v), asView(gy)];
      const uniforms = new Uint8Array(params(hq, hkv, ntok, d, cfg, [qv.view, kv.view, vv.view, gv.view]));
      const lq = launch(device, kind, plan, 'dq', d, cfg.cu, hq);
      const lkv = launch(device, kind, plan, 'dkdv', d, cfg.cu, hkv);
      if (lq.count > 0) {
        device.dispatch({
          kernel: KERNELS[kind].kernel,
          entry: 'dq',
          constants: lq.constants,
          dtype,
          uniforms,
          buffers: [
            lq.table, qv.t.storage.buffer, kv.t.storage.buffer, vv.t.storage.buffer,
            out.storage.buffer, stats.storage.buffer, gv.t.storage.buffer, dq.storage.buffer,
          ],
          workgroups: lq.workgroups,
          label: `${OP}.backward`,
        });
        device.dispatch({
          kernel: KERNELS[kind].kernel,
          entry: 'dkdv',
          constants: lkv.constants,
          dtype,
          uniforms,
          buffers: [
            lkv.table, qv.t.storage.buffer, kv.t.storage.buffer, vv.t.storage.buffer,
            gv.t.storage.buffer, stats.storage.buffer, dk.storage.buffer, dv.storage.buffer,
          ],
          workgroups: lkv.workgroups,
          label: `${OP}.backward`,
        });
      }
      for (const x of [qv, kv, vv, gv]) if (x.copied) x.t.release();
    }
    return [q.requiresGrad ? dq : null, k.requiresGrad ? dk : null, v.requiresGrad ? dv : null];
  },
});

function validateCuSeqlens(cu: readonly number[] | Int32Array, ntok: number, q: Tensor): number[] {
  const arr = Array.from(cu);
  if (arr.length < 2) throw opError(OP, `cuSeqlens needs at least 2 entries ([0, …, T]), got [${arr.join(', ')}]`, q);
  for (const x of arr) {
    if (!Number.isInteger(x)) throw opError(OP, `cuSeqlens entries must be integers, got ${x} in [${arr.join(', ')}]`, q);
  }
  if (arr[0] !== 0) throw opError(OP, `cuSeqlens must start at 0, got ${arr[0]} (cuSeqlens [${arr.join(', ')}])`, q);
  for (let i = 1; i < arr.length; i++) {
    if (arr[i] < arr[i - 1]) {
      throw opError(
        OP,
        `cuSeqlens must be non-decreasing, but entry ${i} (${arr[i]}) < entry ${i - 1} (${arr[i - 1]}) in [${arr.join(', ')}]`,
        q,
      );
    }
  }
  if (arr[arr.length - 1] !== ntok) {
    throw opError(OP, `cuSeqlens must end at the token count T = ${ntok}, got ${arr[arr.length - 1]} (cuSeqlens [${arr.join(', ')}])`, q);
  }
  return arr;
}

/**
 * Scaled dot-product attention softmax(scale·q·kᵀ)·v per document and head, fused
 * (FlashAttention-2): q [T, Hq, D], k and v [T, Hkv, D] → [T, Hq, D]. Also accepts
 * [B, S, H, D] batches (B documents of length S; `cuSeqlens` is not allowed then).
 */
export function flashAttention(q: Tensor, k: Tensor, v: Tensor, opts: FlashAttentionOptions = {}): Tensor {
  if (q.rank === 4) {
    if (k.rank !== 4 || v.rank !== 4) {
      throw opError(OP, `q is 4-D [B, S, H, D], so k and v must be too (got ${fmtShape(k.shape)} and ${fmtShape(v.shape)})`, q, k, v);
    }
    if (opts.cuSeqlens) throw opError(OP, 'cuSeqlens applies to packed [T, H, D] inputs, not to 4-D [B, S, H, D] batches', q, k, v);
    const [bq, sq] = q.shape;
    if (k.shape[0] !== bq || k.shape[1] !== sq || v.shape[0] !== bq || v.shape[1] !== sq) {
      throw opError(OP, `batch and sequence dims of q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)} and v ${fmtShape(v.shape)} must agree`, q, k, v);
    }
    const cu = Array.from({ length: bq + 1 }, (_, i) => i * sq);
    const flat = (t: Tensor) => reshape(t, [bq * sq, t.shape[2], t.shape[3]]);
    const [q3, k3, v3] = [flat(q), flat(k), flat(v)];
    const o3 = flashAttention(q3, k3, v3, { ...opts, cuSeqlens: cu });
    const o = reshape(o3, q.shape);
    for (const t of [q3, k3, v3, o3]) t.release();
    return o;
  }
  if (q.rank !== 3 || k.rank !== 3 || v.rank !== 3) {
    throw opError(OP, `expects q [T, Hq, D], k and v [T, Hkv, D] (or 4-D [B, S, H, D]); got ranks ${q.rank}, ${k.rank}, ${v.rank}`, q, k, v);
  }
  const [ntok, hq, d] = q.shape;
  const [tk, hkv, dk] = k.shape;
  if (dk !== d) throw opError(OP, `head dims differ: q has D = ${d}, k has D = ${dk}`, q, k, v);
  if (v.shape[0] !== tk || v.shape[1] !== hkv || v.shape[2] !== dk) {
    throw opError(OP, `k ${fmtShape(k.shape)} and v ${fmtShape(v.shape)} must have the same shape`, q, k, v);
  }
  if (tk !== ntok) throw opError(OP, `q has ${ntok} tokens but k and v have ${tk}`, q, k, v);
  if (hkv === 0 || hq % hkv !== 0) {
    throw opError(OP, `query heads Hq = ${hq} must be a multiple of key/value heads Hkv = ${hkv}`, q, k, v);
  }
  if (d < 1 || d > MAX_HEAD_DIM) throw opError(OP, `head dim D = ${d} is not supported (1 ≤ D ≤ ${MAX_HEAD_DIM})`, q, k, v);
  if (q.dtype !== k.dtype || q.dtype !== v.dtype) {
    throw opError(OP, `dtypes differ (${q.dtype}, ${k.dtype}, ${v.dtype}); cast first`, q, k, v);
  }
  if (q.dtype !== 'f32') {
    // The kernels have an f16 variant (alias T), but lavapipe's LLVM needs minutes to compile
    // it; until that is fixed f16 callers cast to f32 around attention.
    throw opError(OP, `dtype ${q.dtype} is not supported yet (f32 only); cast q, k and v to f32`, q, k, v);
  }
  const cu = opts.cuSeqlens ? validateCuSeqlens(opts.cuSeqlens, ntok, q) : [0, ntok];
  const scale = opts.scale ?? 1 / Math.sqrt(d);
  if (!Number.isFinite(scale)) throw opError(OP, `scale must be finite, got ${scale}`, q);
  const cfg: Config = { causal: opts.causal ?? false, scale, cu };
  const rows = KERNELS[flashAttentionKernel(q.device)].rows;
  const blocks = rowBlocks(cu, rows);
  const maxGroups = q.device.limits.maxComputeWorkgroupsPerDimension;
  if (blocks > maxGroups) {
    throw opError(OP, `${blocks} row blocks of ${rows} exceed the ${maxGroups} workgroups per dimension`, q);
  }
  return flashAttentionOp(q, k, v, cfg);
}
