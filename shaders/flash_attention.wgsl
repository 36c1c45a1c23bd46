// Flash attention (FlashAttention-2 schedule) over packed variable-length sequences with
// grouped-query heads, forward and backward, never materialising the T×T score matrix.
//
// Layout: q [T, Hq, D], k/v [T, Hkv, D] as strided views (unit stride along D, any token and
// head strides, element offsets in the uniforms); outputs are contiguous. A block table lists
// the workgroups' row blocks as (document start, document length, first row in the
// document), so a block never straddles two documents and tokens never attend across them.
//
// Schedule of one workgroup (NT = 64 invocations, BR = 64 rows, BC = 32 streamed rows):
//   score phase   each invocation computes a 4×8 register tile of S = Q·Kᵀ (and of dP = dO·Vᵀ
//                 in the backward) by a loop over D with direct loads — like the blocked
//                 matmul: 12 loads feed 32 FMAs — and writes P (or dS) to workgroup memory;
//   row phase     (forward) invocation i owns row i's running max m and sum l (online
//                 softmax) and turns its row of scores into probabilities;
//   value phase   each invocation accumulates a 4-row × DT-column register tile of O += P·V
//                 (or dQ += dS·K, dV += Pᵀ·dO and dK += dSᵀ·Q), reading P from workgroup memory.
// On lavapipe (CPU SIMD, per-lane loads scalarised) register blocking is what pays; the
// reduction loops run over uniform bounds so the compiler never unrolls them into huge code.
//
// Scores are kept in base 2: s = (scale·log2 e)·q·k, so p = exp2(s − lse2) where lse2 is the
// row's log2-sum-exp2, saved by the forward in `stats[0 .. T·Hq)`. The backward first runs
// `dq`, which also writes Dᵢ = rowsum(dOᵢ ∘ Oᵢ) to `stats[T·Hq .. 2·T·Hq)`, then `dkdv`,
// which sums over the query heads of a KV head's group itself: no atomics, deterministic.
alias T = f32;

override D: u32 = 64u;          // head dim, ≤ 128
override CAUSAL: bool = false;
override DT: u32 = (D + 3u) / 4u;   // value-phase columns per invocation

const NT: u32 = 64u;    // invocations per workgroup
const BR: u32 = 64u;    // rows owned by a workgroup
const BC: u32 = 32u;    // streamed rows per tile
const TR: u32 = 4u;     // register tile rows
const TC: u32 = 8u;     // register tile columns (score phase)
const RG: u32 = 16u;    // BR / TR row groups
const DTMAX: u32 = 32u;
// A finite stand-in for −∞: exp2(MASKED − m) is exactly 0 and nothing becomes NaN.
const MASKED: f32 = -1.0e30;

struct View {
  off: u32,
  ts: u32,   // token stride
  hs: u32,   // head stride
  _pad: u32,
}

struct Params {
  hq: u32,
  hkv: u32,
  group: u32,   // hq / hkv
  ntok: u32,    // T
  scale2: f32,  // scale · log2(e)
  scale: f32,
  d: u32,       // = D (a uniform, so reduction loops over it stay loops)
  _b: u32,
  q: View,
  k: View,
  v: View,
  g: View,      // dO
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> blocks: array<u32>;
@group(0) @binding(2) var<storage, read> qb: array<T>;
@group(0) @binding(3) var<storage, read> kb: array<T>;
@group(0) @binding(4) var<storage, read> vb: array<T>;
// forward
@group(0) @binding(5) var<storage, read_write> ob: array<T>;
@group(0) @binding(6) var<storage, read_write> stats: array<f32>;
// dq (also binding 6 = stats)
@group(0) @binding(5) var<storage, read> o_in: array<T>;
@group(0) @binding(7) var<storage, read> gb: array<T>;
@group(0) @binding(8) var<storage, read_write> dqb: array<T>;
// dkdv
@group(0) @binding(5) var<storage, read> gb5: array<T>;
@group(0) @binding(6) var<storage, read> stats_in: array<f32>;
@group(0) @binding(7) var<storage, read_write> dkb: array<T>;
@group(0) @binding(8) var<storage, read_write> dvb: array<T>;

var<workgroup> pt: array<f32, BR * BC>;    // P (forward, dkdv) or dS (dq)
var<workgroup> dst: array<f32, BR * BC>;   // dS (dkdv)
var<workgroup> rowa: array<f32, BR>;       // forward: correction / 1/l; dq: lse2; dkdv: lse2 of the query tile
var<workgroup> rowb: array<f32, BR>;       // dq: Dᵢ; dkdv: Dᵢ of the query tile

struct Block {
  start: u32,  // first token of the document
  len: u32,    // document length
  row0: u32,   // first row of this block within the document
}

fn block_of(i: u32) -> Block {
  return Block(blocks[4u * i], blocks[4u * i + 1u], blocks[4u * i + 2u]);
}

// Element offset of row r (clamped into the document) of a view, head h.
fn row_at(v: View, b: Block, r: u32, h: u32) -> u32 {
  return v.off + (b.start + min(r, b.len - 1u)) * v.ts + h * v.hs;
}

@compute @workgroup_size(NT)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let b = block_of(wid.x);
  let h = wid.y;
  let hk = h / p.group;
  let rg = tid % RG;       // row group: rows rg·4 .. +4 of the block
  let cg = tid / RG;       // score phase: keys cg·8 .. +8 of the tile; value phase: columns cg·DT .. +DT

  var qrow: array<u32, TR>;
  for (var r = 0u; r < TR; r++) { qrow[r] = row_at(p.q, b, b.row0 + rg * TR + r, h); }
  var vcol: array<u32, DTMAX>;
  for (var j = 0u; j < DT; j++) { vcol[j] = min(cg * DT + j, D - 1u); }
  var o: array<array<f32, DTMAX>, TR>;
  for (var r = 0u; r < TR; r++) { for (var j = 0u; j < DT; j++) { o[r][j] = 0.0; } }
  // Row phase state: invocation tid owns row tid.
  let myrow = b.row0 + tid;
  var m = MASKED;
  var l = 0.0;

  let kend = select(b.len, min(b.row0 + BR, b.len), CAUSAL);
  for (var kt = 0u; kt < kend; kt += BC) {
    // ---- score phase: S[4×8] = Q·Kᵀ
    var krow: array<u32, TC>;
    for (var c = 0u; c < TC; c++) { krow[c] = row_at(p.k, b, kt + cg * TC + c, hk); }
    var acc: array<array<f32, TC>, TR>;
    for (var r = 0u; r < TR; r++) { for (var c = 0u; c < TC; c++) { acc[r][c] = 0.0; } }
    for (var d = 0u; d < p.d; d++) {
      var qv: array<f32, TR>;
      for (var r = 0u; r < TR; r++) { qv[r] = f32(qb[qrow[r] + d]); }
      var kv: array<f32, TC>;
      for (var c = 0u; c < TC; c++) { kv[c] = f32(kb[krow[c] + d]); }
      for (var r = 0u; r < TR; r++) {
        for (var c = 0u; c < TC; c++) { acc[r][c] = fma(qv[r], kv[c], acc[r][c]); }
      }
    }
    workgroupBarrier();   // the previous tile's value phase is done with pt
    for (var r = 0u; r < TR; r++) {
      let i = b.row0 + rg * TR + r;
      for (var c = 0u; c < TC; c++) {
        let j = kt + cg * TC + c;
        let ok = j < b.len && (!CAUSAL || j <= i);
        pt[(rg * TR + r) * BC + cg * TC + c] = select(MASKED, acc[r][c] * p.scale2, ok);
      }
    }
    workgroupBarrier();
    // ---- row phase: online softmax of row tid
    var mx = MASKED;
    for (var c = 0u; c < BC; c++) { mx = max(mx, pt[tid * BC + c]); }
    let mn = max(m, mx);
    let corr = exp2(m - mn);
    var ps = 0.0;
    for (var c = 0u; c < BC; c++) {
      let e = exp2(pt[tid * BC + c] - mn);
      pt[tid * BC + c] = e;
      ps += e;
    }
    l = l * corr + ps;
    m = mn;
    rowa[tid] = corr;
    workgroupBarrier();
    // ---- value phase: O[4×DT] = O·corr + P·V
    for (var r = 0u; r < TR; r++) {
      let cr = rowa[rg * TR + r];
      for (var j = 0u; j < DT; j++) { o[r][j] *= cr; }
    }
    let cn = min(BC, kend - kt);
    for (var c = 0u; c < cn; c++) {
      var pv: array<f32, TR>;
      for (var r = 0u; r < TR; r++) { pv[r] = pt[(rg * TR + r) * BC + c]; }
      let vrow = row_at(p.v, b, kt + c, hk);
      for (var j = 0u; j < DT; j++) {
        let x = f32(vb[vrow + vcol[j]]);
        for (var r = 0u; r < TR; r++) { o[r][j] = fma(pv[r], x, o[r][j]); }
      }
    }
  }
  workgroupBarrier();
  if (myrow < b.len) { stats[(b.start + myrow) * p.hq + h] = m + log2(l); }
  rowa[tid] = 1.0 / l;
  workgroupBarrier();
  for (var r = 0u; r < TR; r++) {
    let i = b.row0 + rg * TR + r;
    if (i < b.len) {
      let inv = rowa[rg * TR + r];
      let base = ((b.start + i) * p.hq + h) * D;
      for (var j = 0u; j < DT; j++) {
        let d = cg * DT + j;
        if (d < D) { ob[base + d] = T(o[r][j] * inv); }
      }
    }
  }
}

// dQ = scale · Σⱼ dSᵢⱼ kⱼ with dSᵢⱼ = Pᵢⱼ (dPᵢⱼ − Dᵢ), dPᵢⱼ = dOᵢ·vⱼ; also writes Dᵢ.
@compute @workgroup_size(NT)
fn dq(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let b = block_of(wid.x);
  let h = wid.y;
  let hk = h / p.group;
  let rg = tid % RG;
  let cg = tid / RG;

  // Dᵢ and lse2 of row tid.
  {
    let myrow = b.row0 + tid;
    let gbase = row_at(p.g, b, myrow, h);
    let obase = ((b.start + min(myrow, b.len - 1u)) * p.hq + h) * D;
    var di = 0.0;
    for (var d = 0u; d < p.d; d++) { di = fma(f32(gb[gbase + d]), f32(o_in[obase + d]), di); }
    let srow = (b.start + min(myrow, b.len - 1u)) * p.hq + h;
    rowa[tid] = stats[srow];
    rowb[tid] = di;
    if (myrow < b.len) { stats[p.ntok * p.hq + srow] = di; }
  }
  var qrow: array<u32, TR>;
  var grow: array<u32, TR>;
  for (var r = 0u; r < TR; r++) {
    qrow[r] = row_at(p.q, b, b.row0 + rg * TR + r, h);
    grow[r] = row_at(p.g, b, b.row0 + rg * TR + r, h);
  }
  var kcol: array<u32, DTMAX>;
  for (var j = 0u; j < DT; j++) { kcol[j] = min(cg * DT + j, D - 1u); }
  var acc_q: array<array<f32, DTMAX>, TR>;
  for (var r = 0u; r < TR; r++) { for (var j = 0u; j < DT; j++) { acc_q[r][j] = 0.0; } }
  workgroupBarrier();
  var lse: array<f32, TR>;
  var dii: array<f32, TR>;
  for (var r = 0u; r < TR; r++) { lse[r] = rowa[rg * TR + r]; dii[r] = rowb[rg * TR + r]; }

  let kend = select(b.len, min(b.row0 + BR, b.len), CAUSAL);
  for (var kt = 0u; kt < kend; kt += BC) {
    var krow: array<u32, TC>;
    var vrow: array<u32, TC>;
    for (var c = 0u; c < TC; c++) {
      krow[c] = row_at(p.k, b, kt + cg * TC + c, hk);
      vrow[c] = row_at(p.v, b, kt + cg * TC + c, hk);
    }
    var sa: array<array<f32, TC>, TR>;
    var pa: array<array<f32, TC>, TR>;
    for (var r = 0u; r < TR; r++) { for (var c = 0u; c < TC; c++) { sa[r][c] = 0.0; pa[r][c] = 0.0; } }
    for (var d = 0u; d < p.d; d++) {
      var qv: array<f32, TR>;
      var gv: array<f32, TR>;
      for (var r = 0u; r < TR; r++) { qv[r] = f32(qb[qrow[r] + d]); gv[r] = f32(gb[grow[r] + d]); }
      var kv: array<f32, TC>;
      var vv: array<f32, TC>;
      for (var c = 0u; c < TC; c++) { kv[c] = f32(kb[krow[c] + d]); vv[c] = f32(vb[vrow[c] + d]); }
      for (var r = 0u; r < TR; r++) {
        for (var c = 0u; c < TC; c++) {
          sa[r][c] = fma(qv[r], kv[c], sa[r][c]);
          pa[r][c] = fma(gv[r], vv[c], pa[r][c]);
        }
      }
    }
    workgroupBarrier();
    for (var r = 0u; r < TR; r++) {
      let i = b.row0 + rg * TR + r;
      for (var c = 0u; c < TC; c++) {
        let j = kt + cg * TC + c;
        let ok = j < b.len && (!CAUSAL || j <= i);
        let pr = select(0.0, exp2(sa[r][c] * p.scale2 - lse[r]), ok);
        pt[(rg * TR + r) * BC + cg * TC + c] = pr * (pa[r][c] - dii[r]);
      }
    }
    workgroupBarrier();
    let cn = min(BC, kend - kt);
    for (var c = 0u; c < cn; c++) {
      var dsv: array<f32, TR>;
      for (var r = 0u; r < TR; r++) { dsv[r] = pt[(rg * TR + r) * BC + c]; }
      let kr = row_at(p.k, b, kt + c, hk);
      for (var j = 0u; j < DT; j++) {
        let x = f32(kb[kr + kcol[j]]);
        for (var r = 0u; r < TR; r++) { acc_q[r][j] = fma(dsv[r], x, acc_q[r][j]); }
      }
    }
  }
  for (var r = 0u; r < TR; r++) {
    let i = b.row0 + rg * TR + r;
    if (i < b.len) {
      let base = ((b.start + i) * p.hq + h) * D;
      for (var j = 0u; j < DT; j++) {
        let d = cg * DT + j;
        if (d < D) { dqb[base + d] = T(acc_q[r][j] * p.scale); }
      }
    }
  }
}

// dK = scale · Σᵢ dSᵢⱼ qᵢ and dV = Σᵢ Pᵢⱼ dOᵢ, summed over the query heads of the group.
// The workgroup owns BR key rows; query rows stream BC at a time.
@compute @workgroup_size(NT)
fn dkdv(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let b = block_of(wid.x);
  let hk = wid.y;
  let rg = tid % RG;       // key rows rg·4 .. +4
  let cg = tid / RG;       // score phase: queries cg·8 .. +8; value phase: columns cg·DT .. +DT

  var krow: array<u32, TR>;
  var vrow: array<u32, TR>;
  for (var r = 0u; r < TR; r++) {
    krow[r] = row_at(p.k, b, b.row0 + rg * TR + r, hk);
    vrow[r] = row_at(p.v, b, b.row0 + rg * TR + r, hk);
  }
  var col: array<u32, DTMAX>;
  for (var j = 0u; j < DT; j++) { col[j] = min(cg * DT + j, D - 1u); }
  var acc_k: array<array<f32, DTMAX>, TR>;
  var acc_v: array<array<f32, DTMAX>, TR>;
  for (var r = 0u; r < TR; r++) {
    for (var j = 0u; j < DT; j++) { acc_k[r][j] = 0.0; acc_v[r][j] = 0.0; }
  }
  // Causal: query rows before this block's first key never see it.
  let qstart = select(0u, b.row0, CAUSAL);
  for (var gi = 0u; gi < p.group; gi++) {
    let h = hk * p.group + gi;
    for (var qt = qstart; qt < b.len; qt += BC) {
      workgroupBarrier();   // the previous tile is fully consumed
      if (tid < BC) {
        let s = (b.start + min(qt + tid, b.len - 1u)) * p.hq + h;
        rowa[tid] = stats_in[s];
        rowb[tid] = stats_in[p.ntok * p.hq + s];
      }
      var qrow: array<u32, TC>;
      var grow: array<u32, TC>;
      for (var c = 0u; c < TC; c++) {
        qrow[c] = row_at(p.q, b, qt + cg * TC + c, h);
        grow[c] = row_at(p.g, b, qt + cg * TC + c, h);
      }
      var sa: array<array<f32, TC>, TR>;
      var pa: array<array<f32, TC>, TR>;
      for (var r = 0u; r < TR; r++) { for (var c = 0u; c < TC; c++) { sa[r][c] = 0.0; pa[r][c] = 0.0; } }
      for (var d = 0u; d < p.d; d++) {
        var kv: array<f32, TR>;
        var vv: array<f32, TR>;
        for (var r = 0u; r < TR; r++) { kv[r] = f32(kb[krow[r] + d]); vv[r] = f32(vb[vrow[r] + d]); }
        var qv: array<f32, TC>;
        var gv: array<f32, TC>;
        for (var c = 0u; c < TC; c++) { qv[c] = f32(qb[qrow[c] + d]); gv[c] = f32(gb5[grow[c] + d]); }
        for (var r = 0u; r < TR; r++) {
          for (var c = 0u; c < TC; c++) {
            sa[r][c] = fma(kv[r], qv[c], sa[r][c]);
            pa[r][c] = fma(vv[r], gv[c], pa[r][c]);
          }
        }
      }
      workgroupBarrier();   // rowa/rowb staged
      for (var c = 0u; c < TC; c++) {
        let ci = cg * TC + c;
        let i = qt + ci;
        let lse = rowa[ci];
        let di = rowb[ci];
        for (var r = 0u; r < TR; r++) {
          let j = b.row0 + rg * TR + r;
          let ok = i < b.len && (!CAUSAL || i >= j);
          let pr = select(0.0, exp2(sa[r][c] * p.scale2 - lse), ok);
          pt[(rg * TR + r) * BC + ci] = pr;
          dst[(rg * TR + r) * BC + ci] = pr * (pa[r][c] - di);
        }
      }
      workgroupBarrier();
      let cn = min(BC, b.len - qt);
      for (var c = 0u; c < cn; c++) {
        var pv: array<f32, TR>;
        var dsv: array<f32, TR>;
        for (var r = 0u; r < TR; r++) {
          pv[r] = pt[(rg * TR + r) * BC + c];
          dsv[r] = dst[(rg * TR + r) * BC + c];
        }
        let qr = row_at(p.q, b, qt + c, h);
        let gr = row_at(p.g, b, qt + c, h);
        for (var j = 0u; j < DT; j++) {
          let xq = f32(qb[qr + col[j]]);
          let xg = f32(gb5[gr + col[j]]);
          for (var r = 0u; r < TR; r++) {
            acc_k[r][j] = fma(dsv[r], xq, acc_k[r][j]);
            acc_v[r][j] = fma(pv[r], xg, acc_v[r][j]);
          }
        }
      }
    }
  }
  for (var r = 0u; r < TR; r++) {
    let j = b.row0 + rg * TR + r;
    if (j < b.len) {
      let base = ((b.start + j) * p.hkv + hk) * D;
      for (var jj = 0u; jj < DT; jj++) {
        let d = cg * DT + jj;
        if (d < D) {
          dkb[base + d] = T(acc_k[r][jj] * p.scale);
          dvb[base + d] = T(acc_v[r][jj]);
        }
      }
    }
  }
}
