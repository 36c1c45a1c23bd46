// Global-norm gradient clipping without a host round trip.
// sumsq:    partial sums of squares of one gradient, one per workgroup of CHUNK elements,
//           written to partials[slot + workgroup] (each gradient has its own slot range).
// finalize: one workgroup sums all partials in a fixed order (deterministic), writes the
//           norm and scale = min(1, max_norm / (norm + 1e-6)).
// scale:    grad *= scale[0], in place.
override WG: u32 = 256u;
const PER_THREAD: u32 = 16u;

struct Params {
  n: u32,
  slot: u32,   // sumsq: first partial slot; scale: element offset of the gradient
  off: u32,    // sumsq: element offset of the gradient
  max_norm: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read_write> scale_out: array<f32>;

var<workgroup> red: array<f32, WG>;

fn wg_sum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  return red[0];
}

@compute @workgroup_size(WG)
fn sumsq(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid3: vec3u) {
  let w = wid.x + wid.y * nwg.x;
  let start = w * WG * PER_THREAD;
  if (start >= p.n) { return; }
  let lid = lid3.x;
  var s = 0.0;
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = start + k * WG + lid;
    if (i < p.n) {
      let g = src[p.off + i];
      s += g * g;
    }
  }
  let total = wg_sum(s, lid);
  if (lid == 0u) { dst[p.slot + w] = total; }
}

@compute @workgroup_size(WG)
fn finalize(@builtin(local_invocation_id) lid3: vec3u) {
  let lid = lid3.x;
  var s = 0.0;
  for (var i = lid; i < p.n; i += WG) { s += src[i]; }
  let total = wg_sum(s, lid);
  if (lid == 0u) {
    let norm = sqrt(total);
    dst[0] = norm;
    scale_out[0] = min(1.0, p.max_norm / (norm + 1e-6));
  }
}

@compute @workgroup_size(WG)
fn scale(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  dst[p.slot + i] = dst[p.slot + i] * src[0];
}
