// Flash attention (FlashAttention-2 schedule) over packed variable-length sequences with
// grouped-query heads, forward and backward, never materialising the T×T score matrix.
//
// Layout: q [T, Hq, D], k/v [T, Hkv, D] as strided views (unit stride along D, any token and
// head strides, element offsets in the uniforms); outputs are contiguous. A block table lists
// the workgroups' row blocks: (document start, document length, first row in the document),
// so a block never straddles two documents and tokens never attend across documents.
//
// One invocation owns one row (a query row in `forward`/`dq`, a key row in `dkdv`) and keeps
// that row's vectors and accumulators in registers; the other side streams through
// workgroup memory BC rows at a time. Every workgroup-memory read in the inner loops has
// the same address in all invocations (a broadcast: conflict-free on GPUs, a single scalar
// load on CPU SIMD back ends such as lavapipe, which scalarise per-lane addresses).
//
// Scores are kept in base 2: s = (scale·log2 e)·q·k, so p = exp2(s − lse2) where lse2 is the
// row's log2-sum-exp2, saved by the forward in `stats[0 .. T·Hq)`. The backward first runs
// `dq`, which also writes Dᵢ = rowsum(dOᵢ ∘ Oᵢ) to `stats[T·Hq .. 2·T·Hq)`, then `dkdv`,
// which sums over the query heads of a KV head's group itself: no atomics, deterministic.
alias T = f32;

override D: u32 = 64u;          // head dim, ≤ 128
override BR: u32 = 64u;         // rows per workgroup = workgroup size
override BC: u32 = 32u;         // rows per streamed tile, ≤ BCMAX
override CAUSAL: bool = false;
override DV: u32 = (D + 3u) / 4u;       // vec4s per row
override TILE: u32 = BC * ((D + 3u) / 4u);  // vec4s per staged tile

const DV_MAX: u32 = 32u;
const BCMAX: u32 = 64u;
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
  _a: u32,
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

// Staged tiles: keys and values (forward, dq) or queries and output gradients (dkdv).
var<workgroup> ta: array<vec4f, TILE>;
var<workgroup> tb: array<vec4f, TILE>;
var<workgroup> tl: array<f32, BCMAX>;   // dkdv: lse2 of the staged query rows
var<workgroup> td: array<f32, BCMAX>;   // dkdv: Dᵢ of the staged query rows

struct Block {
  start: u32,  // first token of the document
  len: u32,    // document length
  row0: u32,   // first row of this block within the document
}

fn block_of(i: u32) -> Block {
  return Block(blocks[4u * i], blocks[4u * i + 1u], blocks[4u * i + 2u]);
}

fn ld_q(i: u32, d4: u32) -> vec4f {
  var r = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) { if (d4 * 4u + e < D) { r[e] = f32(qb[i + e]); } }
  return r;
}
fn ld_k(i: u32, d4: u32) -> vec4f {
  var r = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) { if (d4 * 4u + e < D) { r[e] = f32(kb[i + e]); } }
  return r;
}
fn ld_v(i: u32, d4: u32) -> vec4f {
  var r = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) { if (d4 * 4u + e < D) { r[e] = f32(vb[i + e]); } }
  return r;
}
fn ld_o(i: u32, d4: u32) -> vec4f {
  var r = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) { if (d4 * 4u + e < D) { r[e] = f32(o_in[i + e]); } }
  return r;
}
fn ld_g(i: u32, d4: u32) -> vec4f {
  var r = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) { if (d4 * 4u + e < D) { r[e] = f32(gb[i + e]); } }
  return r;
}
fn ld_g5(i: u32, d4: u32) -> vec4f {
  var r = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) { if (d4 * 4u + e < D) { r[e] = f32(gb5[i + e]); } }
  return r;
}

// Stage rows [start, start + BC) of a document's keys and values of KV head hk (zeros past
// the end of the document).
fn stage_kv(lid: u32, b: Block, start: u32, hk: u32) {
  for (var idx = lid; idx < TILE; idx += BR) {
    let c = idx / DV;
    let d4 = idx % DV;
    let r = start + c;
    var kv = vec4f(0.0);
    var vv = vec4f(0.0);
    if (r < b.len) {
      let tok = b.start + r;
      kv = ld_k(p.k.off + tok * p.k.ts + hk * p.k.hs + d4 * 4u, d4);
      vv = ld_v(p.v.off + tok * p.v.ts + hk * p.v.hs + d4 * 4u, d4);
    }
    ta[idx] = kv;
    tb[idx] = vv;
  }
}

// Stage query rows [start, start + BC) of head h with their dO rows, lse2 and Dᵢ.
fn stage_qg(lid: u32, b: Block, start: u32, h: u32) {
  for (var idx = lid; idx < TILE; idx += BR) {
    let c = idx / DV;
    let d4 = idx % DV;
    let r = start + c;
    var qv = vec4f(0.0);
    var gv = vec4f(0.0);
    if (r < b.len) {
      let tok = b.start + r;
      qv = ld_q(p.q.off + tok * p.q.ts + h * p.q.hs + d4 * 4u, d4);
      gv = ld_g5(p.g.off + tok * p.g.ts + h * p.g.hs + d4 * 4u, d4);
    }
    ta[idx] = qv;
    tb[idx] = gv;
  }
  for (var c = lid; c < BC; c += BR) {
    let r = start + c;
    var l = 0.0;
    var dd = 0.0;
    if (r < b.len) {
      let s = (b.start + r) * p.hq + h;
      l = stats_in[s];
      dd = stats_in[p.ntok * p.hq + s];
    }
    tl[c] = l;
    td[c] = dd;
  }
}

@compute @workgroup_size(BR)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let b = block_of(wid.x);
  let h = wid.y;
  let hk = h / p.group;
  let row = b.row0 + lid;
  let tok = b.start + min(row, b.len - 1u);

  var q: array<vec4f, DV_MAX>;
  var o: array<vec4f, DV_MAX>;
  let qbase = p.q.off + tok * p.q.ts + h * p.q.hs;
  for (var d4 = 0u; d4 < DV; d4++) {
    q[d4] = ld_q(qbase + d4 * 4u, d4) * p.scale2;
    o[d4] = vec4f(0.0);
  }
  var m = MASKED;
  var l = 0.0;
  let kend = select(b.len, min(b.row0 + BR, b.len), CAUSAL);
  for (var kt = 0u; kt < kend; kt += BC) {
    workgroupBarrier();
    stage_kv(lid, b, kt, hk);
    workgroupBarrier();
    var s: array<f32, BCMAX>;
    var mt = MASKED;
    for (var c = 0u; c < BC; c++) {
      var acc = vec4f(0.0);
      for (var d4 = 0u; d4 < DV; d4++) { acc = fma(q[d4], ta[c * DV + d4], acc); }
      let j = kt + c;
      let ok = j < b.len && (!CAUSAL || j <= row);
      let sc = select(MASKED, acc.x + acc.y + acc.z + acc.w, ok);
      s[c] = sc;
      mt = max(mt, sc);
    }
    let mn = max(m, mt);
    let corr = exp2(m - mn);
    m = mn;
    var ps = 0.0;
    for (var c = 0u; c < BC; c++) {
      let pc = exp2(s[c] - mn);
      s[c] = pc;
      ps += pc;
    }
    l = l * corr + ps;
    for (var d4 = 0u; d4 < DV; d4++) {
      var acc = o[d4] * corr;
      for (var c = 0u; c < BC; c++) { acc = fma(vec4f(s[c]), tb[c * DV + d4], acc); }
      o[d4] = acc;
    }
  }
  if (row < b.len) {
    let inv = 1.0 / l;
    let obase = (tok * p.hq + h) * D;
    for (var d4 = 0u; d4 < DV; d4++) {
      let ov = o[d4] * inv;
      for (var e = 0u; e < 4u; e++) {
        if (d4 * 4u + e < D) { ob[obase + d4 * 4u + e] = T(ov[e]); }
      }
    }
    stats[tok * p.hq + h] = m + log2(l);
  }
}

// dQ = scale · Σⱼ dSᵢⱼ kⱼ with dSᵢⱼ = Pᵢⱼ (dPᵢⱼ − Dᵢ), dPᵢⱼ = dOᵢ·vⱼ; also writes Dᵢ.
@compute @workgroup_size(BR)
fn dq(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let b = block_of(wid.x);
  let h = wid.y;
  let hk = h / p.group;
  let row = b.row0 + lid;
  let tok = b.start + min(row, b.len - 1u);

  var q: array<vec4f, DV_MAX>;
  var g: array<vec4f, DV_MAX>;
  var acc_q: array<vec4f, DV_MAX>;
  let qbase = p.q.off + tok * p.q.ts + h * p.q.hs;
  let gbase = p.g.off + tok * p.g.ts + h * p.g.hs;
  let obase = (tok * p.hq + h) * D;
  var dsum = vec4f(0.0);
  for (var d4 = 0u; d4 < DV; d4++) {
    q[d4] = ld_q(qbase + d4 * 4u, d4) * p.scale2;
    g[d4] = ld_g(gbase + d4 * 4u, d4);
    dsum = fma(g[d4], ld_o(obase + d4 * 4u, d4), dsum);
    acc_q[d4] = vec4f(0.0);
  }
  let di = dsum.x + dsum.y + dsum.z + dsum.w;
  let srow = tok * p.hq + h;
  let lse = stats[srow];
  if (row < b.len) { stats[p.ntok * p.hq + srow] = di; }

  let kend = select(b.len, min(b.row0 + BR, b.len), CAUSAL);
  for (var kt = 0u; kt < kend; kt += BC) {
    workgroupBarrier();
    stage_kv(lid, b, kt, hk);
    workgroupBarrier();
    var ds: array<f32, BCMAX>;
    for (var c = 0u; c < BC; c++) {
      var sa = vec4f(0.0);
      var pa = vec4f(0.0);
      for (var d4 = 0u; d4 < DV; d4++) {
        sa = fma(q[d4], ta[c * DV + d4], sa);
        pa = fma(g[d4], tb[c * DV + d4], pa);
      }
      let j = kt + c;
      let ok = j < b.len && (!CAUSAL || j <= row);
      let pc = select(0.0, exp2(sa.x + sa.y + sa.z + sa.w - lse), ok);
      ds[c] = pc * (pa.x + pa.y + pa.z + pa.w - di);
    }
    for (var d4 = 0u; d4 < DV; d4++) {
      var acc = acc_q[d4];
      for (var c = 0u; c < BC; c++) { acc = fma(vec4f(ds[c]), ta[c * DV + d4], acc); }
      acc_q[d4] = acc;
    }
  }
  if (row < b.len) {
    let base = (tok * p.hq + h) * D;
    for (var d4 = 0u; d4 < DV; d4++) {
      let v = acc_q[d4] * p.scale;
      for (var e = 0u; e < 4u; e++) {
        if (d4 * 4u + e < D) { dqb[base + d4 * 4u + e] = T(v[e]); }
      }
    }
  }
}

// dK = scale · Σᵢ dSᵢⱼ qᵢ and dV = Σᵢ Pᵢⱼ dOᵢ, summed over the query heads of the group.
@compute @workgroup_size(BR)
fn dkdv(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let b = block_of(wid.x);
  let hk = wid.y;
  let row = b.row0 + lid;
  let tok = b.start + min(row, b.len - 1u);

  var k: array<vec4f, DV_MAX>;
  var v: array<vec4f, DV_MAX>;
  var acc_k: array<vec4f, DV_MAX>;
  var acc_v: array<vec4f, DV_MAX>;
  let kbase = p.k.off + tok * p.k.ts + hk * p.k.hs;
  let vbase = p.v.off + tok * p.v.ts + hk * p.v.hs;
  for (var d4 = 0u; d4 < DV; d4++) {
    k[d4] = ld_k(kbase + d4 * 4u, d4) * p.scale2;
    v[d4] = ld_v(vbase + d4 * 4u, d4);
    acc_k[d4] = vec4f(0.0);
    acc_v[d4] = vec4f(0.0);
  }
  // Causal: query rows before this block's first key never see it.
  let qstart = select(0u, b.row0, CAUSAL);
  for (var gi = 0u; gi < p.group; gi++) {
    let h = hk * p.group + gi;
    for (var qt = qstart; qt < b.len; qt += BC) {
      workgroupBarrier();
      stage_qg(lid, b, qt, h);
      workgroupBarrier();
      var pp: array<f32, BCMAX>;
      var ds: array<f32, BCMAX>;
      for (var c = 0u; c < BC; c++) {
        var sa = vec4f(0.0);
        var pa = vec4f(0.0);
        for (var d4 = 0u; d4 < DV; d4++) {
          sa = fma(k[d4], ta[c * DV + d4], sa);
          pa = fma(v[d4], tb[c * DV + d4], pa);
        }
        let i = qt + c;
        let ok = i < b.len && (!CAUSAL || i >= row);
        let pc = select(0.0, exp2(sa.x + sa.y + sa.z + sa.w - tl[c]), ok);
        pp[c] = pc;
        ds[c] = pc * (pa.x + pa.y + pa.z + pa.w - td[c]);
      }
      for (var d4 = 0u; d4 < DV; d4++) {
        var ak = acc_k[d4];
        var av = acc_v[d4];
        for (var c = 0u; c < BC; c++) {
          ak = fma(vec4f(ds[c]), ta[c * DV + d4], ak);
          av = fma(vec4f(pp[c]), tb[c * DV + d4], av);
        }
        acc_k[d4] = ak;
        acc_v[d4] = av;
      }
    }
  }
  if (row < b.len) {
    let base = (tok * p.hkv + hk) * D;
    for (var d4 = 0u; d4 < DV; d4++) {
      let kv = acc_k[d4] * p.scale;
      let vv = acc_v[d4];
      for (var e = 0u; e < 4u; e++) {
        if (d4 * 4u + e < D) {
          dkb[base + d4 * 4u + e] = T(kv[e]);
          dvb[base + d4 * 4u + e] = T(vv[e]);
        }
      }
    }
  }
}
