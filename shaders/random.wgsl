// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011): element i of a draw
// depends only on (seed, offset + i), so results are reproducible and independent of
// dispatch shape. Uniform in [lo, hi) or normal(mean, std) via Box–Muller.
alias T = f32;

override WG: u32 = 256u;

struct Params {
  n: u32,
  seed_lo: u32,
  seed_hi: u32,
  offset_lo: u32,
  offset_hi: u32,
  _pad: u32,
  a: f32,   // lo or mean
  b: f32,   // hi or std
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<T>;

fn mulhilo(a: u32, b: u32) -> vec2u {
  // 32×32 → 64-bit product from 16-bit halves (WGSL has no 64-bit integers).
  let a_lo = a & 0xffffu; let a_hi = a >> 16u;
  let b_lo = b & 0xffffu; let b_hi = b >> 16u;
  let ll = a_lo * b_lo;
  let lh = a_lo * b_hi;
  let hl = a_hi * b_lo;
  let hh = a_hi * b_hi;
  let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
  let hi = hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
  let lo = (ll & 0xffffu) | (mid << 16u);
  return vec2u(hi, lo);
}

fn philox(ctr_in: vec4u, key_in: vec2u) -> vec4u {
  var ctr = ctr_in;
  var key = key_in;
  for (var r = 0u; r < 10u; r++) {
    let p0 = mulhilo(0xD2511F53u, ctr.x);
    let p1 = mulhilo(0xCD9E8D57u, ctr.z);
    ctr = vec4u(p1.x ^ ctr.y ^ key.x, p1.y, p0.x ^ ctr.w ^ key.y, p0.y);
    key = key + vec2u(0x9E3779B9u, 0xBB67AE85u);
  }
  return ctr;
}

fn draw(i: u32) -> vec4u {
  let lo = p.offset_lo + i;
  let carry = select(0u, 1u, lo < p.offset_lo);
  return philox(vec4u(lo, p.offset_hi + carry, 0x6d6f6e69u, 0x776562u), vec2u(p.seed_lo, p.seed_hi));
}

// 24 random bits → [0, 1)
fn to_unit(x: u32) -> f32 {
  return f32(x >> 8u) * (1.0 / 16777216.0);
}

@compute @workgroup_size(WG)
fn uniform_draw(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  out[i] = T(p.a + (p.b - p.a) * to_unit(draw(i).x));
}

@compute @workgroup_size(WG)
fn normal_draw(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  let r = draw(i);
  let u1 = (f32(r.x >> 8u) + 1.0) * (1.0 / 16777216.0);  // (0, 1]: log is finite
  let u2 = to_unit(r.y);
  let z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
  out[i] = T(p.a + p.b * z);
}
