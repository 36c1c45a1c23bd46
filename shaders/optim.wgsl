// Optimizer updates, one pass over a parameter, updating it and its state in place.
// AdamW (decoupled weight decay, bias correction folded into the step sizes by the host)
// and SGD with momentum (PyTorch's formulation, optional Nesterov).
// Each gradient is multiplied by the uniform `grad_scale` (a host number: loss scaling) and
// by a 1-element storage buffer (a GPU-computed scale: global-norm clipping, see clip.wgsl;
// the host binds a buffer holding 1.0 when there is none).
override WG: u32 = 256u;

struct AdamParams {
  n: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
  lr: f32,          // learning rate
  beta1: f32,
  beta2: f32,
  eps: f32,
  weight_decay: f32,
  bc1: f32,         // 1 - beta1^t
  bc2_sqrt: f32,    // sqrt(1 - beta2^t)
  grad_scale: f32,  // multiplies the gradient (clipping, loss scaling)
}

@group(0) @binding(0) var<uniform> ap: AdamParams;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read> a_gscale: array<f32>;

@compute @workgroup_size(WG)
fn adamw(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= ap.n) { return; }
  let g = grad[i] * ap.grad_scale * a_gscale[0];
  let mi = ap.beta1 * m[i] + (1.0 - ap.beta1) * g;
  let vi = ap.beta2 * v[i] + (1.0 - ap.beta2) * g * g;
  m[i] = mi;
  v[i] = vi;
  var p = param[i];
  p = p - ap.lr * ap.weight_decay * p;
  // PyTorch: p -= lr/bc1 · m / (sqrt(v)/sqrt(bc2) + eps)
  p = p - (ap.lr / ap.bc1) * mi / (sqrt(vi) / ap.bc2_sqrt + ap.eps);
  param[i] = p;
}

struct SgdParams {
  n: u32,
  nesterov: u32,
  first_step: u32,
  _pad: u32,
  lr: f32,
  momentum: f32,
  dampening: f32,
  weight_decay: f32,
  grad_scale: f32,
}

@group(0) @binding(0) var<uniform> sp: SgdParams;
@group(0) @binding(1) var<storage, read_write> s_param: array<f32>;
@group(0) @binding(2) var<storage, read> s_grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> s_buf: array<f32>;
@group(0) @binding(4) var<storage, read> s_gscale: array<f32>;

@compute @workgroup_size(WG)
fn sgd(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= sp.n) { return; }
  var p = s_param[i];
  var g = s_grad[i] * sp.grad_scale * s_gscale[0] + sp.weight_decay * p;
  if (sp.momentum != 0.0) {
    var b = g;
    if (sp.first_step == 0u) { b = sp.momentum * s_buf[i] + (1.0 - sp.dampening) * g; }
    s_buf[i] = b;
    g = select(b, g + sp.momentum * b, sp.nesterov != 0u);
  }
  s_param[i] = p - sp.lr * g;
}
