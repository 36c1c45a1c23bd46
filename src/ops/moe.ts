// Mixture-of-experts ops: top-k routing, the dropless dispatch plan, row permutation,
// the grouped GEMM and the weighted combine — every step on the GPU, and no step needs
// the per-expert token counts on the host (so a layer never waits for a readback).
//
// Layout. T tokens each pick k experts: assignment a = t·k + j (j-th choice of token t).
// The N = T·k assignments are stable-sorted by expert (counting sort: histogram + prefix
// sum + scatter, shaders/sort.wgsl), giving the permuted order: row q of the permuted
// activations holds assignment order[q], and expert e owns rows [offsets[e], offsets[e+1]).
// Equal experts keep token order, so the plan is deterministic. inv (a → q) is the inverse
// permutation; every backward scatter is a gather through it (no atomics).
//
// Expert weights are stacked tensors in PyTorch Linear layout per expert: gate_up
// [E, 2F, D] (rows 0..F-1 the gate, F..2F-1 the up projection) and down [E, D, F], so
// `groupedMatmul(x, w, plan)` computes x_q · w_eᵀ for each row q of expert e.
//
// Grouped GEMM launch without host sync: the plan also holds a tile table built on the GPU
// (≤ BM rows of one expert per tile). The grid has the worst-case number of tiles,
// ceil(N / BM) + E; tiles past the real count exit immediately.

import { Tensor, fmtShape } from '../tensor/tensor.ts';
import { defineOp, opError, NON_DIFFERENTIABLE } from './registry.ts';
import { contiguousK, floatKernelType } from './kernels.ts';
import { grid1d } from './launch.ts';
import { argsortStable } from './indexing.ts';
import type { Device } from '../device/index.ts';

/** Rows per grouped-GEMM tile (8 rows per thread × WGY). */
export const MOE_TILE_ROWS = 32;
const GEMM_WG = { WGX: 8, WGY: MOE_TILE_ROWS / 8 };
const MAX_EXPERTS = 1024;

/** The dispatch plan of one MoE layer call. All tensors live on the GPU. */
export interface MoePlan {
  numTokens: number;
  topK: number;
  numExperts: number;
  /** N = numTokens · topK permuted rows. */
  rows: number;
  /** Slots of the tile table (worst case): ceil(N / MOE_TILE_ROWS) + E. */
  maxTiles: number;
  /** u32 [N]: assignment a = t·k + j held by permuted row q. */
  order: Tensor;
  /** u32 [N]: expert of each permuted row (sorted ascending). */
  expertOfRow: Tensor;
  /** u32 [N]: permuted row of each assignment (inverse of order). */
  inv: Tensor;
  /** u32 [N]: source token of each permuted row (order[q] / k). */
  rowToken: Tensor;
  /** u32 [E + 1]: first permuted row of each expert; offsets[E] = N. */
  offsets: Tensor;
  /** f32 [E]: tokens routed to each expert (assignments, so Σ = N). */
  tokensPerExpert: Tensor;
  /** u32 [maxTiles, 4]: (expert, row0, row1, 0) per grouped-GEMM tile; expert 0xffffffff = unused. */
  tiles: Tensor;
}

/** A contiguous view (maybe at an offset) of `t`, and whether it is a temporary copy. */
function dense(t: Tensor): { t: Tensor; tmp: boolean } {
  return t.isContiguous ? { t, tmp: false } : { t: contiguousK(t), tmp: true };
}

function u32s(...v: number[]): Uint32Array {
  const u = new Uint32Array(Math.ceil(v.length / 4) * 4);
  u.set(v);
  return u;
}

function checkPlan(op: string, plan: MoePlan): void {
  for (const t of [plan.order, plan.inv, plan.rowToken, plan.offsets, plan.tiles, plan.tokensPerExpert]) t.assertAlive(op);
}

// ------------------------------------------------------------------ routing

/**
 * Top-k experts per token: indices i32 [T, k] of the k largest scores of each row of
 * scores [T, E] (f32), in descending score order; ties go to the lower expert index.
 * Not differentiable (use `topkGather` for the selected scores).
 */
export const moeTopK: (scores: Tensor, k: number) => Tensor = defineOp({
  name: 'moeTopK',
  forward(_ctx, scores: Tensor, k: number) {
    if (scores.rank !== 2) throw opError('moeTopK', 'scores must be [tokens, experts]', scores);
    if (scores.dtype !== 'f32') throw opError('moeTopK', 'scores must be f32', scores);
    const [T, E] = scores.shape;
    if (!Number.isInteger(k) || k < 1 || k > E) throw opError('moeTopK', `k = ${k} must be in [1, ${E}]`, scores);
    const s = dense(scores);
    const idx = Tensor.empty([T, k], 'i32', scores.device);
    if (T > 0) {
      scores.device.dispatch({
        kernel: 'moe_route',
        entry: 'topk',
        uniforms: u32s(T, E, k, s.t.offset, 0, 0, 0, 0),
        buffers: [s.t.storage.buffer, idx.storage.buffer],
        workgroups: grid1d(T, 64),
        label: 'moeTopK',
      });
    }
    if (s.tmp) s.t.release();
    return idx;
  },
  backward: NON_DIFFERENTIABLE,
});

function topkScatterK(dvals: Tensor, idx: Tensor, E: number): Tensor {
  const [T, k] = dvals.shape;
  const g = dense(dvals);
  const out = Tensor.empty([T, E], 'f32', dvals.device);
  if (T > 0) {
    dvals.device.dispatch({
      kernel: 'moe_route',
      entry: 'topk_scatter',
      uniforms: u32s(T, E, k, g.t.offset, 0, 0, idx.offset, 0),
      buffers: [g.t.storage.buffer, idx.storage.buffer, out.storage.buffer],
      workgroups: grid1d(T * E, 64),
      label: 'topkGather.backward',
    });
  }
  if (g.tmp) g.t.release();
  return out;
}

/**
 * vals[t, j] = scores[t, idx[t, j]] for scores [T, E] (f32) and idx [T, k] (i32): the
 * routing weights of the chosen experts. Backward scatters into a [T, E] gradient, one
 * thread per score (deterministic).
 */
export const topkGather: (scores: Tensor, idx: Tensor) => Tensor = defineOp({
  name: 'topkGather',
  forward(ctx, scores: Tensor, idx: Tensor) {
    if (scores.rank !== 2 || idx.rank !== 2 || idx.shape[0] !== scores.shape[0]) {
      throw opError('topkGather', 'scores must be [T, E] and idx [T, k]', scores, idx);
    }
    if (scores.dtype !== 'f32' || (idx.dtype !== 'i32' && idx.dtype !== 'u32')) throw opError('topkGather', 'scores f32, idx i32', scores, idx);
    const [T, E] = scores.shape;
    const k = idx.shape[1];
    const s = dense(scores);
    const id = dense(idx);
    const out = Tensor.empty([T, k], 'f32', scores.device);
    if (T > 0) {
      scores.device.dispatch({
        kernel: 'moe_route',
        entry: 'topk_gather',
        uniforms: u32s(T, E, k, s.t.offset, 0, 0, id.t.offset, 0),
        buffers: [s.t.storage.buffer, id.t.storage.buffer, out.storage.buffer],
        workgroups: grid1d(T * k, 64),
        label: 'topkGather',
      });
    }
    if (s.tmp) s.t.release();
    ctx.save(id.t);
    if (id.tmp) id.t.release();
    ctx.attrs.E = E;
    return out;
  },
  backward(ctx, gy) {
    return [topkScatterK(gy, ctx.saved[0], ctx.attrs.E as number), null];
  },
});

/**
 * The dispatch plan from the chosen experts idx [T, k] (i32, values in [0, E)): a
 * stable counting sort by expert, inverse permutation, row → token map, per-expert
 * offsets and token counts, and the grouped-GEMM tile table. ~6 dispatches, no readback.
 * The plan's tensors belong to the current scope (or the caller: see releaseMoePlan).
 */
export function moePlan(idx: Tensor, numExperts: number): MoePlan {
  if (idx.rank !== 2 || (idx.dtype !== 'i32' && idx.dtype !== 'u32')) throw opError('moePlan', 'expert indices must be i32 [T, k]', idx);
  if (!Number.isInteger(numExperts) || numExperts < 1 || numExperts > MAX_EXPERTS) {
    throw opError('moePlan', `numExperts = ${numExperts} must be in [1, ${MAX_EXPERTS}]`, idx);
  }
  const device = idx.device;
  const [T, k] = idx.shape;
  const N = T * k;
  const E = numExperts;
  const flat = idx.isContiguous ? idx.view([N], [1], idx.offset) : contiguousK(idx).view([N], [1], 0);
  const { sortedKeys, order } = argsortStable(flat, { maxKey: E });
  flat.release();
  const inv = Tensor.empty([N], 'u32', device);
  const rowToken = Tensor.empty([N], 'u32', device);
  const offsets = Tensor.empty([E + 1], 'u32', device);
  const counts = Tensor.empty([E], 'f32', device);
  const maxTiles = Math.ceil(N / MOE_TILE_ROWS) + E;
  if (maxTiles > 65535) throw opError('moePlan', `${N} routed rows need more than 65535 tiles; split the batch`, idx);
  const tiles = Tensor.empty([maxTiles, 4], 'u32', device);
  const uniforms = u32s(T, E, k, 0, N, maxTiles, 0, 0);
  if (N > 0) {
    device.dispatch({
      kernel: 'moe_route',
      entry: 'plan_rows',
      uniforms,
      buffers: [order.storage.buffer, inv.storage.buffer, rowToken.storage.buffer],
      workgroups: grid1d(N),
      label: 'moePlan',
    });
  }
  device.dispatch({
    kernel: 'moe_route',
    entry: 'plan_offsets',
    constants: { BM: MOE_TILE_ROWS },
    uniforms,
    buffers: [sortedKeys.storage.buffer, offsets.storage.buffer, counts.storage.buffer, tiles.storage.buffer],
    workgroups: [1],
    label: 'moePlan',
  });
  const plan: MoePlan = {
    numTokens: T,
    topK: k,
    numExperts: E,
    rows: N,
    maxTiles,
    order: asU32(order),
    expertOfRow: asU32(sortedKeys),
    inv,
    rowToken,
    offsets,
    tokensPerExpert: counts,
    tiles,
  };
  return plan;
}

/** The same storage viewed as u32 (counting-sort outputs are i32 with non-negative values). */
function asU32(t: Tensor): Tensor {
  if (t.dtype === 'u32') return t;
  const v = new Tensor(t.storage, t.shape, t.strides, t.offset, 'u32');
  t.release();
  return v;
}

/** Release a plan's tensors (when it was made outside a scope). */
export function releaseMoePlan(plan: MoePlan): void {
  for (const t of [plan.order, plan.expertOfRow, plan.inv, plan.rowToken, plan.offsets, plan.tokensPerExpert, plan.tiles]) t.release();
}

/** Host copy of the plan's counts (one readback): for expert-parallel splits and metrics. */
export async function readMoePlan(plan: MoePlan): Promise<{ tokensPerExpert: number[]; offsets: number[] }> {
  const offsets = Array.from(await plan.offsets.toArray());
  const tokensPerExpert = offsets.slice(1).map((o, e) => o - offsets[e]);
  return { tokensPerExpert, offsets };
}

// ------------------------------------------------------------------ data movement

type DataEntry = 'gather_sum' | 'gather_wsum' | 'gather_scaled' | 'row_dot';

function dataK(
  op: string,
  entry: DataEntry,
  device: Device,
  rows: number,
  d: number,
  kk: number,
  out: Tensor,
  x: Tensor,
  idx: Tensor,
  extra: { y?: Tensor; w?: Tensor; widx?: Tensor } = {},
): void {
  const total = entry === 'row_dot' ? rows : rows * d;
  if (total === 0) return;
  const dtype = floatKernelType(op, x, out);
  const buffers: GPUBuffer[] = [x.storage.buffer, idx.storage.buffer, out.storage.buffer];
  if (extra.y) buffers.push(extra.y.storage.buffer);
  if (extra.w) buffers.push(extra.w.storage.buffer);
  if (extra.widx) buffers.push(extra.widx.storage.buffer);
  if (idx.offset !== 0 || (extra.widx && extra.widx.offset !== 0)) throw opError(op, 'internal: index tensors must start at offset 0');
  device.dispatch({
    kernel: 'moe_data',
    entry,
    dtype,
    uniforms: u32s(rows, d, kk, x.offset, extra.y?.offset ?? 0, extra.w?.offset ?? 0, 0, 0),
    buffers,
    workgroups: grid1d(total),
    label: op,
  });
}

function checkRows(op: string, x: Tensor, rows: number, what: string): void {
  if (x.rank !== 2 || x.shape[0] !== rows) throw opError(op, `${what} must be [${rows}, D], got ${fmtShape(x.shape)}`, x);
}

/** out[r] = Σ_{j<kk} x[idx[r·kk + j]] over rows of width d. */
function gatherRows(op: string, x: Tensor, idx: Tensor, rows: number, kk: number): Tensor {
  const d = x.shape[1];
  const s = dense(x);
  const out = Tensor.empty([rows, d], x.dtype, x.device);
  dataK(op, 'gather_sum', x.device, rows, d, kk, out, s.t, idx);
  if (s.tmp) s.t.release();
  return out;
}

/**
 * Dispatch: x [T, D] → [N, D] rows in expert order (row q = token rowToken[q]; each token
 * appears k times). Backward: dx[t] = Σ_j g[inv[t·k + j]] (a gather, j ascending).
 */
export const moePermute: (x: Tensor, plan: MoePlan) => Tensor = defineOp({
  name: 'moePermute',
  forward(ctx, x: Tensor, plan: MoePlan) {
    checkPlan('moePermute', plan);
    checkRows('moePermute', x, plan.numTokens, 'x');
    ctx.attrs.plan = plan;
    ctx.save(plan.inv);
    return gatherRows('moePermute', x, plan.rowToken, plan.rows, 1);
  },
  backward(ctx, gy) {
    const plan = ctx.attrs.plan as MoePlan;
    return [gatherRows('moePermute.backward', gy, ctx.saved[0], plan.numTokens, plan.topK)];
  },
});

/**
 * The inverse permutation: yp [N, D] in expert order → [T·k, D] in assignment order
 * (row t·k + j = token t's j-th expert). unpermute(permute(x)) repeats each row of x k times.
 */
export const moeUnpermute: (yp: Tensor, plan: MoePlan) => Tensor = defineOp({
  name: 'moeUnpermute',
  forward(ctx, yp: Tensor, plan: MoePlan) {
    checkPlan('moeUnpermute', plan);
    checkRows('moeUnpermute', yp, plan.rows, 'yp');
    ctx.save(plan.order);
    ctx.attrs.rows = plan.rows;
    return gatherRows('moeUnpermute', yp, plan.inv, plan.rows, 1);
  },
  backward(ctx, gy) {
    return [gatherRows('moeUnpermute.backward', gy, ctx.saved[0], ctx.attrs.rows as number, 1)];
  },
});

/**
 * Combine: y[t] = Σ_j weights[t, j] · yp[inv[t·k + j]] for expert outputs yp [N, D] (expert
 * order) and routing weights [T, k]. Gradients: dyp[q] = w[order[q]] · dy[rowToken[q]];
 * dweights[t, j] = dy[t] · yp[inv[t·k + j]].
 */
export const moeCombine: (yp: Tensor, weights: Tensor, plan: MoePlan) => Tensor = defineOp({
  name: 'moeCombine',
  forward(ctx, yp: Tensor, weights: Tensor, plan: MoePlan) {
    checkPlan('moeCombine', plan);
    checkRows('moeCombine', yp, plan.rows, 'yp');
    if (weights.rank !== 2 || weights.shape[0] !== plan.numTokens || weights.shape[1] !== plan.topK) {
      throw opError('moeCombine', `weights must be [${plan.numTokens}, ${plan.topK}]`, yp, weights);
    }
    floatKernelType('moeCombine', yp, weights);
    const d = yp.shape[1];
    const y = dense(yp);
    const w = dense(weights);
    const out = Tensor.empty([plan.numTokens, d], yp.dtype, yp.device);
    dataK('moeCombine', 'gather_wsum', yp.device, plan.numTokens, d, plan.topK, out, y.t, plan.inv, { w: w.t });
    ctx.save(y.t, w.t, plan.inv, plan.order, plan.rowToken);
    if (y.tmp) y.t.release();
    if (w.tmp) w.t.release();
    ctx.attrs.plan = { rows: plan.rows, numTokens: plan.numTokens, topK: plan.topK };
    ctx.attrs.need = [yp.requiresGrad, weights.requiresGrad];
    return out;
  },
  backward(ctx, gy) {
    const [yp, w, inv, order, rowToken] = ctx.saved;
    const pl = ctx.attrs.plan as { rows: number; numTokens: number; topK: number };
    const d = yp.shape[1];
    const g = dense(gy);
    let gyp: Tensor | null = null;
    let gw: Tensor | null = null;
    const [needYp, needW] = ctx.attrs.need as [boolean, boolean];
    if (needYp) {
      gyp = Tensor.empty([pl.rows, d], yp.dtype, yp.device);
      dataK('moeCombine.backward', 'gather_scaled', yp.device, pl.rows, d, 1, gyp, g.t, rowToken, { w, widx: order });
    }
    if (needW) {
      gw = Tensor.empty([pl.numTokens, pl.topK], w.dtype, w.device);
      dataK('moeCombine.backward', 'row_dot', yp.device, pl.rows, d, pl.topK, gw, g.t, inv, { y: yp });
    }
    if (g.tmp) g.t.release();
    return [gyp, gw];
  },
});

// ------------------------------------------------------------------ grouped GEMM

interface GemmArgs {
  m: number;
  n: number;
  k: number;
  a: Tensor;
  saM: number;
  saK: number;
  b: Tensor;
  sbE: number;
  sbK: number;
  sbN: number;
  c: Tensor;
  scE: number;
  ldc: number;
}

type GemmEntry = 'gemm_rows' | 'gemm_wgrad' | 'rows4_nt' | 'rows4_nn' | 'wgrad4';

let vec4Enabled = true;
/** Use (default) or avoid the vec4 grouped-GEMM variants (tests and benchmarks). */
export function setMoeGemmVec4(on: boolean): void {
  vec4Enabled = on;
}

const m4 = (...v: number[]) => v.every((x) => x % 4 === 0);

/** The vec4 variant of a grouped GEMM when its operands allow 16-byte loads. */
function pickEntry(kind: 'rows' | 'wgrad', g: GemmArgs): GemmEntry {
  if (vec4Enabled) {
    if (kind === 'wgrad') {
      if (g.saK === 1 && g.sbN === 1 && m4(g.m, g.n, g.a.offset, g.b.offset, g.saM, g.sbK)) return 'wgrad4';
    } else if (g.saK === 1 && m4(g.k, g.a.offset, g.saM, g.b.offset, g.sbE)) {
      if (g.sbK === 1 && m4(g.sbN)) return 'rows4_nt';
      if (g.sbN === 1 && m4(g.n, g.sbK)) return 'rows4_nn';
    }
  }
  return kind === 'wgrad' ? 'gemm_wgrad' : 'gemm_rows';
}

function gemmK(op: string, kind: 'rows' | 'wgrad', g: GemmArgs, table: Tensor, grid: [number, number, number]): void {
  if (grid[0] === 0 || grid[1] === 0 || grid[2] === 0) return;
  const dtype = floatKernelType(op, g.a, g.b, g.c);
  g.a.device.dispatch({
    kernel: 'moe_gemm',
    entry: pickEntry(kind, g),
    constants: GEMM_WG,
    dtype,
    uniforms: u32s(g.m, g.n, g.k, g.a.offset, g.saM, g.saK, g.b.offset, g.sbE, g.sbK, g.sbN, g.c.offset, g.scE, g.ldc, 0, 0, 0),
    buffers: [g.a.storage.buffer, g.b.storage.buffer, g.c.storage.buffer, table.storage.buffer],
    workgroups: grid,
    label: op,
  });
}

/** C[q] = A[q] · B_e for each permuted row q of expert e; B_e = (k, n) view of w[e] given by strides. */
function groupedRowsK(op: string, a: Tensor, w: Tensor, sbK: number, sbN: number, n: number, plan: MoePlan): Tensor {
  const s = dense(a);
  const k = a.shape[1];
  const c = Tensor.empty([plan.rows, n], a.dtype, a.device);
  const cols = GEMM_WG.WGX * 8;
  gemmK(
    op,
    'rows',
    { m: plan.rows, n, k, a: s.t, saM: k, saK: 1, b: w, sbE: w.strides[0], sbK, sbN, c, scE: 0, ldc: n },
    plan.tiles,
    [Math.ceil(n / cols), plan.rows > 0 ? plan.maxTiles : 0, 1],
  );
  if (s.tmp) s.t.release();
  return c;
}

/**
 * Grouped matmul: y[q] = x[q] · w[e]ᵀ for every permuted row q of expert e, for all
 * experts in one launch. x [N, K] (expert order), w [E, Nout, K] (per-expert Linear
 * weights, any strides) → y [N, Nout]. Rows of experts with no tokens cost nothing.
 * Backward: dx by the same kernel with w[e] untransposed; dw[e] = dy_segᵀ · x_seg by the
 * grouped weight-gradient kernel (zeros for empty experts).
 */
export const groupedMatmul: (x: Tensor, w: Tensor, plan: MoePlan) => Tensor = defineOp({
  name: 'groupedMatmul',
  forward(ctx, x: Tensor, w: Tensor, plan: MoePlan) {
    checkPlan('groupedMatmul', plan);
    checkRows('groupedMatmul', x, plan.rows, 'x');
    if (w.rank !== 3 || w.shape[0] !== plan.numExperts || w.shape[2] !== x.shape[1]) {
      throw opError('groupedMatmul', `weights must be [${plan.numExperts}, out, ${x.shape[1]}]`, x, w);
    }
    floatKernelType('groupedMatmul', x, w);
    const xs = dense(x);
    const n = w.shape[1];
    const y = groupedRowsK('groupedMatmul', xs.t, w, w.strides[2], w.strides[1], n, plan);
    ctx.save(xs.t, w, plan.tiles, plan.offsets);
    if (xs.tmp) xs.t.release();
    ctx.attrs.meta = { rows: plan.rows, maxTiles: plan.maxTiles, numExperts: plan.numExperts };
    ctx.attrs.need = [x.requiresGrad, w.requiresGrad];
    return y;
  },
  backward(ctx, gy) {
    const [x, w, tiles, offsets] = ctx.saved;
    const meta = ctx.attrs.meta as { rows: number; maxTiles: number; numExperts: number };
    const planLike = { rows: meta.rows, maxTiles: meta.maxTiles, tiles } as MoePlan;
    const g = dense(gy);
    const [E, n, k] = w.shape;
    let gx: Tensor | null = null;
    let gw: Tensor | null = null;
    const [needX, needW] = ctx.attrs.need as [boolean, boolean];
    if (needX) {
      // dx[q] = dy[q] · w[e]: B_e[k'=out, n'=in] = w[e, out, in].
      gx = groupedRowsK('groupedMatmul.backward.dx', g.t, w, w.strides[1], w.strides[2], k, planLike);
    }
    if (needW) {
      gw = Tensor.empty([E, n, k], w.dtype, w.device);
      const tile = GEMM_WG.WGX * 8;
      const rowsT = GEMM_WG.WGY * 8;
      gemmK(
        'groupedMatmul.backward.dw',
        'wgrad',
        { m: n, n: k, k: meta.rows, a: g.t, saM: n, saK: 1, b: x, sbE: 0, sbK: k, sbN: 1, c: gw, scE: n * k, ldc: k },
        offsets,
        [Math.ceil(k / tile), Math.ceil(n / rowsT), E],
      );
    }
    if (g.tmp) g.t.release();
    return [gx, gw];
  },
});

// ------------------------------------------------------------------ router helpers

function rowsK(op: string, entry: string, x: Tensor, outShape: number[], grad?: Tensor): Tensor {
  if (x.rank !== 2 || x.dtype !== 'f32') throw opError(op, 'expects f32 [T, E]', x);
  const [T, E] = x.shape;
  const s = dense(x);
  const g = grad ? dense(grad) : null;
  const out = Tensor.empty(outShape, 'f32', x.device);
  if (T > 0 && E > 0) {
    x.device.dispatch({
      kernel: 'moe_route',
      entry,
      uniforms: u32s(T, E, 0, s.t.offset, 0, 0, g?.t.offset ?? 0, 0),
      buffers: g ? [s.t.storage.buffer, g.t.storage.buffer, out.storage.buffer] : [s.t.storage.buffer, out.storage.buffer],
      workgroups: grid1d(T, 64),
      label: op,
    });
  }
  if (s.tmp) s.t.release();
  if (g?.tmp) g.t.release();
  return out;
}

/**
 * Softmax over the last axis of router logits [T, E] (f32), one thread per token: for the
 * small E of a router, where the general softmax's workgroup per row idles most lanes.
 */
export const routerSoftmax: (logits: Tensor) => Tensor = defineOp({
  name: 'routerSoftmax',
  forward(ctx, logits: Tensor) {
    const y = rowsK('routerSoftmax', 'softmax_rows', logits, [...logits.shape]);
    ctx.save(y);
    return y;
  },
  backward(ctx, gy) {
    const y = ctx.saved[0];
    return [rowsK('routerSoftmax.backward', 'softmax_rows_bwd', y, [...y.shape], gy)];
  },
});

/** logsumexp of each row of router logits [T, E] → [T] (for the router z-loss). */
export const routerLogSumExp: (logits: Tensor) => Tensor = defineOp({
  name: 'routerLogSumExp',
  forward(ctx, logits: Tensor) {
    ctx.save(logits);
    return rowsK('routerLogSumExp', 'lse_rows', logits, [logits.shape[0]]);
  },
  backward(ctx, gy) {
    const x = ctx.saved[0];
    return [rowsK('routerLogSumExp.backward', 'lse_rows_bwd', x, [...x.shape], gy)];
  },
});

/**
 * SwiGLU of a fused gate/up projection: h [N, 2F] (gate = columns 0..F-1, up = F..2F-1) →
 * silu(gate) · up [N, F]. The backward writes dh [N, 2F] in one kernel (no zero-filled
 * halves to add).
 */
export const swigluFused: (h: Tensor) => Tensor = defineOp({
  name: 'swigluFused',
  forward(ctx, h: Tensor) {
    const dtype = floatKernelType('swigluFused', h);
    if (h.rank !== 2 || h.shape[1] % 2 !== 0) throw opError('swigluFused', 'expects [N, 2F]', h);
    const [N, F2] = h.shape;
    const F = F2 / 2;
    const s = dense(h);
    const out = Tensor.empty([N, F], h.dtype, h.device);
    if (N * F > 0) {
      h.device.dispatch({
        kernel: 'moe_data',
        entry: 'swiglu_fused',
        dtype,
        uniforms: u32s(N, F, 0, s.t.offset, 0, 0, 0, 0),
        buffers: [s.t.storage.buffer, out.storage.buffer],
        workgroups: grid1d(N * F),
        label: 'swigluFused',
      });
    }
    ctx.save(s.t);
    if (s.tmp) s.t.release();
    return out;
  },
  backward(ctx, gy) {
    const h = ctx.saved[0];
    const [N, F2] = h.shape;
    const F = F2 / 2;
    const g = dense(gy);
    const dh = Tensor.empty([N, F2], h.dtype, h.device);
    if (N * F > 0) {
      h.device.dispatch({
        kernel: 'moe_data',
        entry: 'swiglu_fused_bwd',
        dtype: floatKernelType('swigluFused.backward', h, gy),
        uniforms: u32s(N, F, 0, h.offset, g.t.offset, 0, 0, 0),
        buffers: [h.storage.buffer, g.t.storage.buffer, dh.storage.buffer],
        workgroups: grid1d(N * F),
        label: 'swigluFused.backward',
      });
    }
    if (g.tmp) g.t.release();
    return [dh];
  },
});
