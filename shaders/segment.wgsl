// Deterministic segmented sums: the second half of a scatter-add without float atomics.
// After a stable sort of destination keys (sort.wgsl),
//   segment_bounds: bounds[r] = first sorted position whose key is >= r, for r in [0, m];
//                   keys >= m (dropped / out-of-range destinations) fall past bounds[m].
//   segment_sum:    out[o, r, c] = base[o, r, c] + Σ_{k in [bounds[r], bounds[r+1])}
//                   src[o, order[k], c], summed in f32 in sorted (= original position)
//                   order, so the result is bit-identical from run to run.

alias T = f32;

override WG: u32 = 256u;
override HAS_BASE: bool = false;
// segment_sum4: vec4 columns per thread, strided by inner / COLS (inner % COLS == 0).
override COLS: u32 = 1u;

struct Params {
  total: u32,
  n: u32,
  m: u32,
  inner: u32,
  src_off: u32,
  base_off: u32,
  _p0: u32,
  _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// segment_bounds
@group(0) @binding(1) var<storage, read> sorted: array<u32>;
@group(0) @binding(2) var<storage, read_write> bounds_out: array<u32>;
// segment_sum
@group(0) @binding(1) var<storage, read> src: array<T>;
@group(0) @binding(2) var<storage, read> order: array<u32>;
@group(0) @binding(3) var<storage, read> bounds: array<u32>;
@group(0) @binding(4) var<storage, read> base: array<T>;
@group(0) @binding(5) var<storage, read_write> out: array<T>;
// segment_sum4: the same over vec4 columns (inner, offsets in vec4 units)
@group(0) @binding(1) var<storage, read> src4: array<vec4<T>>;
@group(0) @binding(4) var<storage, read> base4: array<vec4<T>>;
@group(0) @binding(5) var<storage, read_write> out4: array<vec4<T>>;

@compute @workgroup_size(WG)
fn segment_bounds(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = gid.x + gid.y * nwg.x * WG;
  if (r >= p.total) {
    return;
  }
  var lo = 0u;
  var hi = p.n;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (sorted[mid] < r) {
      lo = mid + 1u;
    } else {
      hi = mid;
    }
  }
  bounds_out[r] = lo;
}

@compute @workgroup_size(WG)
fn segment_sum(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = gid.x + gid.y * nwg.x * WG;
  if (g >= p.total) {
    return;
  }
  let c = g % p.inner;
  let rest = g / p.inner;
  let r = rest % p.m;
  let o = rest / p.m;
  var acc = 0.0;
  if (HAS_BASE) {
    acc = f32(base[p.base_off + g]);
  }
  let lo = bounds[r];
  let hi = bounds[r + 1u];
  let row0 = p.src_off + o * p.n * p.inner + c;
  for (var k = lo; k < hi; k++) {
    acc += f32(src[row0 + order[k] * p.inner]);
  }
  out[g] = T(acc);
}

@compute @workgroup_size(WG)
fn segment_sum4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = gid.x + gid.y * nwg.x * WG;
  if (g >= p.total) {
    return;
  }
  // p.total counts threads: COLS vec4 columns each, `span` = p.inner / COLS apart.
  let span = p.inner / COLS;
  let c0 = g % span;
  let rest = g / span;
  let r = rest % p.m;
  let o = rest / p.m;
  let lo = bounds[r];
  let hi = bounds[r + 1u];
  let out0 = (o * p.m + r) * p.inner + c0;
  let row0 = p.src_off + o * p.n * p.inner + c0;
  for (var j = 0u; j < COLS; j++) {
    var acc = vec4f(0.0);
    if (HAS_BASE) {
      acc = vec4f(base4[p.base_off + out0 + j * span]);
    }
    for (var k = lo; k < hi; k++) {
      acc += vec4f(src4[row0 + j * span + order[k] * p.inner]);
    }
    out4[out0 + j * span] = vec4<T>(acc);
  }
}
