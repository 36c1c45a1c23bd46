// Mixture-of-experts routing: top-k selection, the gather of the selected scores (and its
// scatter backward), and the dispatch plan built from a stable counting sort of the
// chosen experts (sort.wgsl: histogram + prefix sum + scatter).
//
//   topk:         one thread per token: the k largest of E scores, in descending order;
//                 ties go to the lower expert index (strict > while scanning upward).
//   topk_gather:  vals[t, j] = scores[t, idx[t, j]].
//   topk_scatter: dscores[t, e] = Σ_j [idx[t, j] == e] · dvals[t, j] (no atomics).
//   plan_rows:    from order[q] = assignment a (= t·k + j) at permuted row q: the inverse
//                 permutation inv[a] = q and the source token of each row, a / k.
//   plan_offsets: one workgroup. offsets[e] = first permuted row of expert e (binary
//                 search of the sorted experts, so offsets[E] = N), tokens per expert as
//                 f32, and the grouped-GEMM tile table: tile i = (expert, row0, row1, 0)
//                 covering ≤ BM rows of one expert, tiles of expert e after those of e-1;
//                 unused slots up to max_tiles get expert 0xffffffff (the tile exits).
// Everything is computed on the GPU so a layer launches without reading counts back.

override BM: u32 = 32u;
const MAXE: u32 = 1024u;
const NONE: u32 = 0xffffffffu;

struct Params {
  t: u32,
  e: u32,
  k: u32,
  off: u32,
  n: u32,
  max_tiles: u32,
  off2: u32,
  _p: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// topk, topk_gather: scores; topk_scatter: dvals
@group(0) @binding(1) var<storage, read> in_f: array<f32>;
// plan_rows: order; plan_offsets: sorted experts
@group(0) @binding(1) var<storage, read> in_u: array<u32>;
// topk: idx out; plan_rows: inv; plan_offsets: offsets
@group(0) @binding(2) var<storage, read_write> out_u: array<u32>;
// topk_gather, topk_scatter: idx in
@group(0) @binding(2) var<storage, read> idx_in: array<u32>;
// topk_gather: vals; topk_scatter: dscores; plan_offsets: counts
@group(0) @binding(3) var<storage, read_write> out_f: array<f32>;
// plan_rows: row -> token
@group(0) @binding(3) var<storage, read_write> out_u2: array<u32>;
// plan_offsets: tile table
@group(0) @binding(4) var<storage, read_write> tiles: array<vec4u>;

fn linear_id(gid: vec3u, nwg: vec3u, wg: u32) -> u32 {
  return gid.x + gid.y * nwg.x * wg;
}

fn already(base: u32, j: u32, e: u32) -> bool {
  for (var i = 0u; i < j; i++) {
    if (out_u[base + i] == e) {
      return true;
    }
  }
  return false;
}

@compute @workgroup_size(64)
fn topk(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = linear_id(gid, nwg, 64u);
  if (t >= p.t) {
    return;
  }
  let row = p.off + t * p.e;
  let base = t * p.k;
  for (var j = 0u; j < p.k; j++) {
    var best = NONE;
    var bv = 0.0;
    for (var e = 0u; e < p.e; e++) {
      if (already(base, j, e)) {
        continue;
      }
      let v = in_f[row + e];
      if (best == NONE || v > bv) {
        best = e;
        bv = v;
      }
    }
    out_u[base + j] = best;
  }
}

@compute @workgroup_size(64)
fn topk_gather(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_id(gid, nwg, 64u);
  if (i >= p.t * p.k) {
    return;
  }
  let t = i / p.k;
  out_f[i] = in_f[p.off + t * p.e + idx_in[p.off2 + i]];
}

@compute @workgroup_size(64)
fn topk_scatter(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_id(gid, nwg, 64u);
  if (i >= p.t * p.e) {
    return;
  }
  let t = i / p.e;
  let e = i % p.e;
  var s = 0.0;
  for (var j = 0u; j < p.k; j++) {
    if (idx_in[p.off2 + t * p.k + j] == e) {
      s += in_f[p.off + t * p.k + j];
    }
  }
  out_f[i] = s;
}

@compute @workgroup_size(256)
fn plan_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let q = linear_id(gid, nwg, 256u);
  if (q >= p.n) {
    return;
  }
  let a = in_u[q];
  out_u[a] = q;
  out_u2[q] = a / p.k;
}

var<workgroup> woff: array<u32, 1025>;
var<workgroup> wtile: array<u32, 1025>;

fn lower_bound(x: u32) -> u32 {
  var lo = 0u;
  var hi = p.n;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (in_u[mid] < x) {
      lo = mid + 1u;
    } else {
      hi = mid;
    }
  }
  return lo;
}

@compute @workgroup_size(256)
fn plan_offsets(@builtin(local_invocation_index) li: u32) {
  let ne = min(p.e, MAXE);
  for (var e = li; e <= ne; e += 256u) {
    let o = lower_bound(e);
    woff[e] = o;
    out_u[e] = o;
  }
  workgroupBarrier();
  if (li == 0u) {
    var acc = 0u;
    for (var e = 0u; e < ne; e++) {
      wtile[e] = acc;
      let c = woff[e + 1u] - woff[e];
      out_f[e] = f32(c);
      acc += (c + BM - 1u) / BM;
    }
    wtile[ne] = acc;
  }
  workgroupBarrier();
  let used = wtile[ne];
  for (var i = li; i < p.max_tiles; i += 256u) {
    if (i >= used) {
      tiles[i] = vec4u(NONE, 0u, 0u, 0u);
      continue;
    }
    // The expert whose tiles cover slot i: the last e with wtile[e] <= i.
    var lo = 0u;
    var hi = ne;
    while (lo < hi) {
      let mid = (lo + hi) / 2u;
      if (wtile[mid] <= i) {
        lo = mid + 1u;
      } else {
        hi = mid;
      }
    }
    let e = lo - 1u;
    let r0 = woff[e] + (i - wtile[e]) * BM;
    tiles[i] = vec4u(e, r0, min(r0 + BM, woff[e + 1u]), 0u);
  }
}
