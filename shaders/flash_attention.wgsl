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

// Value-phase columns per invocation: 4·DT ≥ D. One pipeline serves every head dim of its
// class (DT = 8: D ≤ 32, 16: D ≤ 64, 32: D ≤ 128); D itself and causality are uniforms.
override DT: u32 = 16u;

const NT: u32 = 64u;    // invocations per workgroup
const BR: u32 = 64u;    // rows owned by a workgroup
const BC: u32 = 32u;    // streamed rows per tile = NT / RG · TC
const TC: u32 = 8u;     // register tile columns (score phase)
const PT: u32 = BR * BC;
const TR: u32 = 4u;     // register tile rows
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
  d: u32,       // head dim D (a uniform, so reduction loops over it stay loops)
  causal: u32,
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

var<workgroup> pt: array<f32, PT>;    // P (forward, dkdv) or dS (dq)
var<workgroup> dst: array<f32, PT>;   // dS (dkdv)
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

  let q0 = row_at(p.q, b, b.row0 + rg * TR + 0u, h);
  let q1 = row_at(p.q, b, b.row0 + rg * TR + 1u, h);
  let q2 = row_at(p.q, b, b.row0 + rg * TR + 2u, h);
  let q3 = row_at(p.q, b, b.row0 + rg * TR + 3u, h);
  var vcol: array<u32, DTMAX>;
  for (var j = 0u; j < DT; j++) { vcol[j] = min(cg * DT + j, p.d - 1u); }
  var o: array<array<f32, DTMAX>, TR>;
  for (var r = 0u; r < TR; r++) { for (var j = 0u; j < DT; j++) { o[r][j] = 0.0; } }
  // Row phase state: invocation tid owns row tid.
  let myrow = b.row0 + tid;
  var m = MASKED;
  var l = 0.0;

  let kend = select(b.len, min(b.row0 + BR, b.len), p.causal != 0u);
  for (var kt = 0u; kt < kend; kt += BC) {
    workgroupBarrier();   // the previous tile's value phase is done with pt
    // ---- score phase: S[4×8] = Q·Kᵀ; column c of the tile is the vec4 a_c over the 4 rows
    let k0 = row_at(p.k, b, kt + cg * TC + 0u, hk);
    let k1 = row_at(p.k, b, kt + cg * TC + 1u, hk);
    let k2 = row_at(p.k, b, kt + cg * TC + 2u, hk);
    let k3 = row_at(p.k, b, kt + cg * TC + 3u, hk);
    let k4 = row_at(p.k, b, kt + cg * TC + 4u, hk);
    let k5 = row_at(p.k, b, kt + cg * TC + 5u, hk);
    let k6 = row_at(p.k, b, kt + cg * TC + 6u, hk);
    let k7 = row_at(p.k, b, kt + cg * TC + 7u, hk);
    var a0 = vec4f(0.0); var a1 = vec4f(0.0); var a2 = vec4f(0.0); var a3 = vec4f(0.0);
    var a4 = vec4f(0.0); var a5 = vec4f(0.0); var a6 = vec4f(0.0); var a7 = vec4f(0.0);
    for (var d = 0u; d < p.d; d++) {
      let qv = vec4f(f32(qb[q0 + d]), f32(qb[q1 + d]), f32(qb[q2 + d]), f32(qb[q3 + d]));
      a0 = fma(qv, vec4f(f32(kb[k0 + d])), a0);
      a1 = fma(qv, vec4f(f32(kb[k1 + d])), a1);
      a2 = fma(qv, vec4f(f32(kb[k2 + d])), a2);
      a3 = fma(qv, vec4f(f32(kb[k3 + d])), a3);
      a4 = fma(qv, vec4f(f32(kb[k4 + d])), a4);
      a5 = fma(qv, vec4f(f32(kb[k5 + d])), a5);
      a6 = fma(qv, vec4f(f32(kb[k6 + d])), a6);
      a7 = fma(qv, vec4f(f32(kb[k7 + d])), a7);
    }
    workgroupBarrier();   // the previous tile's value phase is done with pt
    {
      let c0 = cg * TC;
      let r0 = rg * TR;
      var okm = array<vec4f, 8>();
      for (var c = 0u; c < TC; c++) {
        let j = kt + c0 + c;
        for (var r = 0u; r < TR; r++) {
          let i = b.row0 + r0 + r;
          okm[c][r] = select(0.0, 1.0, j < b.len && (p.causal == 0u || j <= i));
        }
      }
      let acc = array<vec4f, 8>(a0, a1, a2, a3, a4, a5, a6, a7);
      for (var c = 0u; c < TC; c++) {
        let sv = select(vec4f(MASKED), acc[c] * p.scale2, okm[c] > vec4f(0.5));
        for (var r = 0u; r < TR; r++) { pt[(r0 + r) * BC + c0 + c] = sv[r]; }
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
      let base = ((b.start + i) * p.hq + h) * p.d;
      for (var j = 0u; j < DT; j++) {
        let d = cg * DT + j;
        if (d < p.d) { ob[base + d] = T(o[r][j] * inv); }
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
    let obase = ((b.start + min(myrow, b.len - 1u)) * p.hq + h) * p.d;
    var di = 0.0;
    for (var d = 0u; d < p.d; d++) { di = fma(f32(gb[gbase + d]), f32(o_in[obase + d]), di); }
    let srow = (b.start + min(myrow, b.len - 1u)) * p.hq + h;
    rowa[tid] = stats[srow];
    rowb[tid] = di;
    if (myrow < b.len) { stats[p.ntok * p.hq + srow] = di; }
  }
  let q0 = row_at(p.q, b, b.row0 + rg * TR + 0u, h);
  let q1 = row_at(p.q, b, b.row0 + rg * TR + 1u, h);
  let q2 = row_at(p.q, b, b.row0 + rg * TR + 2u, h);
  let q3 = row_at(p.q, b, b.row0 + rg * TR + 3u, h);
  let g0 = row_at(p.g, b, b.row0 + rg * TR + 0u, h);
  let g1 = row_at(p.g, b, b.row0 + rg * TR + 1u, h);
  let g2 = row_at(p.g, b, b.row0 + rg * TR + 2u, h);
  let g3 = row_at(p.g, b, b.row0 + rg * TR + 3u, h);
  var kcol: array<u32, DTMAX>;
  for (var j = 0u; j < DT; j++) { kcol[j] = min(cg * DT + j, p.d - 1u); }
  var acc_q: array<array<f32, DTMAX>, TR>;
  for (var r = 0u; r < TR; r++) { for (var j = 0u; j < DT; j++) { acc_q[r][j] = 0.0; } }
  workgroupBarrier();
  var lse: array<f32, TR>;
  var dii: array<f32, TR>;
  for (var r = 0u; r < TR; r++) { lse[r] = rowa[rg * TR + r]; dii[r] = rowb[rg * TR + r]; }

  let kend = select(b.len, min(b.row0 + BR, b.len), p.causal != 0u);
  for (var kt = 0u; kt < kend; kt += BC) {
    // S and dP tiles [4×8]: column c is the vec4 over the 4 rows
    var kr: array<u32, 8>;
    var vr: array<u32, 8>;
    for (var c = 0u; c < 8u; c++) {
      kr[c] = row_at(p.k, b, kt + cg * TC + c, hk);
      vr[c] = row_at(p.v, b, kt + cg * TC + c, hk);
    }
    let k0 = kr[0]; let k1 = kr[1]; let k2 = kr[2]; let k3 = kr[3]; let k4 = kr[4]; let k5 = kr[5]; let k6 = kr[6]; let k7 = kr[7];
    let v0 = vr[0]; let v1 = vr[1]; let v2 = vr[2]; let v3 = vr[3]; let v4 = vr[4]; let v5 = vr[5]; let v6 = vr[6]; let v7 = vr[7];
    var a0 = vec4f(0.0); var a1 = vec4f(0.0); var a2 = vec4f(0.0); var a3 = vec4f(0.0);
    var a4 = vec4f(0.0); var a5 = vec4f(0.0); var a6 = vec4f(0.0); var a7 = vec4f(0.0);
    var e0 = vec4f(0.0); var e1 = vec4f(0.0); var e2 = vec4f(0.0); var e3 = vec4f(0.0);
    var e4 = vec4f(0.0); var e5 = vec4f(0.0); var e6 = vec4f(0.0); var e7 = vec4f(0.0);
    for (var d = 0u; d < p.d; d++) {
      let qv = vec4f(f32(qb[q0 + d]), f32(qb[q1 + d]), f32(qb[q2 + d]), f32(qb[q3 + d]));
      let gv = vec4f(f32(gb[g0 + d]), f32(gb[g1 + d]), f32(gb[g2 + d]), f32(gb[g3 + d]));
      a0 = fma(qv, vec4f(f32(kb[k0 + d])), a0);
      a1 = fma(qv, vec4f(f32(kb[k1 + d])), a1);
      a2 = fma(qv, vec4f(f32(kb[k2 + d])), a2);
      a3 = fma(qv, vec4f(f32(kb[k3 + d])), a3);
      a4 = fma(qv, vec4f(f32(kb[k4 + d])), a4);
      a5 = fma(qv, vec4f(f32(kb[k5 + d])), a5);
      a6 = fma(qv, vec4f(f32(kb[k6 + d])), a6);
      a7 = fma(qv, vec4f(f32(kb[k7 + d])), a7);
      e0 = fma(gv, vec4f(f32(vb[v0 + d])), e0);
      e1 = fma(gv, vec4f(f32(vb[v1 + d])), e1);
      e2 = fma(gv, vec4f(f32(vb[v2 + d])), e2);
      e3 = fma(gv, vec4f(f32(vb[v3 + d])), e3);
      e4 = fma(gv, vec4f(f32(vb[v4 + d])), e4);
      e5 = fma(gv, vec4f(f32(vb[v5 + d])), e5);
      e6 = fma(gv, vec4f(f32(vb[v6 + d])), e6);
      e7 = fma(gv, vec4f(f32(vb[v7 + d])), e7);
    }
    workgroupBarrier();
    {
      let sacc = array<vec4f, 8>(a0, a1, a2, a3, a4, a5, a6, a7);
      let pacc = array<vec4f, 8>(e0, e1, e2, e3, e4, e5, e6, e7);
      for (var c = 0u; c < 8u; c++) {
        let j = kt + cg * TC + c;
        let sv = sacc[c];
        let pv = pacc[c];
        for (var r = 0u; r < TR; r++) {
          let i = b.row0 + rg * TR + r;
          let ok = j < b.len && (p.causal == 0u || j <= i);
          let pr = select(0.0, exp2(sv[r] * p.scale2 - lse[r]), ok);
          pt[(rg * TR + r) * BC + cg * TC + c] = pr * (pv[r] - dii[r]);
        }
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
      let base = ((b.start + i) * p.hq + h) * p.d;
      for (var j = 0u; j < DT; j++) {
        let d = cg * DT + j;
        if (d < p.d) { dqb[base + d] = T(acc_q[r][j] * p.scale); }
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

  let k0 = row_at(p.k, b, b.row0 + rg * TR + 0u, hk);
  let k1 = row_at(p.k, b, b.row0 + rg * TR + 1u, hk);
  let k2 = row_at(p.k, b, b.row0 + rg * TR + 2u, hk);
  let k3 = row_at(p.k, b, b.row0 + rg * TR + 3u, hk);
  let v0 = row_at(p.v, b, b.row0 + rg * TR + 0u, hk);
  let v1 = row_at(p.v, b, b.row0 + rg * TR + 1u, hk);
  let v2 = row_at(p.v, b, b.row0 + rg * TR + 2u, hk);
  let v3 = row_at(p.v, b, b.row0 + rg * TR + 3u, hk);
  var col: array<u32, DTMAX>;
  for (var j = 0u; j < DT; j++) { col[j] = min(cg * DT + j, p.d - 1u); }
  var acc_k: array<array<f32, DTMAX>, TR>;
  var acc_v: array<array<f32, DTMAX>, TR>;
  for (var r = 0u; r < TR; r++) {
    for (var j = 0u; j < DT; j++) { acc_k[r][j] = 0.0; acc_v[r][j] = 0.0; }
  }
  // Causal: query rows before this block's first key never see it.
  let qstart = select(0u, b.row0, p.causal != 0u);
  for (var gi = 0u; gi < p.group; gi++) {
    let h = hk * p.group + gi;
    for (var qt = qstart; qt < b.len; qt += BC) {
      workgroupBarrier();   // the previous tile is fully consumed
      if (tid < BC) {
        let s = (b.start + min(qt + tid, b.len - 1u)) * p.hq + h;
        rowa[tid] = stats_in[s];
        rowb[tid] = stats_in[p.ntok * p.hq + s];
      }
      // Sᵀ and dPᵀ tiles [4 keys × 8 queries]: column c is the vec4 over the 4 keys
      var qr: array<u32, 8>;
      var gr: array<u32, 8>;
      for (var c = 0u; c < 8u; c++) {
        qr[c] = row_at(p.q, b, qt + cg * TC + c, h);
        gr[c] = row_at(p.g, b, qt + cg * TC + c, h);
      }
      let q0 = qr[0]; let q1 = qr[1]; let q2 = qr[2]; let q3 = qr[3]; let q4 = qr[4]; let q5 = qr[5]; let q6 = qr[6]; let q7 = qr[7];
      let g0 = gr[0]; let g1 = gr[1]; let g2 = gr[2]; let g3 = gr[3]; let g4 = gr[4]; let g5 = gr[5]; let g6 = gr[6]; let g7 = gr[7];
      var a0 = vec4f(0.0); var a1 = vec4f(0.0); var a2 = vec4f(0.0); var a3 = vec4f(0.0);
      var a4 = vec4f(0.0); var a5 = vec4f(0.0); var a6 = vec4f(0.0); var a7 = vec4f(0.0);
      var e0 = vec4f(0.0); var e1 = vec4f(0.0); var e2 = vec4f(0.0); var e3 = vec4f(0.0);
      var e4 = vec4f(0.0); var e5 = vec4f(0.0); var e6 = vec4f(0.0); var e7 = vec4f(0.0);
      for (var d = 0u; d < p.d; d++) {
        let kv = vec4f(f32(kb[k0 + d]), f32(kb[k1 + d]), f32(kb[k2 + d]), f32(kb[k3 + d]));
        let vv = vec4f(f32(vb[v0 + d]), f32(vb[v1 + d]), f32(vb[v2 + d]), f32(vb[v3 + d]));
        a0 = fma(kv, vec4f(f32(qb[q0 + d])), a0);
        a1 = fma(kv, vec4f(f32(qb[q1 + d])), a1);
        a2 = fma(kv, vec4f(f32(qb[q2 + d])), a2);
        a3 = fma(kv, vec4f(f32(qb[q3 + d])), a3);
        a4 = fma(kv, vec4f(f32(qb[q4 + d])), a4);
        a5 = fma(kv, vec4f(f32(qb[q5 + d])), a5);
        a6 = fma(kv, vec4f(f32(qb[q6 + d])), a6);
        a7 = fma(kv, vec4f(f32(qb[q7 + d])), a7);
        e0 = fma(vv, vec4f(f32(gb5[g0 + d])), e0);
        e1 = fma(vv, vec4f(f32(gb5[g1 + d])), e1);
        e2 = fma(vv, vec4f(f32(gb5[g2 + d])), e2);
        e3 = fma(vv, vec4f(f32(gb5[g3 + d])), e3);
        e4 = fma(vv, vec4f(f32(gb5[g4 + d])), e4);
        e5 = fma(vv, vec4f(f32(gb5[g5 + d])), e5);
        e6 = fma(vv, vec4f(f32(gb5[g6 + d])), e6);
        e7 = fma(vv, vec4f(f32(gb5[g7 + d])), e7);
      }
      workgroupBarrier();   // rowa/rowb staged
      {
        let sacc = array<vec4f, 8>(a0, a1, a2, a3, a4, a5, a6, a7);
        let pacc = array<vec4f, 8>(e0, e1, e2, e3, e4, e5, e6, e7);
        for (var c = 0u; c < 8u; c++) {
          let ci = cg * TC + c;
          let i = qt + ci;
          let lse = rowa[ci];
          let di = rowb[ci];
          let sv = sacc[c];
          let pv = pacc[c];
          for (var r = 0u; r < TR; r++) {
            let j = b.row0 + rg * TR + r;
            let ok = i < b.len && (p.causal == 0u || i >= j);
            let pr = select(0.0, exp2(sv[r] * p.scale2 - lse), ok);
            pt[(rg * TR + r) * BC + ci] = pr;
            dst[(rg * TR + r) * BC + ci] = pr * (pv[r] - di);
          }
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
      let base = ((b.start + j) * p.hkv + hk) * p.d;
      for (var jj = 0u; jj < DT; jj++) {
        let d = cg * DT + jj;
        if (d < p.d) {
          dkb[base + d] = T(acc_k[r][jj] * p.scale);
          dvb[base + d] = T(acc_v[r][jj]);
        }
      }
    }
  }
}
