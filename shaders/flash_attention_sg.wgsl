enable subgroups;
// Flash attention for CPU-SIMD adapters (lavapipe/llvmpipe): the same maths, parameters,
// bindings and block table as flash_attention.wgsl, scheduled for a machine where every
// storage or workgroup load whose address may differ per lane is a gather and every
// barrier is a coroutine switch.
//
// Why a second schedule: the workgroup-memory kernel spends ~1 load per 2–3 FMAs and three
// barriers per tile; on llvmpipe that made it slower than matmul + softmax + matmul. Here a
// workgroup is ONE subgroup of 8 lanes and there is no workgroup memory and no barrier:
//   score phase  16 query rows × 32 streamed keys. Lane l owns keys kt + l + 8j (j < 4) and
//                gathers their elements (4 gathers per d); the 16 query rows are gathered
//                as 2 values per lane and handed round with subgroupBroadcast (a register
//                shuffle): 6 gathers feed 64 FMAs, like the matmul_sg kernel.
//   softmax      a row's 32 scores live as one vec4 in each of the 8 lanes: the row max is
//                one subgroupMax; the running sum l stays a per-lane partial (the rescale
//                factor is uniform) and is summed once at the end.
//   value phase  lane l owns output columns l + 8c (c < DM); for each streamed key the
//                16 probabilities are broadcast from the lane that owns the key: 16
//                shuffles and DM gathers feed 16·DM FMAs.
// The source lane of subgroupBroadcast must be a constant, hence the eight spelled-out
// source lanes in the value phases.
//
// Correct for any subgroup size ≥ 8 (a workgroup of 8 is then one, possibly partial,
// subgroup); the dispatcher only picks it on software adapters with such subgroups.
alias T = f32;

// Output columns per lane: 8·DM ≥ D (DM = 4: D ≤ 32, 8: D ≤ 64, 16: D ≤ 128).
override DM: u32 = 8u;

const L: u32 = 8u;       // lanes = invocations per workgroup
const R: u32 = 16u;      // rows owned by a workgroup (queries in forward/dq, keys in dkdv)
const KT: u32 = 32u;     // streamed rows per tile: 4 per lane
const DMMAX: u32 = 16u;
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

// Offsets of four rows (clamped into the document) of a view, head h.
fn rows4(v: View, b: Block, r: vec4u, h: u32) -> vec4u {
  return vec4u(row_at(v, b, r.x, h), row_at(v, b, r.y, h), row_at(v, b, r.z, h), row_at(v, b, r.w, h));
}

alias Acc = array<array<f32, DMMAX>, R>;
alias Rows = array<f32, R>;
alias Cols = array<f32, DMMAX>;

// acc[r][c] += w[r] · x[c] for the 16 rows and this lane's columns.
fn rank1(acc: ptr<function, Acc>, w: Rows, x: Cols) {
  for (var r = 0u; r < R; r++) {
    let wr = w[r];
    for (var c = 0u; c < DM; c++) { (*acc)[r][c] = fma(wr, x[c], (*acc)[r][c]); }
  }
}

// Component j of each row's vec4 (the scores of key kt + 8j + lane).
fn column(s: array<vec4f, R>, j: u32) -> Rows {
  var w: Rows;
  for (var r = 0u; r < R; r++) { w[r] = s[r][j]; }
  return w;
}

// The value of row r (r < 8: a's lane r, else c's lane r − 8) in every lane.
fn rows_of(a: f32, c: f32) -> Rows {
  return Rows(
    subgroupBroadcast(a, 0u), subgroupBroadcast(a, 1u), subgroupBroadcast(a, 2u), subgroupBroadcast(a, 3u),
    subgroupBroadcast(a, 4u), subgroupBroadcast(a, 5u), subgroupBroadcast(a, 6u), subgroupBroadcast(a, 7u),
    subgroupBroadcast(c, 0u), subgroupBroadcast(c, 1u), subgroupBroadcast(c, 2u), subgroupBroadcast(c, 3u),
    subgroupBroadcast(c, 4u), subgroupBroadcast(c, 5u), subgroupBroadcast(c, 6u), subgroupBroadcast(c, 7u));
}

// acc[r] += (row r of (a, c)) · v for the 16 rows: one score-phase step of a register tile.
fn outer(acc: ptr<function, array<vec4f, R>>, a: f32, c: f32, v: vec4f) {
  let w = rows_of(a, c);
  for (var r = 0u; r < R; r++) { (*acc)[r] = fma(vec4f(w[r]), v, (*acc)[r]); }
}

// w broadcast from lane `src` (spelled out: the lane must be a constant).
fn from0(w: Rows) -> Rows { var y: Rows; for (var r = 0u; r < R; r++) { y[r] = subgroupBroadcast(w[r], 0u); } return y; }
fn from1(w: Rows) -> Rows { var y: Rows; for (var r = 0u; r < R; r++) { y[r] = subgroupBroadcast(w[r], 1u); } return y; }
fn from2(w: Rows) -> Rows { var y: Rows; for (var r = 0u; r < R; r++) { y[r] = subgroupBroadcast(w[r], 2u); } return y; }
fn from3(w: Rows) -> Rows { var y: Rows; for (var r = 0u; r < R; r++) { y[r] = subgroupBroadcast(w[r], 3u); } return y; }
fn from4(w: Rows) -> Rows { var y: Rows; for (var r = 0u; r < R; r++) { y[r] = subgroupBroadcast(w[r], 4u); } return y; }
fn from5(w: Rows) -> Rows { var y: Rows; for (var r = 0u; r < R; r++) { y[r] = subgroupBroadcast(w[r], 5u); } return y; }
fn from6(w: Rows) -> Rows { var y: Rows; for (var r = 0u; r < R; r++) { y[r] = subgroupBroadcast(w[r], 6u); } return y; }
fn from7(w: Rows) -> Rows { var y: Rows; for (var r = 0u; r < R; r++) { y[r] = subgroupBroadcast(w[r], 7u); } return y; }

fn load_cols_q(row: u32, cols: array<u32, DMMAX>) -> Cols {
  var x: Cols;
  for (var c = 0u; c < DM; c++) { x[c] = f32(qb[row + cols[c]]); }
  return x;
}
fn load_cols_k(row: u32, cols: array<u32, DMMAX>) -> Cols {
  var x: Cols;
  for (var c = 0u; c < DM; c++) { x[c] = f32(kb[row + cols[c]]); }
  return x;
}
fn load_cols_v(row: u32, cols: array<u32, DMMAX>) -> Cols {
  var x: Cols;
  for (var c = 0u; c < DM; c++) { x[c] = f32(vb[row + cols[c]]); }
  return x;
}
fn load_cols_g(row: u32, cols: array<u32, DMMAX>) -> Cols {
  var x: Cols;
  for (var c = 0u; c < DM; c++) { x[c] = f32(gb5[row + cols[c]]); }
  return x;
}

fn lane_cols(lane: u32) -> array<u32, DMMAX> {
  var cols: array<u32, DMMAX>;
  for (var c = 0u; c < DM; c++) { cols[c] = min(lane + L * c, p.d - 1u); }
  return cols;
}

// Whether key j is visible from query i (same document is given by the block).
fn visible4(keys: vec4u, i: u32, len: u32) -> vec4<bool> {
  return (keys < vec4u(len)) & ((vec4u(i) >= keys) | vec4<bool>(p.causal == 0u));
}

@compute @workgroup_size(L)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let b = block_of(wid.x);
  let h = wid.y;
  let hk = h / p.group;
  let qa = row_at(p.q, b, b.row0 + lane, h);
  let qc = row_at(p.q, b, b.row0 + L + lane, h);
  let cols = lane_cols(lane);
  var o: Acc;
  var m: Rows;
  var l: Rows;   // per-lane partial sums; m is uniform across lanes
  for (var r = 0u; r < R; r++) { m[r] = MASKED; }

  let kend = select(b.len, min(b.row0 + R, b.len), p.causal != 0u);
  for (var kt = 0u; kt < kend; kt += KT) {
    let keys = vec4u(kt + lane) + vec4u(0u, 8u, 16u, 24u);
    let kr = rows4(p.k, b, keys, hk);
    // An explicit initializer: declared without one inside the loop, the array was zeroed
    // only once, not per tile, on Dawn + lavapipe (found by the multi-tile tests).
    var s = array<vec4f, R>();
    for (var d = 0u; d < p.d; d++) {
      let kv = vec4f(f32(kb[kr.x + d]), f32(kb[kr.y + d]), f32(kb[kr.z + d]), f32(kb[kr.w + d]));
      outer(&s, f32(qb[qa + d]), f32(qb[qc + d]), kv);
    }
    // Online softmax: scale, mask, rescale the running state, turn scores into weights.
    for (var r = 0u; r < R; r++) {
      let sv = select(vec4f(MASKED), s[r] * p.scale2, visible4(keys, b.row0 + r, b.len));
      let mn = max(m[r], subgroupMax(max(max(sv.x, sv.y), max(sv.z, sv.w))));
      let corr = exp2(m[r] - mn);
      let e = exp2(sv - vec4f(mn));
      l[r] = fma(l[r], corr, (e.x + e.y) + (e.z + e.w));
      m[r] = mn;
      s[r] = e;
      for (var c = 0u; c < DM; c++) { o[r][c] *= corr; }
    }
    // O += P·V, one streamed key at a time (keys past kend have weight 0; skip their group).
    for (var j = 0u; j < 4u; j++) {
      let kj = kt + 8u * j;
      if (kj >= kend) { break; }
      let w = column(s, j);
      rank1(&o, from0(w), load_cols_v(row_at(p.v, b, kj + 0u, hk), cols));
      rank1(&o, from1(w), load_cols_v(row_at(p.v, b, kj + 1u, hk), cols));
      rank1(&o, from2(w), load_cols_v(row_at(p.v, b, kj + 2u, hk), cols));
      rank1(&o, from3(w), load_cols_v(row_at(p.v, b, kj + 3u, hk), cols));
      rank1(&o, from4(w), load_cols_v(row_at(p.v, b, kj + 4u, hk), cols));
      rank1(&o, from5(w), load_cols_v(row_at(p.v, b, kj + 5u, hk), cols));
      rank1(&o, from6(w), load_cols_v(row_at(p.v, b, kj + 6u, hk), cols));
      rank1(&o, from7(w), load_cols_v(row_at(p.v, b, kj + 7u, hk), cols));
    }
  }
  for (var r = 0u; r < R; r++) {
    let i = b.row0 + r;
    let lt = subgroupAdd(l[r]);
    if (i < b.len) {
      let srow = (b.start + i) * p.hq + h;
      if (lane == 0u) { stats[srow] = m[r] + log2(lt); }
      let inv = 1.0 / lt;
      for (var c = 0u; c < DM; c++) {
        let col = lane + L * c;
        if (col < p.d) { ob[srow * p.d + col] = T(o[r][c] * inv); }
      }
    }
  }
}

// dQ = scale · Σⱼ dSᵢⱼ kⱼ with dSᵢⱼ = Pᵢⱼ (dPᵢⱼ − Dᵢ), dPᵢⱼ = dOᵢ·vⱼ; also writes Dᵢ.
@compute @workgroup_size(L)
fn dq(@builtin(workgroup_id) wid: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let b = block_of(wid.x);
  let h = wid.y;
  let hk = h / p.group;
  let qa = row_at(p.q, b, b.row0 + lane, h);
  let qc = row_at(p.q, b, b.row0 + L + lane, h);
  let ga = row_at(p.g, b, b.row0 + lane, h);
  let gc = row_at(p.g, b, b.row0 + L + lane, h);
  let cols = lane_cols(lane);

  // Dᵢ = dOᵢ·Oᵢ and lse2 of this lane's two rows, then every row's in every lane.
  let ra = min(b.row0 + lane, b.len - 1u);
  let rc = min(b.row0 + L + lane, b.len - 1u);
  let sa = (b.start + ra) * p.hq + h;
  let sc = (b.start + rc) * p.hq + h;
  var da = 0.0;
  var dc = 0.0;
  for (var d = 0u; d < p.d; d++) {
    da = fma(f32(gb[ga + d]), f32(o_in[sa * p.d + d]), da);
    dc = fma(f32(gb[gc + d]), f32(o_in[sc * p.d + d]), dc);
  }
  if (b.row0 + lane < b.len) { stats[p.ntok * p.hq + sa] = da; }
  if (b.row0 + L + lane < b.len) { stats[p.ntok * p.hq + sc] = dc; }
  let lse = rows_of(stats[sa], stats[sc]);
  let di = rows_of(da, dc);

  var acc: Acc;
  let kend = select(b.len, min(b.row0 + R, b.len), p.causal != 0u);
  for (var kt = 0u; kt < kend; kt += KT) {
    let keys = vec4u(kt + lane) + vec4u(0u, 8u, 16u, 24u);
    let kr = rows4(p.k, b, keys, hk);
    let vr = rows4(p.v, b, keys, hk);
    // An explicit initializer: declared without one inside the loop, the array was zeroed
    // only once, not per tile, on Dawn + lavapipe (found by the multi-tile tests).
    var s = array<vec4f, R>();
    var e = array<vec4f, R>();
    for (var d = 0u; d < p.d; d++) {
      let kv = vec4f(f32(kb[kr.x + d]), f32(kb[kr.y + d]), f32(kb[kr.z + d]), f32(kb[kr.w + d]));
      let vv = vec4f(f32(vb[vr.x + d]), f32(vb[vr.y + d]), f32(vb[vr.z + d]), f32(vb[vr.w + d]));
      outer(&s, f32(qb[qa + d]), f32(qb[qc + d]), kv);
      outer(&e, f32(gb[ga + d]), f32(gb[gc + d]), vv);
    }
    var ds: array<vec4f, R>;
    for (var r = 0u; r < R; r++) {
      let pr = select(vec4f(0.0), exp2(s[r] * p.scale2 - vec4f(lse[r])), visible4(keys, b.row0 + r, b.len));
      ds[r] = pr * (e[r] - vec4f(di[r]));
    }
    for (var j = 0u; j < 4u; j++) {
      let kj = kt + 8u * j;
      if (kj >= kend) { break; }
      let w = column(ds, j);
      rank1(&acc, from0(w), load_cols_k(row_at(p.k, b, kj + 0u, hk), cols));
      rank1(&acc, from1(w), load_cols_k(row_at(p.k, b, kj + 1u, hk), cols));
      rank1(&acc, from2(w), load_cols_k(row_at(p.k, b, kj + 2u, hk), cols));
      rank1(&acc, from3(w), load_cols_k(row_at(p.k, b, kj + 3u, hk), cols));
      rank1(&acc, from4(w), load_cols_k(row_at(p.k, b, kj + 4u, hk), cols));
      rank1(&acc, from5(w), load_cols_k(row_at(p.k, b, kj + 5u, hk), cols));
      rank1(&acc, from6(w), load_cols_k(row_at(p.k, b, kj + 6u, hk), cols));
      rank1(&acc, from7(w), load_cols_k(row_at(p.k, b, kj + 7u, hk), cols));
    }
  }
  for (var r = 0u; r < R; r++) {
    let i = b.row0 + r;
    if (i < b.len) {
      let base = ((b.start + i) * p.hq + h) * p.d;
      for (var c = 0u; c < DM; c++) {
        let col = lane + L * c;
        if (col < p.d) { dqb[base + col] = T(acc[r][c] * p.scale); }
      }
    }
  }
}

// dK = scale · Σᵢ dSᵢⱼ qᵢ and dV = Σᵢ Pᵢⱼ dOᵢ, summed over the query heads of the group.
// The workgroup owns 16 key rows; lane l owns streamed queries qt + l + 8j.
@compute @workgroup_size(L)
fn dkdv(@builtin(workgroup_id) wid: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let b = block_of(wid.x);
  let hk = wid.y;
  let ka = row_at(p.k, b, b.row0 + lane, hk);
  let kc = row_at(p.k, b, b.row0 + L + lane, hk);
  let va = row_at(p.v, b, b.row0 + lane, hk);
  let vc = row_at(p.v, b, b.row0 + L + lane, hk);
  let cols = lane_cols(lane);
  var acc_k: Acc;
  var acc_v: Acc;
  // Causal: query rows before this block's first key never see it.
  let qstart = select(0u, b.row0, p.causal != 0u);
  for (var gi = 0u; gi < p.group; gi++) {
    let h = hk * p.group + gi;
    for (var qt = qstart; qt < b.len; qt += KT) {
      let qs = vec4u(qt + lane) + vec4u(0u, 8u, 16u, 24u);
      let qsc = min(qs, vec4u(b.len - 1u));
      let srow = (vec4u(b.start) + qsc) * p.hq + vec4u(h);
      let lse = vec4f(stats_in[srow.x], stats_in[srow.y], stats_in[srow.z], stats_in[srow.w]);
      let dro = vec4u(p.ntok * p.hq) + srow;
      let di = vec4f(stats_in[dro.x], stats_in[dro.y], stats_in[dro.z], stats_in[dro.w]);
      let qr = rows4(p.q, b, qs, h);
      let gr = rows4(p.g, b, qs, h);
      var s = array<vec4f, R>();
      var e = array<vec4f, R>();
      for (var d = 0u; d < p.d; d++) {
        let qv = vec4f(f32(qb[qr.x + d]), f32(qb[qr.y + d]), f32(qb[qr.z + d]), f32(qb[qr.w + d]));
        let gv = vec4f(f32(gb5[gr.x + d]), f32(gb5[gr.y + d]), f32(gb5[gr.z + d]), f32(gb5[gr.w + d]));
        outer(&s, f32(kb[ka + d]), f32(kb[kc + d]), qv);
        outer(&e, f32(vb[va + d]), f32(vb[vc + d]), gv);
      }
      // Row r is key j = row0 + r; the vec4 runs over this lane's 4 queries.
      var pw: array<vec4f, R>;
      var ds: array<vec4f, R>;
      for (var r = 0u; r < R; r++) {
        let j = b.row0 + r;
        let ok = (qs < vec4u(b.len)) & ((qs >= vec4u(j)) | vec4<bool>(p.causal == 0u));
        let pr = select(vec4f(0.0), exp2(s[r] * p.scale2 - lse), ok);
        pw[r] = pr;
        ds[r] = pr * (e[r] - di);
      }
      for (var jj = 0u; jj < 4u; jj++) {
        let qj = qt + 8u * jj;
        if (qj >= b.len) { break; }
        let w = column(pw, jj);
        let z = column(ds, jj);
        rank1(&acc_v, from0(w), load_cols_g(row_at(p.g, b, qj + 0u, h), cols));
        rank1(&acc_k, from0(z), load_cols_q(row_at(p.q, b, qj + 0u, h), cols));
        rank1(&acc_v, from1(w), load_cols_g(row_at(p.g, b, qj + 1u, h), cols));
        rank1(&acc_k, from1(z), load_cols_q(row_at(p.q, b, qj + 1u, h), cols));
        rank1(&acc_v, from2(w), load_cols_g(row_at(p.g, b, qj + 2u, h), cols));
        rank1(&acc_k, from2(z), load_cols_q(row_at(p.q, b, qj + 2u, h), cols));
        rank1(&acc_v, from3(w), load_cols_g(row_at(p.g, b, qj + 3u, h), cols));
        rank1(&acc_k, from3(z), load_cols_q(row_at(p.q, b, qj + 3u, h), cols));
        rank1(&acc_v, from4(w), load_cols_g(row_at(p.g, b, qj + 4u, h), cols));
        rank1(&acc_k, from4(z), load_cols_q(row_at(p.q, b, qj + 4u, h), cols));
        rank1(&acc_v, from5(w), load_cols_g(row_at(p.g, b, qj + 5u, h), cols));
        rank1(&acc_k, from5(z), load_cols_q(row_at(p.q, b, qj + 5u, h), cols));
        rank1(&acc_v, from6(w), load_cols_g(row_at(p.g, b, qj + 6u, h), cols));
        rank1(&acc_k, from6(z), load_cols_q(row_at(p.q, b, qj + 6u, h), cols));
        rank1(&acc_v, from7(w), load_cols_g(row_at(p.g, b, qj + 7u, h), cols));
        rank1(&acc_k, from7(z), load_cols_q(row_at(p.q, b, qj + 7u, h), cols));
      }
    }
  }
  for (var r = 0u; r < R; r++) {
    let j = b.row0 + r;
    if (j < b.len) {
      let base = ((b.start + j) * p.hkv + hk) * p.d;
      for (var c = 0u; c < DM; c++) {
        let col = lane + L * c;
        if (col < p.d) {
          dkb[base + col] = T(acc_k[r][c] * p.scale);
          dvb[base + col] = T(acc_v[r][c]);
        }
      }
    }
  }
}
