// Softmax and log-softmax along the last axis of a contiguous [rows, len] tensor, and
// their backward passes. One workgroup per row; the row is read twice (max, then sum of
// exponentials) and written once. LOG selects log-softmax.
alias T = f32;

override WG: u32 = 128u;
override LOG: bool = false;

struct Params {
  rows: u32,
  len: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read_write> y: array<T>;
// backward: y (forward output), gy → gx
@group(0) @binding(1) var<storage, read> yb: array<T>;
@group(0) @binding(2) var<storage, read> gy: array<T>;
@group(0) @binding(3) var<storage, read_write> gx: array<T>;

var<workgroup> red: array<f32, WG>;

fn reduce_max(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn reduce_sum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn neg_inf() -> f32 {
  var bits = 0xff800000u;
  return bitcast<f32>(bits);
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid3: vec3u) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let lid = lid3.x;
  let base = row * p.len;
  var m = neg_inf();
  for (var i = lid; i < p.len; i += WG) { m = max(m, f32(x[base + i])); }
  m = reduce_max(m, lid);
  // A row of all -inf (fully masked) gives zeros rather than NaN.
  let shift = select(m, 0.0, m == neg_inf());
  var s = 0.0;
  for (var i = lid; i < p.len; i += WG) { s += exp(f32(x[base + i]) - shift); }
  s = reduce_sum(s, lid);
  if (LOG) {
    let lse = shift + log(s);
    for (var i = lid; i < p.len; i += WG) { y[base + i] = T(f32(x[base + i]) - lse); }
  } else {
    let inv = select(1.0 / s, 0.0, s == 0.0);
    for (var i = lid; i < p.len; i += WG) { y[base + i] = T(exp(f32(x[base + i]) - shift) * inv); }
  }
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid3: vec3u) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let lid = lid3.x;
  let base = row * p.len;
  var s = 0.0;
  if (LOG) {
    // gx = gy - softmax · Σ gy
    for (var i = lid; i < p.len; i += WG) { s += f32(gy[base + i]); }
    s = reduce_sum(s, lid);
    for (var i = lid; i < p.len; i += WG) {
      gx[base + i] = T(f32(gy[base + i]) - exp(f32(yb[base + i])) * s);
    }
  } else {
    // gx = y · (gy - Σ gy·y)
    for (var i = lid; i < p.len; i += WG) { s += f32(gy[base + i]) * f32(yb[base + i]); }
    s = reduce_sum(s, lid);
    for (var i = lid; i < p.len; i += WG) {
      let yi = f32(yb[base + i]);
      gx[base + i] = T(yi * (f32(gy[base + i]) - s));
    }
  }
}
