// Patchify: images x [N, C, H, W] (any strides) → rows [N·gh·gw, C·p·p] (contiguous),
// gh = H/p, gw = W/p. Row r = (n·gh + py)·gw + px (row-major over the patch grid of
// each image), column j = (c·p + dy)·p + dx — the flattening of a Conv2d weight
// [out, C, p, p], so patchify + Linear is Conv2d(kernel = stride = p).
//
// `unpatchify` is the backward: dx [N, C, H, W] (contiguous) from gy [R, C·p·p] (any
// strides). Every pixel belongs to exactly one patch, so it is a pure gather: one thread
// per pixel, no accumulation, deterministic.
alias T = f32;

override WG: u32 = 256u;

struct Params {
  n: u32,
  c: u32,
  h: u32,
  w: u32,
  p: u32,
  gh: u32,
  gw: u32,
  count: u32,   // elements written
  s0: u32,      // forward: x strides (n, c, h, w); backward: gy strides (row, col, -, -)
  s1: u32,
  s2: u32,
  s3: u32,
  off: u32,
  _p0: u32,
  _p1: u32,
  _p2: u32,
}

@group(0) @binding(0) var<uniform> prm: Params;
@group(0) @binding(1) var<storage, read> src: array<T>;
@group(0) @binding(2) var<storage, read_write> dst: array<T>;

fn flat_id(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

@compute @workgroup_size(WG)
fn patchify(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = flat_id(gid, nwg);
  if (idx >= prm.count) { return; }
  let pp = prm.p * prm.p;
  let kc = prm.c * pp;
  let row = idx / kc;
  let col = idx % kc;
  let per_img = prm.gh * prm.gw;
  let n = row / per_img;
  let g = row % per_img;
  let gy = g / prm.gw;
  let gx = g % prm.gw;
  let c = col / pp;
  let r = col % pp;
  let dy = r / prm.p;
  let dx = r % prm.p;
  let at = prm.off + n * prm.s0 + c * prm.s1 + (gy * prm.p + dy) * prm.s2 + (gx * prm.p + dx) * prm.s3;
  dst[idx] = src[at];
}

@compute @workgroup_size(WG)
fn unpatchify(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = flat_id(gid, nwg);
  if (idx >= prm.count) { return; }
  let xx = idx % prm.w;
  let t0 = idx / prm.w;
  let yy = t0 % prm.h;
  let t1 = t0 / prm.h;
  let c = t1 % prm.c;
  let n = t1 / prm.c;
  let row = (n * prm.gh + yy / prm.p) * prm.gw + xx / prm.p;
  let col = (c * prm.p + yy % prm.p) * prm.p + xx % prm.p;
  dst[idx] = src[prm.off + row * prm.s0 + col * prm.s1];
}
