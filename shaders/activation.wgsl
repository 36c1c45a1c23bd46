// Gated activations. swiglu: y = silu(gate) · up, and its fused backward writing both
// gradients in one pass:  dgate = dy · up · σ(g)(1 + g(1 − σ(g))),  dup = dy · silu(g).
// Inputs are row views: element (r, c) of a view lives at off + r·stride + c, so halves of
// a fused projection are read without copies. Outputs are contiguous.
alias T = f32;

override WG: u32 = 256u;

struct Params {
  n: u32,
  cols: u32,
  g_off: u32,
  g_stride: u32,
  u_off: u32,
  u_stride: u32,
  d_off: u32,
  d_stride: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate: array<T>;
@group(0) @binding(2) var<storage, read> up: array<T>;
// swiglu_forward
@group(0) @binding(3) var<storage, read_write> y: array<T>;
// swiglu_backward
@group(0) @binding(3) var<storage, read> dy: array<T>;
@group(0) @binding(4) var<storage, read_write> dgate: array<T>;
@group(0) @binding(5) var<storage, read_write> dup: array<T>;

fn sigmoid(x: f32) -> f32 {
  // exp of a non-positive argument only: no overflow for large |x|.
  let e = exp(-abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}

@compute @workgroup_size(WG)
fn swiglu_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  let r = i / p.cols;
  let c = i - r * p.cols;
  let g = f32(gate[p.g_off + r * p.g_stride + c]);
  let u = f32(up[p.u_off + r * p.u_stride + c]);
  y[i] = T(g * sigmoid(g) * u);
}

@compute @workgroup_size(WG)
fn swiglu_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  let r = i / p.cols;
  let c = i - r * p.cols;
  let g = f32(gate[p.g_off + r * p.g_stride + c]);
  let u = f32(up[p.u_off + r * p.u_stride + c]);
  let d = f32(dy[p.d_off + r * p.d_stride + c]);
  let s = sigmoid(g);
  dgate[i] = T(d * u * s * (1.0 + g * (1.0 - s)));
  dup[i] = T(d * g * s);
}
