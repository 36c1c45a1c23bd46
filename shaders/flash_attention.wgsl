// Flash attention (FlashAttention-2 schedule) over packed variable-length sequences with
// grouped-query heads, forward and backward, never materialising the T×T score matrix.
//
// Layout: q [T, Hq, D], k/v [T, Hkv, D] as strided views (unit stride along D, any token and
// head strides, element offsets in the uniforms); outputs are contiguous. A block table lists
// the workgroups' row blocks as (document start, document length, first row in the
// document), so a block never straddles two documents and tokens never attend across them.
//
// Schedule (the `wg` schedule, for GPUs). A workgroup is NT = 128 invocations owning
// BR = 16·TR rows; invocation t is (row group rg = t / 8, key group kg = t % 8), so the 8
// invocations sharing rows are neighbouring lanes. Per tile of BC = 8·KT streamed rows:
//   load    the tile's K and V (dq: K, V; dkdv: Q, dO) rows are read once, coalesced
//           (consecutive invocations read consecutive elements), into workgroup memory
//           (row stride DP + 4 floats, so the score phase's column reads hit distinct banks);
//   score   each invocation accumulates a TR×KT register tile of S = Q·Kᵀ (and dP = dO·Vᵀ),
//           rows rg·TR + r, streamed rows kg + 8j, from vec4 reads of the block's own rows
//           (staged once per workgroup; a broadcast among the 8 lanes of a row group) and of
//           the tile;
//   softmax (forward) each invocation writes its TR partial row maxima; after a barrier it
//           reads the 8 partials of its rows, rescales its O and partial row sums and writes
//           P = exp2(S − m) to workgroup memory (the row sum l is reduced once, at the end);
//   value   each invocation accumulates a TR-row × 4·DV4-column register tile of O += P·V
//           (dQ += dS·K; dV += Pᵀ·dO and dK += dSᵀ·Q), columns 4·kg + 32·c, from vec4 reads.
// Three barriers per tile, none in non-uniform control flow, no subgroup operations. TR, KT
// and DV4 (the head-dim class: DP = 32·DV4 ≥ D) are override constants, chosen per entry
// point in src/ops/attention.ts so the workgroup memory fits the adapter's limit.
//
// Scores are kept in base 2: s = (scale·log2 e)·q·k, so p = exp2(s − lse2) where lse2 is the
// row's log2-sum-exp2, saved by the forward in `stats[0 .. T·Hq)`. The backward first runs
// `dq`, which also writes Dᵢ = rowsum(dOᵢ ∘ Oᵢ) to `stats[T·Hq .. 2·T·Hq)`, then `dkdv`,
// which sums over the query heads of a KV head's group itself: no atomics, deterministic.
alias T = f32;

override TR: u32 = 4u;    // rows per invocation: BR = 16·TR rows per workgroup (1, 2 or 4)
override KT: u32 = 2u;    // streamed rows per invocation per tile: BC = 8·KT (1, 2 or 4)
override DV4: u32 = 2u;   // head-dim class: DP = 32·DV4 ≥ D columns, DV4 vec4s per invocation

const NT: u32 = 128u;     // invocations per workgroup
override BR: u32 = 16u * TR;
override BC: u32 = 8u * KT;
override D4: u32 = 8u * DV4;     // vec4s per row of the block's own rows
override S4: u32 = D4 + 1u;      // padded row stride (vec4s) of streamed tiles
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
  d: u32,       // head dim D
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

// Workgroup memory (sizes in src/ops/attention.ts, wgSmemFloats, must match).
var<workgroup> own_a: array<vec4f, BR * D4>;   // the block's own rows: Q (forward, dq) or K (dkdv)
var<workgroup> own_b: array<vec4f, BR * D4>;   // dO (dq) or V (dkdv)
var<workgroup> til_a: array<vec4f, BC * S4>;   // streamed tile: K (forward, dq) or Q (dkdv)
var<workgroup> til_b: array<vec4f, BC * S4>;   // V (forward, dq) or dO (dkdv)
var<workgroup> pw: array<vec4f, BR * BC / 4u>; // P (forward, dkdv) or dS (dq), [BR][BC]
var<workgroup> dsw: array<vec4f, BR * BC / 4u>; // dS (dkdv)
var<workgroup> part: array<vec4f, BR * 2u>;    // per-row partials of the 8 key groups, [BR][8]
var<workgroup> tl: array<f32, BC>;             // dkdv: lse2 of the query tile
var<workgroup> td: array<f32, BC>;             // dkdv: Dᵢ of the query tile

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

// Columns c .. c+4 of row r (zero beyond D), one loader per buffer.
fn ld_q(b: Block, r: u32, c: u32, h: u32) -> vec4f {
  let base = row_at(p.q, b, r, h) + c;
  var x = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) { if (c + e < p.d) { x[e] = f32(qb[base + e]); } }
  return x;
}
fn ld_k(b: Block, r: u32, c: u32, h: u32) -> vec4f {
  let base = row_at(p.k, b, r, h) + c;
  var x = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) { if (c + e < p.d) { x[e] = f32(kb[base + e]); } }
  return x;
}
fn ld_v(b: Block, r: u32, c: u32, h: u32) -> vec4f {
  let base = row_at(p.v, b, r, h) + c;
  var x = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) { if (c + e < p.d) { x[e] = f32(vb[base + e]); } }
  return x;
}
fn ld_g(b: Block, r: u32, c: u32, h: u32) -> vec4f {
  let base = row_at(p.g, b, r, h) + c;
  var x = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) { if (c + e < p.d) { x[e] = f32(gb[base + e]); } }
  return x;
}
fn ld_g5(b: Block, r: u32, c: u32, h: u32) -> vec4f {
  let base = row_at(p.g, b, r, h) + c;
  var x = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) { if (c + e < p.d) { x[e] = f32(gb5[base + e]); } }
  return x;
}

fn hmax(a: vec4f) -> f32 { return max(max(a.x, a.y), max(a.z, a.w)); }
fn hsum(a: vec4f) -> f32 { return (a.x + a.y) + (a.z + a.w); }

// Passes of NT vec4s that load a BC × D4 tile (at most 8: KT = 4, DV4 = 4).
override PASSES: u32 = (BC * D4 + NT - 1u) / NT;
const MAXPASS: u32 = 8u;

@compute @workgroup_size(NT)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let b = block_of(wid.y);
  let h = wid.x;
  let hk = h / p.group;
  let kg = tid % 8u;
  let rg = tid / 8u;
  let nd4 = (p.d + 3u) / 4u;   // a uniform bound: the score loops stay loops (lavapipe compiles fast)

  for (var e = tid; e < BR * D4; e += NT) {
    own_a[e] = ld_q(b, b.row0 + e / D4, (e % D4) * 4u, h);
  }
  var o: array<array<vec4f, 4>, 4>;    // [TR][DV4]
  var m: array<f32, 4>;
  var l: array<f32, 4>;                // this invocation's share of the row sums
  for (var r = 0u; r < TR; r++) {
    m[r] = MASKED;
    l[r] = 0.0;
    for (var c = 0u; c < DV4; c++) { o[r][c] = vec4f(0.0); }
  }

  let kend = select(b.len, min(b.row0 + BR, b.len), p.causal != 0u);
  for (var kt = 0u; kt < kend; kt += BC) {
    // ---- load: K tile to workgroup memory now, V tile to registers (stored after the scores)
    var vr: array<vec4f, MAXPASS>;
    for (var i = 0u; i < PASSES; i++) {
      let e = tid + NT * i;
      if (e < BC * D4) {
        let r = e / D4;
        let c = e % D4;
        til_a[r * S4 + c] = ld_k(b, kt + r, c * 4u, hk);
        vr[i] = ld_v(b, kt + r, c * 4u, hk);
      }
    }
    workgroupBarrier();   // B1: K tile (and, first time, the Q block) visible
    // ---- score: S[TR×KT] = Q·Kᵀ
    var s: array<array<f32, 4>, 4>;
    for (var r = 0u; r < TR; r++) { for (var j = 0u; j < KT; j++) { s[r][j] = 0.0; } }
    for (var d4 = 0u; d4 < nd4; d4++) {
      var kv: array<vec4f, 4>;
      for (var j = 0u; j < KT; j++) { kv[j] = til_a[(kg + 8u * j) * S4 + d4]; }
      for (var r = 0u; r < TR; r++) {
        let qv = own_a[(rg * TR + r) * D4 + d4];
        for (var j = 0u; j < KT; j++) { s[r][j] += dot(qv, kv[j]); }
      }
    }
    for (var r = 0u; r < TR; r++) {
      let i = b.row0 + rg * TR + r;
      var mx = MASKED;
      for (var j = 0u; j < KT; j++) {
        let key = kt + kg + 8u * j;
        let ok = key < b.len && (p.causal == 0u || key <= i);
        s[r][j] = select(MASKED, s[r][j] * p.scale2, ok);
        mx = max(mx, s[r][j]);
      }
      part[(rg * TR + r) * 2u + kg / 4u][kg % 4u] = mx;
    }
    for (var i = 0u; i < PASSES; i++) {
      let e = tid + NT * i;
      if (e < BC * D4) { til_b[(e / D4) * S4 + e % D4] = vr[i]; }
    }
    workgroupBarrier();   // B2: partial maxima and V tile visible
    // ---- softmax: new row max, rescale, P to workgroup memory
    for (var r = 0u; r < TR; r++) {
      let row = rg * TR + r;
      let mx = max(hmax(part[row * 2u]), hmax(part[row * 2u + 1u]));
      let mn = max(m[r], mx);
      let corr = exp2(m[r] - mn);
      m[r] = mn;
      var sum = 0.0;
      for (var j = 0u; j < KT; j++) {
        let e = exp2(s[r][j] - mn);
        sum += e;
        let f = row * BC + kg + 8u * j;
        pw[f / 4u][f % 4u] = e;
      }
      l[r] = l[r] * corr + sum;
      for (var c = 0u; c < DV4; c++) { o[r][c] *= corr; }
    }
    workgroupBarrier();   // B3: P visible
    // ---- value: O[TR×4·DV4] += P·V
    for (var c4 = 0u; c4 < BC / 4u; c4++) {
      var pv: array<vec4f, 4>;
      for (var r = 0u; r < TR; r++) { pv[r] = pw[(rg * TR + r) * (BC / 4u) + c4]; }
      for (var cc = 0u; cc < 4u; cc++) {
        let key = c4 * 4u + cc;
        for (var c = 0u; c < DV4; c++) {
          let x = til_b[key * S4 + kg + 8u * c];
          for (var r = 0u; r < TR; r++) { o[r][c] = fma(vec4f(pv[r][cc]), x, o[r][c]); }
        }
      }
    }
  }
  // Row sums: reduce the 8 key groups' shares (part was last read before the loop's B3).
  for (var r = 0u; r < TR; r++) { part[(rg * TR + r) * 2u + kg / 4u][kg % 4u] = l[r]; }
  workgroupBarrier();
  for (var r = 0u; r < TR; r++) {
    let row = rg * TR + r;
    let i = b.row0 + row;
    if (i < b.len) {
      let lt = hsum(part[row * 2u]) + hsum(part[row * 2u + 1u]);
      if (kg == 0u) { stats[(b.start + i) * p.hq + h] = m[r] + log2(lt); }
      let inv = 1.0 / lt;
      let base = ((b.start + i) * p.hq + h) * p.d;
      for (var c = 0u; c < DV4; c++) {
        let col = (kg + 8u * c) * 4u;
        let x = o[r][c] * inv;
        for (var e = 0u; e < 4u; e++) {
          if (col + e < p.d) { ob[base + col + e] = T(x[e]); }
        }
      }
    }
  }
}

// dQ = scale · Σⱼ dSᵢⱼ kⱼ with dSᵢⱼ = Pᵢⱼ (dPᵢⱼ − Dᵢ), dPᵢⱼ = dOᵢ·vⱼ; also writes Dᵢ.
@compute @workgroup_size(NT)
fn dq(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let b = block_of(wid.y);
  let h = wid.x;
  let hk = h / p.group;
  let kg = tid % 8u;
  let rg = tid / 8u;
  let nd4 = (p.d + 3u) / 4u;   // a uniform bound: the score loops stay loops (lavapipe compiles fast)

  for (var e = tid; e < BR * D4; e += NT) {
    let r = b.row0 + e / D4;
    let c = (e % D4) * 4u;
    own_a[e] = ld_q(b, r, c, h);
    own_b[e] = ld_g(b, r, c, h);
  }
  // Dᵢ: this invocation's share of rows rg·TR + r (its columns), reduced through `part`.
  var lse: array<f32, 4>;
  var di: array<f32, 4>;
  for (var r = 0u; r < TR; r++) {
    let i = min(b.row0 + rg * TR + r, b.len - 1u);
    let srow = (b.start + i) * p.hq + h;
    lse[r] = stats[srow];
    var acc = 0.0;
    for (var c = 0u; c < DV4; c++) {
      let col = (kg + 8u * c) * 4u;
      let g = ld_g(b, i, col, h);
      var ov = vec4f(0.0);
      for (var e = 0u; e < 4u; e++) { if (col + e < p.d) { ov[e] = f32(o_in[srow * p.d + col + e]); } }
      acc += dot(g, ov);
    }
    part[(rg * TR + r) * 2u + kg / 4u][kg % 4u] = acc;
  }
  var acc_q: array<array<vec4f, 4>, 4>;
  for (var r = 0u; r < TR; r++) { for (var c = 0u; c < DV4; c++) { acc_q[r][c] = vec4f(0.0); } }
  workgroupBarrier();
  for (var r = 0u; r < TR; r++) {
    let row = rg * TR + r;
    di[r] = hsum(part[row * 2u]) + hsum(part[row * 2u + 1u]);
    let i = b.row0 + row;
    if (kg == 0u && i < b.len) { stats[p.ntok * p.hq + (b.start + i) * p.hq + h] = di[r]; }
  }

  let kend = select(b.len, min(b.row0 + BR, b.len), p.causal != 0u);
  for (var kt = 0u; kt < kend; kt += BC) {
    workgroupBarrier();   // B0: the previous tile's value phase is done with the K tile and dS
    for (var i = 0u; i < PASSES; i++) {
      let e = tid + NT * i;
      if (e < BC * D4) {
        let r = e / D4;
        let c = e % D4;
        til_a[r * S4 + c] = ld_k(b, kt + r, c * 4u, hk);
        til_b[r * S4 + c] = ld_v(b, kt + r, c * 4u, hk);
      }
    }
    workgroupBarrier();   // B1: K and V tiles visible
    var s: array<array<f32, 4>, 4>;
    var dp: array<array<f32, 4>, 4>;
    for (var r = 0u; r < TR; r++) { for (var j = 0u; j < KT; j++) { s[r][j] = 0.0; dp[r][j] = 0.0; } }
    for (var d4 = 0u; d4 < nd4; d4++) {
      var kv: array<vec4f, 4>;
      var vv: array<vec4f, 4>;
      for (var j = 0u; j < KT; j++) {
        kv[j] = til_a[(kg + 8u * j) * S4 + d4];
        vv[j] = til_b[(kg + 8u * j) * S4 + d4];
      }
      for (var r = 0u; r < TR; r++) {
        let qv = own_a[(rg * TR + r) * D4 + d4];
        let gv = own_b[(rg * TR + r) * D4 + d4];
        for (var j = 0u; j < KT; j++) {
          s[r][j] += dot(qv, kv[j]);
          dp[r][j] += dot(gv, vv[j]);
        }
      }
    }
    for (var r = 0u; r < TR; r++) {
      let row = rg * TR + r;
      let i = b.row0 + row;
      for (var j = 0u; j < KT; j++) {
        let key = kt + kg + 8u * j;
        let ok = key < b.len && (p.causal == 0u || key <= i);
        let pr = select(0.0, exp2(s[r][j] * p.scale2 - lse[r]), ok);
        let f = row * BC + kg + 8u * j;
        pw[f / 4u][f % 4u] = pr * (dp[r][j] - di[r]);
      }
    }
    workgroupBarrier();   // B2: dS visible
    for (var c4 = 0u; c4 < BC / 4u; c4++) {
      var dsv: array<vec4f, 4>;
      for (var r = 0u; r < TR; r++) { dsv[r] = pw[(rg * TR + r) * (BC / 4u) + c4]; }
      for (var cc = 0u; cc < 4u; cc++) {
        let key = c4 * 4u + cc;
        for (var c = 0u; c < DV4; c++) {
          let x = til_a[key * S4 + kg + 8u * c];
          for (var r = 0u; r < TR; r++) { acc_q[r][c] = fma(vec4f(dsv[r][cc]), x, acc_q[r][c]); }
        }
      }
    }
  }
  for (var r = 0u; r < TR; r++) {
    let i = b.row0 + rg * TR + r;
    if (i < b.len) {
      let base = ((b.start + i) * p.hq + h) * p.d;
      for (var c = 0u; c < DV4; c++) {
        let col = (kg + 8u * c) * 4u;
        let x = acc_q[r][c] * p.scale;
        for (var e = 0u; e < 4u; e++) {
          if (col + e < p.d) { dqb[base + col + e] = T(x[e]); }
        }
      }
    }
  }
}

// dK = scale · Σᵢ dSᵢⱼ qᵢ and dV = Σᵢ Pᵢⱼ dOᵢ, summed over the query heads of the group.
// The workgroup owns BR key rows (own_a = K, own_b = V); query rows stream BC at a time.
@compute @workgroup_size(NT)
fn dkdv(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let b = block_of(wid.y);
  let hk = wid.x;
  let kg = tid % 8u;       // score phase: queries kg + 8j of the tile
  let rg = tid / 8u;       // key rows rg·TR + r
  let nd4 = (p.d + 3u) / 4u;

  for (var e = tid; e < BR * D4; e += NT) {
    let r = b.row0 + e / D4;
    let c = (e % D4) * 4u;
    own_a[e] = ld_k(b, r, c, hk);
    own_b[e] = ld_v(b, r, c, hk);
  }
  var acc_k: array<array<vec4f, 4>, 4>;
  var acc_v: array<array<vec4f, 4>, 4>;
  for (var r = 0u; r < TR; r++) {
    for (var c = 0u; c < DV4; c++) { acc_k[r][c] = vec4f(0.0); acc_v[r][c] = vec4f(0.0); }
  }
  // Causal: query rows before this block's first key never see it.
  let qstart = select(0u, b.row0, p.causal != 0u);
  for (var gi = 0u; gi < p.group; gi++) {
    let h = hk * p.group + gi;
    for (var qt = qstart; qt < b.len; qt += BC) {
      workgroupBarrier();   // B0: the previous tile is fully consumed
      for (var i = 0u; i < PASSES; i++) {
        let e = tid + NT * i;
        if (e < BC * D4) {
          let r = e / D4;
          let c = e % D4;
          til_a[r * S4 + c] = ld_q(b, qt + r, c * 4u, h);
          til_b[r * S4 + c] = ld_g5(b, qt + r, c * 4u, h);
        }
      }
      if (tid < BC) {
        let srow = (b.start + min(qt + tid, b.len - 1u)) * p.hq + h;
        tl[tid] = stats_in[srow];
        td[tid] = stats_in[p.ntok * p.hq + srow];
      }
      workgroupBarrier();   // B1: query tile visible
      // Sᵀ and dPᵀ [TR keys × KT queries]
      var s: array<array<f32, 4>, 4>;
      var dp: array<array<f32, 4>, 4>;
      for (var r = 0u; r < TR; r++) { for (var j = 0u; j < KT; j++) { s[r][j] = 0.0; dp[r][j] = 0.0; } }
      for (var d4 = 0u; d4 < nd4; d4++) {
        var qv: array<vec4f, 4>;
        var gv: array<vec4f, 4>;
        for (var j = 0u; j < KT; j++) {
          qv[j] = til_a[(kg + 8u * j) * S4 + d4];
          gv[j] = til_b[(kg + 8u * j) * S4 + d4];
        }
        for (var r = 0u; r < TR; r++) {
          let kv = own_a[(rg * TR + r) * D4 + d4];
          let vv = own_b[(rg * TR + r) * D4 + d4];
          for (var j = 0u; j < KT; j++) {
            s[r][j] += dot(kv, qv[j]);
            dp[r][j] += dot(vv, gv[j]);
          }
        }
      }
      for (var j = 0u; j < KT; j++) {
        let qi = kg + 8u * j;
        let i = qt + qi;
        let lse = tl[qi];
        let di = td[qi];
        for (var r = 0u; r < TR; r++) {
          let row = rg * TR + r;
          let key = b.row0 + row;
          let ok = i < b.len && (p.causal == 0u || i >= key);
          let pr = select(0.0, exp2(s[r][j] * p.scale2 - lse), ok);
          let f = row * BC + qi;
          pw[f / 4u][f % 4u] = pr;
          dsw[f / 4u][f % 4u] = pr * (dp[r][j] - di);
        }
      }
      workgroupBarrier();   // B2: Pᵀ and dSᵀ visible
      for (var c4 = 0u; c4 < BC / 4u; c4++) {
        var pv: array<vec4f, 4>;
        var dsv: array<vec4f, 4>;
        for (var r = 0u; r < TR; r++) {
          pv[r] = pw[(rg * TR + r) * (BC / 4u) + c4];
          dsv[r] = dsw[(rg * TR + r) * (BC / 4u) + c4];
        }
        for (var cc = 0u; cc < 4u; cc++) {
          let qi = c4 * 4u + cc;
          for (var c = 0u; c < DV4; c++) {
            let xq = til_a[qi * S4 + kg + 8u * c];
            let xg = til_b[qi * S4 + kg + 8u * c];
            for (var r = 0u; r < TR; r++) {
              acc_k[r][c] = fma(vec4f(dsv[r][cc]), xq, acc_k[r][c]);
              acc_v[r][c] = fma(vec4f(pv[r][cc]), xg, acc_v[r][c]);
            }
          }
        }
      }
    }
  }
  for (var r = 0u; r < TR; r++) {
    let j = b.row0 + rg * TR + r;
    if (j < b.len) {
      let base = ((b.start + j) * p.hkv + hk) * p.d;
      for (var c = 0u; c < DV4; c++) {
        let col = (kg + 8u * c) * 4u;
        let xk = acc_k[r][c] * p.scale;
        let xv = acc_v[r][c];
        for (var e = 0u; e < 4u; e++) {
          if (col + e < p.d) {
            dkb[base + col + e] = T(xk[e]);
            dvb[base + col + e] = T(xv[e]);
          }
        }
      }
    }
  }
}
