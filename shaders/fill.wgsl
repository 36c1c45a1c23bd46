// Creation kernels: out[i] = alpha + i * beta (fill, arange) for float and int tensors.
alias T = f32;

override WG: u32 = 256u;

struct Params {
  n: u32,
  _pad: u32,
  alpha: f32,
  beta: f32,
  alpha_i: i32,
  beta_i: i32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out_f: array<T>;
@group(0) @binding(1) var<storage, read_write> out_i: array<i32>;

@compute @workgroup_size(WG)
fn fill_float(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  out_f[i] = T(p.alpha + f32(i) * p.beta);
}

@compute @workgroup_size(WG)
fn fill_int(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  out_i[i] = p.alpha_i + i32(i) * p.beta_i;
}
