// Rotary position embedding, rotate-half convention (Llama / Hugging Face), on x [T, H, D]
// (any strides) with integer positions [T]; output contiguous [T, H, D].
//   y[i]      = x[i]·cos θ − x[i + r/2]·sin θ
//   y[i+r/2]  = x[i+r/2]·cos θ + x[i]·sin θ          (i < r/2, θ = SIGN · pos · f_i)
// dims ≥ r pass through. SIGN = −1 is the backward (rotation by −θ).
//
// Angles in f32 without losing the position's magnitude: θ/2π = pos · c_i (turns) is
// reduced modulo 1 exactly. c_i = f_i / 2π is given by the host as four f32 pieces of
// ≤ 12 significant bits each (≈48 bits in all); pos (|pos| < 2^24) is split into two
// 12-bit halves, so every partial product is exact in f32 and its fraction is exact.
// Only the final sum of eight fractions rounds: |error| ≲ 1e-6 turns at any position,
// where the plain f32 product pos·f_i would be off by ~1e-2 rad at pos ≈ 1e5.
alias T = f32;

override WG: u32 = 256u;
override SIGN: f32 = 1.0;

struct Params {
  t: u32,
  h: u32,
  d: u32,
  half_r: u32,
  s_t: u32,
  s_h: u32,
  s_d: u32,
  off: u32,
  per_head: u32,  // d − half_r: threads per (token, head)
  pos_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> pos: array<i32>;
@group(0) @binding(3) var<storage, read> turns_per_pos: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> y: array<T>;

fn turns(ap: u32, c: vec4f) -> f32 {
  let lo = f32(ap & 0xfffu);
  let hi = f32(ap >> 12u);
  let c_hi = c * 4096.0;
  var acc = fract(lo * c.x);
  acc = fract(acc + fract(hi * c_hi.x));
  acc = fract(acc + fract(lo * c.y));
  acc = fract(acc + fract(hi * c_hi.y));
  acc = fract(acc + fract(lo * c.z));
  acc = fract(acc + fract(hi * c_hi.z));
  acc = fract(acc + fract(lo * c.w));
  acc = fract(acc + fract(hi * c_hi.w));
  return acc;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = gid.x + gid.y * nwg.x * WG;
  if (idx >= p.t * p.h * p.per_head) { return; }
  let j = idx % p.per_head;
  let th = idx / p.per_head;
  let hh = th % p.h;
  let tt = th / p.h;
  let src = p.off + tt * p.s_t + hh * p.s_h;
  let dst = th * p.d;
  if (j < p.half_r) {
    let ps = pos[p.pos_off + tt];
    let ap = u32(abs(ps));
    var tr = turns(ap, turns_per_pos[j]);
    tr = select(tr, tr - 1.0, tr >= 0.5);            // [-0.5, 0.5)
    let sgn = select(SIGN, -SIGN, ps < 0);
    let ang = sgn * tr * 6.283185307179586;
    let cs = cos(ang);
    let sn = sin(ang);
    let x1 = f32(x[src + j * p.s_d]);
    let x2 = f32(x[src + (j + p.half_r) * p.s_d]);
    y[dst + j] = T(x1 * cs - x2 * sn);
    y[dst + j + p.half_r] = T(x2 * cs + x1 * sn);
  } else {
    let e = j + p.half_r;
    y[dst + e] = x[src + e * p.s_d];
  }
}
