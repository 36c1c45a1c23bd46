// Mixture-of-experts data movement: permuting token rows into expert order and back, and
// the weighted combine. Row gathers only — every scatter of the backward is a gather
// through the inverse permutation, so there are no atomics and sums have a fixed order.
// One thread per output element (rows of width d, 2-D grid).
//
//   gather_sum:    out[r, c] = Σ_{j<kk} x[idx[r·kk + j], c]
//                  (permute: kk = 1, idx = row→token; its backward: kk = k, idx = inv;
//                   unpermute: kk = 1, idx = inv; its backward: kk = 1, idx = order)
//   gather_wsum:   out[t, c] = Σ_{j<kk} w[t·kk + j] · x[idx[t·kk + j], c]   (combine)
//   gather_scaled: out[r, c] = w[widx[r]] · x[idx[r], c]            (combine backward, rows)
//   row_dot:       out[a] = Σ_c x[a / kk, c] · y[idx[a], c]          (combine backward, weights)
//   swiglu_fused:  act[r, c] = silu(h[r, c]) · h[r, d + c] for h [rows, 2d] (gate | up halves of
//                  the gate_up projection); swiglu_fused_bwd writes both halves of dh at once.
alias T = f32;

struct Params {
  rows: u32,
  d: u32,
  kk: u32,
  off_x: u32,
  off_y: u32,
  off_w: u32,
  _p0: u32,
  _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<T>;
@group(0) @binding(4) var<storage, read> w: array<T>;
@group(0) @binding(5) var<storage, read> widx: array<u32>;
// row_dot
@group(0) @binding(4) var<storage, read> y: array<T>;
// swiglu_fused (h @1, act @2) and swiglu_fused_bwd (h @1, da @2, dh @3 = out)
@group(0) @binding(2) var<storage, read_write> act: array<T>;
@group(0) @binding(2) var<storage, read> da: array<T>;

fn linear_id(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

@compute @workgroup_size(256)
fn gather_sum(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = linear_id(gid, nwg);
  if (g >= p.rows * p.d) {
    return;
  }
  let r = g / p.d;
  let c = g % p.d;
  var s = 0.0;
  for (var j = 0u; j < p.kk; j++) {
    s += f32(x[p.off_x + idx[r * p.kk + j] * p.d + c]);
  }
  out[g] = T(s);
}

@compute @workgroup_size(256)
fn gather_wsum(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = linear_id(gid, nwg);
  if (g >= p.rows * p.d) {
    return;
  }
  let r = g / p.d;
  let c = g % p.d;
  var s = 0.0;
  for (var j = 0u; j < p.kk; j++) {
    let a = r * p.kk + j;
    s += f32(w[p.off_w + a]) * f32(x[p.off_x + idx[a] * p.d + c]);
  }
  out[g] = T(s);
}

@compute @workgroup_size(256)
fn gather_scaled(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = linear_id(gid, nwg);
  if (g >= p.rows * p.d) {
    return;
  }
  let r = g / p.d;
  let c = g % p.d;
  out[g] = T(f32(w[p.off_w + widx[r]]) * f32(x[p.off_x + idx[r] * p.d + c]));
}

@compute @workgroup_size(256)
fn row_dot(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let a = linear_id(gid, nwg);
  if (a >= p.rows) {
    return;
  }
  let xr = p.off_x + (a / p.kk) * p.d;
  let yr = p.off_y + idx[a] * p.d;
  var s = 0.0;
  for (var c = 0u; c < p.d; c++) {
    s += f32(x[xr + c]) * f32(y[yr + c]);
  }
  out[a] = T(s);
}

fn sigm(v: f32) -> f32 {
  return 1.0 / (1.0 + exp(-v));
}

@compute @workgroup_size(256)
fn swiglu_fused(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = linear_id(gid, nwg);
  if (g >= p.rows * p.d) {
    return;
  }
  let r = g / p.d;
  let c = g % p.d;
  let base = p.off_x + r * 2u * p.d + c;
  let gv = f32(x[base]);
  act[g] = T(gv * sigm(gv) * f32(x[base + p.d]));
}

@compute @workgroup_size(256)
fn swiglu_fused_bwd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = linear_id(gid, nwg);
  if (g >= p.rows * p.d) {
    return;
  }
  let r = g / p.d;
  let c = g % p.d;
  let base = p.off_x + r * 2u * p.d + c;
  let gv = f32(x[base]);
  let uv = f32(x[base + p.d]);
  let s = sigm(gv);
  let d = f32(da[p.off_y + g]);
  let o = r * 2u * p.d + c;
  out[o] = T(d * uv * s * (1.0 + gv * (1.0 - s)));
  out[o + p.d] = T(d * gv * s);
}
