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
//   softmax_rows / softmax_rows_bwd, lse_rows / lse_rows_bwd: router softmax and
//                 logsumexp (for the z-loss) with one thread per token — rows of E ≤ a
//                 few hundred scores, where a workgroup per row would idle most lanes.
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

// ---- Small-row softmax / logsumexp (one thread per row of p.e values, rows at p.off).
// softmax_rows: in_f = logits, out2_f = probs. softmax_rows_bwd: in_f = probs (@1),
// grad @2, out_f = dlogits. lse_rows: out2_f = lse[t]. lse_rows_bwd: in_f = logits, grad @2
// (one per row), out_f = dlogits = grad · softmax.
@group(0) @binding(2) var<storage, read> grad_in: array<f32>;
// softmax_rows, lse_rows: output @2
@group(0) @binding(2) var<storage, read_write> out2_f: array<f32>;

fn row_max(row: u32) -> f32 {
  var m = in_f[row];
  for (var e = 1u; e < p.e; e++) {
    m = max(m, in_f[row + e]);
  }
  return m;
}

fn row_sumexp(row: u32, m: f32) -> f32 {
  var s = 0.0;
  for (var e = 0u; e < p.e; e++) {
    s += exp(in_f[row + e] - m);
  }
  return s;
}

@compute @workgroup_size(64)
fn softmax_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = linear_id(gid, nwg, 64u);
  if (t >= p.t) {
    return;
  }
  let row = p.off + t * p.e;
  let m = row_max(row);
  let inv = 1.0 / row_sumexp(row, m);
  for (var e = 0u; e < p.e; e++) {
    out2_f[t * p.e + e] = exp(in_f[row + e] - m) * inv;
  }
}

@compute @workgroup_size(64)
fn softmax_rows_bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = linear_id(gid, nwg, 64u);
  if (t >= p.t) {
    return;
  }
  let row = t * p.e;
  let grow = p.off2 + t * p.e;
  var dot = 0.0;
  for (var e = 0u; e < p.e; e++) {
    dot += in_f[row + e] * grad_in[grow + e];
  }
  for (var e = 0u; e < p.e; e++) {
    out_f[row + e] = in_f[row + e] * (grad_in[grow + e] - dot);
  }
}

@compute @workgroup_size(64)
fn lse_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = linear_id(gid, nwg, 64u);
  if (t >= p.t) {
    return;
  }
  let row = p.off + t * p.e;
  let m = row_max(row);
  out2_f[t] = m + log(row_sumexp(row, m));
}

@compute @workgroup_size(64)
fn lse_rows_bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = linear_id(gid, nwg, 64u);
  if (t >= p.t) {
    return;
  }
  let row = p.off + t * p.e;
  let m = row_max(row);
  let scale = grad_in[p.off2 + t] / row_sumexp(row, m);
  for (var e = 0u; e < p.e; e++) {
    out_f[t * p.e + e] = exp(in_f[row + e] - m) * scale;
  }
}
