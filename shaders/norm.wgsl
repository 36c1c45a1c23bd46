// RMSNorm and LayerNorm over the last axis, forward and fused backward.
//
// forward:  one workgroup per row. Reads the row (LayerNorm: twice more, two-pass mean
//           and variance), writes y and the row's statistics (mean, rstd) as f32 for the
//           backward. MODE 0 = RMSNorm (mean fixed at 0), 1 = LayerNorm.
// backward: one workgroup per chunk of consecutive rows. For each row: dx from the saved
//           statistics (two row sums reduced in workgroup memory), and the chunk's partial
//           sums of dy·x̂ (dweight) and dy (dbias) accumulated per column — each column owned
//           by one thread (in registers when REG), so no atomics and a fixed summation order.
// colsum:   dweight/dbias = the sum of the chunks' partials, column by column, in chunk
//           order: deterministic.
// Rows are `stride` elements apart from element `x_off` (views without copies).
alias T = f32;

override WG: u32 = 128u;
override MODE: u32 = 0u;
override HAS_BIAS: bool = false;
// backward: keep each thread's column partials in registers (d ≤ REG_COLS·WG) rather
// than accumulating them in the partials buffer row by row.
override REG: bool = false;
const REG_COLS: u32 = 16u;

struct Params {
  rows: u32,
  d: u32,
  x_off: u32,
  x_stride: u32,
  w_off: u32,
  b_off: u32,
  g_off: u32,
  g_stride: u32,
  eps: f32,
  chunks: u32,
  rows_per_chunk: u32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> w: array<T>;
// forward
@group(0) @binding(3) var<storage, read> b: array<T>;
@group(0) @binding(4) var<storage, read_write> y: array<T>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;
// backward
@group(0) @binding(3) var<storage, read> gy: array<T>;
@group(0) @binding(4) var<storage, read> st: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<T>;
@group(0) @binding(6) var<storage, read_write> part: array<f32>;
// colsum
@group(0) @binding(1) var<storage, read> part_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> col_out: array<T>;

var<workgroup> red: array<vec2f, WG>;

fn wg_sum2(v: vec2f, lid: u32) -> vec2f {
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

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid3: vec3u) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let lid = lid3.x;
  let d = p.d;
  let inv_d = 1.0 / f32(d);
  let base = p.x_off + row * p.x_stride;
  var mean = 0.0;
  if (MODE == 1u) {
    var s = 0.0;
    for (var i = lid; i < d; i += WG) { s += f32(x[base + i]); }
    mean = wg_sum2(vec2f(s, 0.0), lid).x * inv_d;
  }
  var q = 0.0;
  for (var i = lid; i < d; i += WG) {
    let c = f32(x[base + i]) - mean;
    q += c * c;
  }
  let rstd = 1.0 / sqrt(wg_sum2(vec2f(q, 0.0), lid).x * inv_d + p.eps);
  let ob = row * d;
  for (var i = lid; i < d; i += WG) {
    var v = (f32(x[base + i]) - mean) * rstd * f32(w[p.w_off + i]);
    if (HAS_BIAS) { v += f32(b[p.b_off + i]); }
    y[ob + i] = T(v);
  }
  if (lid == 0u) {
    stats[2u * row] = mean;
    stats[2u * row + 1u] = rstd;
  }
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid3: vec3u) {
  let chunk = wid.x + wid.y * nwg.x;
  if (chunk >= p.chunks) { return; }
  let lid = lid3.x;
  let d = p.d;
  let inv_d = 1.0 / f32(d);
  let r0 = chunk * p.rows_per_chunk;
  let r1 = min(r0 + p.rows_per_chunk, p.rows);
  let pw = chunk * d;
  let pb = (p.chunks + chunk) * d;
  var acc_w: array<f32, REG_COLS>;
  var acc_b: array<f32, REG_COLS>;
  if (!REG) {
    for (var i = lid; i < d; i += WG) {
      part[pw + i] = 0.0;
      if (HAS_BIAS) { part[pb + i] = 0.0; }
    }
  }
  for (var row = r0; row < r1; row++) {
    let xb = p.x_off + row * p.x_stride;
    let gb = p.g_off + row * p.g_stride;
    let mean = st[2u * row];
    let rstd = st[2u * row + 1u];
    // s.x = Σ g, s.y = Σ g·x̂ with g = dy·w
    var s = vec2f(0.0);
    for (var i = lid; i < d; i += WG) {
      let xh = (f32(x[xb + i]) - mean) * rstd;
      let g = f32(gy[gb + i]) * f32(w[p.w_off + i]);
      s += vec2f(g, g * xh);
    }
    s = wg_sum2(s, lid) * inv_d;
    let ob = row * d;
    if (REG) {
      // Constant trip count: unrollable, so acc_w/acc_b stay in registers.
      for (var k = 0u; k < REG_COLS; k++) {
        let i = lid + k * WG;
        if (i < d) {
          let xh = (f32(x[xb + i]) - mean) * rstd;
          let dy = f32(gy[gb + i]);
          var t = dy * f32(w[p.w_off + i]) - xh * s.y;
          if (MODE == 1u) { t -= s.x; }
          dx[ob + i] = T(rstd * t);
          acc_w[k] += dy * xh;
          if (HAS_BIAS) { acc_b[k] += dy; }
        }
      }
    } else {
      for (var i = lid; i < d; i += WG) {
        let xh = (f32(x[xb + i]) - mean) * rstd;
        let dy = f32(gy[gb + i]);
        var t = dy * f32(w[p.w_off + i]) - xh * s.y;
        if (MODE == 1u) { t -= s.x; }
        dx[ob + i] = T(rstd * t);
        part[pw + i] += dy * xh;
        if (HAS_BIAS) { part[pb + i] += dy; }
      }
    }
  }
  if (REG) {
    for (var k = 0u; k < REG_COLS; k++) {
      let i = lid + k * WG;
      if (i < d) {
        part[pw + i] = acc_w[k];
        if (HAS_BIAS) { part[pb + i] = acc_b[k]; }
      }
    }
  }
}

@compute @workgroup_size(WG)
fn colsum(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.d) { return; }
  var s = 0.0;
  for (var c = 0u; c < p.chunks; c++) { s += part_in[p.x_off + c * p.d + i]; }
  col_out[i] = T(s);
}
