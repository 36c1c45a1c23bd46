// Elementwise kernels over strided views of up to 8 dimensions: unary, binary (with
// broadcasting through zero strides) and ternary select. The output view may itself be
// strided, which makes `unary` with OP=0 the general strided copy used by contiguous(),
// concat and slice backward. OP is an override constant: each op is its own pipeline and
// the switch folds away at compile time. CONTIG=true skips index decomposition when every
// view is contiguous with the output's shape.

alias T = f32;

override OP: u32 = 0u;
override WG: u32 = 256u;
override CONTIG: bool = false;

struct Params {
  n: u32,
  rank: u32,
  off_a: u32,
  off_b: u32,
  off_c: u32,
  off_out: u32,
  alpha: f32,
  beta: f32,
  shape: array<vec4u, 2>,
  st_a: array<vec4u, 2>,
  st_b: array<vec4u, 2>,
  st_c: array<vec4u, 2>,
  st_out: array<vec4u, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;

fn dim_of(v: array<vec4u, 2>, d: u32) -> u32 {
  return v[d / 4u][d % 4u];
}

fn linear_id(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

// Offsets of element `i` (row-major over p.shape) in each view.
struct Offsets { a: u32, b: u32, c: u32, o: u32 }

fn offsets(i: u32) -> Offsets {
  if (CONTIG) {
    return Offsets(p.off_a + i, p.off_b + i, p.off_c + i, p.off_out + i);
  }
  var r = i;
  var o = Offsets(p.off_a, p.off_b, p.off_c, p.off_out);
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let n = dim_of(p.shape, u32(d));
    let c = r % n;
    r = r / n;
    o.a += c * dim_of(p.st_a, u32(d));
    o.b += c * dim_of(p.st_b, u32(d));
    o.c += c * dim_of(p.st_c, u32(d));
    o.o += c * dim_of(p.st_out, u32(d));
  }
  return o;
}

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const INV_SQRT_2: f32 = 0.7071067811865476;
const INV_SQRT_2PI: f32 = 0.3989422804014327;

// erf with |error| < 1.2e-7 (W. J. Cody's rational approximation via erfc, Numerical Recipes erfcc).
fn erf_approx(x: f32) -> f32 {
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.5 * z);
  let y = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
          t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
          t * (-0.82215223 + t * 0.17087277)))))))));
  return select(y - 1.0, 1.0 - y, x >= 0.0);
}

fn sigmoid(x: f32) -> f32 {
  // Split by sign so exp never overflows.
  if (x >= 0.0) {
    return 1.0 / (1.0 + exp(-x));
  }
  let e = exp(x);
  return e / (1.0 + e);
}

fn tanh_safe(x: f32) -> f32 {
  // Some drivers return NaN from tanh for |x| large; clamp where tanh is ±1 in f32.
  return tanh(clamp(x, -15.0, 15.0));
}

fn unary_op(x: f32) -> f32 {
  switch OP {
    case 0u: { return x; }
    case 1u: { return -x; }
    case 2u: { return exp(x); }
    case 3u: { return log(x); }
    case 4u: { return sqrt(x); }
    case 5u: { return inverseSqrt(x); }
    case 6u: { return tanh_safe(x); }
    case 7u: { return sigmoid(x); }
    case 8u: { return x * sigmoid(x); }
    case 9u: { return 0.5 * x * (1.0 + erf_approx(x * INV_SQRT_2)); }
    case 10u: { return max(x, 0.0); }
    case 11u: { return abs(x); }
    case 12u: { return x * p.alpha + p.beta; }
    case 13u: { return pow_signed(x, p.alpha); }
    case 14u: { return sign(x); }
    case 15u: { return x * x; }
    case 16u: { return 1.0 / x; }
    case 17u: { return 0.5 * x * (1.0 + tanh_safe(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))); }
    case 18u: { return select(0.0, 1.0, x != 0.0); }
    case 19u: { return clamp(x, p.alpha, p.beta); }
    default: { return x; }
  }
}

// x^y following IEEE pow for negative bases with integral exponents (as PyTorch does).
fn pow_signed(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  if (x >= 0.0) { return pow(x, y); }
  if (y != floor(y)) { var nan_bits = 0x7fc00000u; return bitcast<f32>(nan_bits); }
  let m = pow(-x, y);
  let odd = (abs(y) % 2.0) == 1.0;
  return select(m, -m, odd);
}

fn binary_op(a: f32, b: f32) -> f32 {
  switch OP {
    case 0u: { return a + b; }
    case 1u: { return a - b; }
    case 2u: { return a * b; }
    case 3u: { return a / b; }
    case 4u: { return pow_signed(a, b); }
    case 5u: { return max(a, b); }
    case 6u: { return min(a, b); }
    case 7u: { return select(0.0, 1.0, a == b); }
    case 8u: { return select(0.0, 1.0, a > b); }
    case 9u: { return select(0.0, 1.0, a >= b); }
    case 10u: { return select(0.0, 1.0, a < b); }
    case 11u: { return select(0.0, 1.0, a <= b); }
    case 12u: { return a * p.alpha + b * p.beta; }
    // Backward helpers: a = saved forward value, b = incoming gradient.
    case 20u: { return b * a * (1.0 - a); }                       // sigmoid'(from output)
    case 21u: { return b * (1.0 - a * a); }                       // tanh'(from output)
    case 22u: { let s = sigmoid(a); return b * s * (1.0 + a * (1.0 - s)); }          // silu'
    case 23u: {                                                   // gelu' (erf)
      let cdf = 0.5 * (1.0 + erf_approx(a * INV_SQRT_2));
      let pdf = INV_SQRT_2PI * exp(-0.5 * a * a);
      return b * (cdf + a * pdf);
    }
    case 24u: { return select(0.0, b, a > 0.0); }                 // relu'
    case 25u: { return b * sign(a); }                             // abs'
    case 26u: {                                                   // gelu' (tanh approximation)
      let u = SQRT_2_OVER_PI * (a + 0.044715 * a * a * a);
      let th = tanh_safe(u);
      let du = SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * a * a);
      return b * (0.5 * (1.0 + th) + 0.5 * a * (1.0 - th * th) * du);
    }
    case 27u: { return select(0.0, b, a >= p.alpha && a <= p.beta); } // clamp'
    default: { return a; }
  }
}

// Bindings: each entry point reads its inputs from @binding(1…) and writes the next one.
// Variables that share a binding number belong to different entry points.
@group(0) @binding(1) var<storage, read> in_a: array<T>;
@group(0) @binding(2) var<storage, read> in_b: array<T>;
@group(0) @binding(3) var<storage, read> in_c: array<T>;
@group(0) @binding(2) var<storage, read_write> out_unary: array<T>;
@group(0) @binding(3) var<storage, read_write> out_binary: array<T>;
@group(0) @binding(4) var<storage, read_write> out_select: array<T>;

@compute @workgroup_size(WG)
fn unary(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_id(gid, nwg);
  if (i >= p.n) { return; }
  let o = offsets(i);
  out_unary[o.o] = T(unary_op(f32(in_a[o.a])));
}

@compute @workgroup_size(WG)
fn binary(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_id(gid, nwg);
  if (i >= p.n) { return; }
  let o = offsets(i);
  out_binary[o.o] = T(binary_op(f32(in_a[o.a]), f32(in_b[o.b])));
}

// out = cond != 0 ? b : c
@compute @workgroup_size(WG)
fn select3(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_id(gid, nwg);
  if (i >= p.n) { return; }
  let o = offsets(i);
  out_select[o.o] = select(in_c[o.c], in_b[o.b], f32(in_a[o.a]) != 0.0);
}

// Bit-exact strided copy of 32-bit elements (integer tensors).
@group(0) @binding(1) var<storage, read> in_bits: array<u32>;
@group(0) @binding(2) var<storage, read_write> out_bits: array<u32>;

@compute @workgroup_size(WG)
fn copy_bits(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_id(gid, nwg);
  if (i >= p.n) { return; }
  let o = offsets(i);
  out_bits[o.o] = in_bits[o.a];
}
