// Cross-entropy fused with log-softmax over logits [rows, V] (row views: element (r, j)
// at off + r·stride + j) and integer targets [rows]. The softmax never materialises.
//
// forward:  one workgroup per row, one pass over the row with an online (max, Σexp)
//           per thread, merged in workgroup memory. Writes the row's logsumexp (saved for
//           the backward) and loss = lse − x[target] + z·lse² (0 for ignored rows).
//           An out-of-range target (not ignore_index, not in [0, V)) gives NaN loss and
//           NaN lse (so its gradient is NaN too) and is recorded in `status`:
//           status[0] += 1, status[1] = max(~row) (i.e. the first bad row), zero-initialised.
// finalize: one workgroup: Σ loss and the count of non-ignored rows, in a fixed order.
//           MODE 0 'sum': loss = Σ, scale = 1. MODE 1 'mean': divisor = count, or the
//           normalizer when HAS_NORM; loss = Σ / divisor, scale = 1 / divisor (both 0 when
//           the divisor is 0: an all-ignored batch has loss 0, not NaN).
// backward: dlogits = g·scale·(softmax·(1 + 2z·lse) − onehot(target)), 0 for ignored rows;
//           g = gy[0] (reduced) or gy[row] (PER_ROW, reduction 'none').
// backward_inplace: the same, written over the logits themselves (opt-in: saves the
//           vocab-sized gradient buffer when nothing else reads the logits afterwards).
alias T = f32;

override WG: u32 = 256u;
override MODE: u32 = 1u;
override HAS_NORM: bool = false;
override PER_ROW: bool = false;

struct Params {
  rows: u32,
  v: u32,
  off: u32,
  stride: u32,
  t_off: u32,
  ignore: i32,
  z: f32,
  norm: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<T>;
@group(0) @binding(2) var<storage, read> tgt: array<i32>;
// forward
@group(0) @binding(3) var<storage, read_write> row_loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> lse_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> status: array<atomic<u32>, 2>;
// finalize (binding 1 = row losses)
@group(0) @binding(1) var<storage, read> rl: array<f32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> scale_out: array<f32>;
// backward
@group(0) @binding(3) var<storage, read> lse_in: array<f32>;
@group(0) @binding(4) var<storage, read> gy: array<f32>;
@group(0) @binding(5) var<storage, read> scale_in: array<f32>;
@group(0) @binding(6) var<storage, read_write> dl: array<T>;
// backward_inplace: the gradient overwrites the logits (same row layout)
@group(0) @binding(1) var<storage, read_write> lg_rw: array<T>;

var<workgroup> red_m: array<f32, WG>;
var<workgroup> red_s: array<f32, WG>;

fn neg_inf() -> f32 {
  var bits = 0xff800000u;
  return bitcast<f32>(bits);
}

fn nan() -> f32 {
  var bits = 0x7fc00000u;
  return bitcast<f32>(bits);
}

/** s·exp(m − mm) where a zero sum (m = −inf) stays 0. */
fn rescale(s: f32, m: f32, mm: f32) -> f32 {
  return select(s * exp(m - mm), 0.0, s == 0.0);
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid3: vec3u) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let lid = lid3.x;
  let base = p.off + row * p.stride;
  let ninf = neg_inf();
  var m = ninf;
  var s = 0.0;
  for (var i = lid; i < p.v; i += WG) {
    let x = f32(logits[base + i]);
    if (x > m) {
      s = rescale(s, m, x) + 1.0;
      m = x;
    } else {
      s += select(exp(x - m), 0.0, x == ninf);
    }
  }
  red_m[lid] = m;
  red_s[lid] = s;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (lid < k) {
      let m1 = red_m[lid];
      let m2 = red_m[lid + k];
      let mm = max(m1, m2);
      red_s[lid] = rescale(red_s[lid], m1, mm) + rescale(red_s[lid + k], m2, mm);
      red_m[lid] = mm;
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let lse = red_m[0] + log(red_s[0]);
    let t = tgt[p.t_off + row];
    if (t == p.ignore) {
      row_loss[row] = 0.0;
      lse_out[row] = lse;
    } else if (t < 0 || u32(t) >= p.v) {
      atomicAdd(&status[0], 1u);
      atomicMax(&status[1], ~row);
      row_loss[row] = nan();
      lse_out[row] = nan();
    } else {
      row_loss[row] = lse - f32(logits[base + u32(t)]) + p.z * lse * lse;
      lse_out[row] = lse;
    }
  }
}

@compute @workgroup_size(WG)
fn finalize(@builtin(local_invocation_id) lid3: vec3u) {
  let lid = lid3.x;
  var s = 0.0;
  var c = 0.0;
  for (var r = lid; r < p.rows; r += WG) {
    s += rl[r];
    c += select(1.0, 0.0, tgt[p.t_off + r] == p.ignore);
  }
  red_m[lid] = s;
  red_s[lid] = c;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (lid < k) {
      red_m[lid] += red_m[lid + k];
      red_s[lid] += red_s[lid + k];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    if (MODE == 0u) {
      loss[0] = red_m[0];
      scale_out[0] = 1.0;
    } else {
      let div = select(red_s[0], p.norm, HAS_NORM);
      loss[0] = select(red_m[0] / div, 0.0, div == 0.0);
      scale_out[0] = select(1.0 / div, 0.0, div == 0.0);
    }
  }
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid3: vec3u) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let lid = lid3.x;
  let base = p.off + row * p.stride;
  let ob = row * p.v;
  let t = tgt[p.t_off + row];
  if (t == p.ignore) {
    for (var i = lid; i < p.v; i += WG) { dl[ob + i] = T(0.0); }
    return;
  }
  let lse = lse_in[row];
  var coef: f32;
  if (PER_ROW) {
    coef = gy[row];
  } else {
    coef = gy[0] * scale_in[0];
  }
  let zf = 1.0 + 2.0 * p.z * lse;
  for (var i = lid; i < p.v; i += WG) {
    let pr = exp(f32(logits[base + i]) - lse);
    let d = pr * zf - select(0.0, 1.0, i32(i) == t);
    dl[ob + i] = T(coef * d);
  }
}

@compute @workgroup_size(WG)
fn backward_inplace(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid3: vec3u) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let lid = lid3.x;
  let base = p.off + row * p.stride;
  let t = tgt[p.t_off + row];
  if (t == p.ignore) {
    for (var i = lid; i < p.v; i += WG) { lg_rw[base + i] = T(0.0); }
    return;
  }
  let lse = lse_in[row];
  var coef: f32;
  if (PER_ROW) {
    coef = gy[row];
  } else {
    coef = gy[0] * scale_in[0];
  }
  let zf = 1.0 + 2.0 * p.z * lse;
  for (var i = lid; i < p.v; i += WG) {
    let pr = exp(f32(lg_rw[base + i]) - lse);
    let d = pr * zf - select(0.0, 1.0, i32(i) == t);
    lg_rw[base + i] = T(coef * d);
  }
}
