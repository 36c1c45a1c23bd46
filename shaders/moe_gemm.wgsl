// Grouped GEMM for mixture-of-experts layers: every expert's matmul over its own
// variable-length segment of the expert-sorted rows, in ONE launch, with no host-side
// knowledge of the segment sizes.
//
//   gemm_rows:  C[q, n] = Σ_k A[q, k] · B_e[k, n] for every row q of expert e's segment.
//               Workgroup y = a slot of the tile table built on the GPU (moe_route.wgsl,
//               plan_offsets): (expert, row0, row1) with row1 - row0 ≤ BM = 8·WGY. The host
//               sizes the grid for the worst case, ceil(N / BM) + E slots; unused slots
//               (and experts with no rows, which own no slot) exit at once. B_e is expert
//               e's weight as a strided view (off_b + e·sb_e), so the forward (x·W_eᵀ, W
//               stored [out, in]) and the input gradient (dy·W_e) are the same kernel.
//   gemm_wgrad: C_e[i, j] = Σ_{q in segment(e)} A[q, i] · B[q, j] — the weight gradient
//               (dW_e = dYᵀ·X over the segment). Workgroup z = expert; the reduction runs
//               in row order inside one thread: deterministic, no atomics, and an empty
//               expert writes zeros.
//
// 8×8 outputs per thread in 16 vec4 accumulators, hand-unrolled like matmul.wgsl's
// `blocked8` (on lavapipe every lane-varying load is a gather: the bigger the register
// block the fewer gathers per FMA). Edge rows/columns are clamped for loads and masked
// for stores. Arithmetic in f32 whatever T is.
alias T = f32;

override WGX: u32 = 8u;
override WGY: u32 = 4u;

struct Params {
  m: u32,
  n: u32,
  k: u32,
  off_a: u32,
  sa_m: u32,
  sa_k: u32,
  off_b: u32,
  sb_e: u32,
  sb_k: u32,
  sb_n: u32,
  off_c: u32,
  sc_e: u32,
  ldc: u32,
  _p0: u32,
  _p1: u32,
  _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<T>;
@group(0) @binding(2) var<storage, read> b: array<T>;
@group(0) @binding(3) var<storage, read_write> c: array<T>;
// gemm_rows: tile table (expert, row0, row1, _)
@group(0) @binding(4) var<storage, read> tiles: array<vec4u>;
// gemm_wgrad: segment offsets per expert (E + 1)
@group(0) @binding(4) var<storage, read> offsets: array<u32>;

fn store_row8(base: u32, ok: bool, col0: u32, lo: vec4f, hi: vec4f) {
  if (!ok) { return; }
  for (var j = 0u; j < 4u; j++) {
    let c0 = col0 + j;
    if (c0 < p.n) { c[base + c0] = T(lo[j]); }
    let c1 = col0 + 4u + j;
    if (c1 < p.n) { c[base + c1] = T(hi[j]); }
  }
}

@compute @workgroup_size(WGX, WGY)
fn gemm_rows(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let tile = tiles[wid.y];
  let e = tile.x;
  if (e == 0xffffffffu) { return; }
  let row0 = tile.y + lid.y * 8u;
  let rend = tile.z;
  let col0 = (wid.x * WGX + lid.x) * 8u;
  if (row0 >= rend || col0 >= p.n) { return; }
  let mm = rend - 1u;
  let nn = p.n - 1u;
  let a0 = p.off_a + min(row0, mm) * p.sa_m;
  let a1 = p.off_a + min(row0 + 1u, mm) * p.sa_m;
  let a2 = p.off_a + min(row0 + 2u, mm) * p.sa_m;
  let a3 = p.off_a + min(row0 + 3u, mm) * p.sa_m;
  let a4 = p.off_a + min(row0 + 4u, mm) * p.sa_m;
  let a5 = p.off_a + min(row0 + 5u, mm) * p.sa_m;
  let a6 = p.off_a + min(row0 + 6u, mm) * p.sa_m;
  let a7 = p.off_a + min(row0 + 7u, mm) * p.sa_m;
  let ob = p.off_b + e * p.sb_e;
  let b0 = ob + min(col0, nn) * p.sb_n;
  let b1 = ob + min(col0 + 1u, nn) * p.sb_n;
  let b2 = ob + min(col0 + 2u, nn) * p.sb_n;
  let b3 = ob + min(col0 + 3u, nn) * p.sb_n;
  let b4 = ob + min(col0 + 4u, nn) * p.sb_n;
  let b5 = ob + min(col0 + 5u, nn) * p.sb_n;
  let b6 = ob + min(col0 + 6u, nn) * p.sb_n;
  let b7 = ob + min(col0 + 7u, nn) * p.sb_n;
  var c0l = vec4f(); var c0h = vec4f(); var c1l = vec4f(); var c1h = vec4f();
  var c2l = vec4f(); var c2h = vec4f(); var c3l = vec4f(); var c3h = vec4f();
  var c4l = vec4f(); var c4h = vec4f(); var c5l = vec4f(); var c5h = vec4f();
  var c6l = vec4f(); var c6h = vec4f(); var c7l = vec4f(); var c7h = vec4f();
  for (var kk = 0u; kk < p.k; kk++) {
    let ka = kk * p.sa_k;
    let kb = kk * p.sb_k;
    let bl = vec4f(f32(b[b0 + kb]), f32(b[b1 + kb]), f32(b[b2 + kb]), f32(b[b3 + kb]));
    let bh = vec4f(f32(b[b4 + kb]), f32(b[b5 + kb]), f32(b[b6 + kb]), f32(b[b7 + kb]));
    var x = f32(a[a0 + ka]); c0l += x * bl; c0h += x * bh;
    x = f32(a[a1 + ka]); c1l += x * bl; c1h += x * bh;
    x = f32(a[a2 + ka]); c2l += x * bl; c2h += x * bh;
    x = f32(a[a3 + ka]); c3l += x * bl; c3h += x * bh;
    x = f32(a[a4 + ka]); c4l += x * bl; c4h += x * bh;
    x = f32(a[a5 + ka]); c5l += x * bl; c5h += x * bh;
    x = f32(a[a6 + ka]); c6l += x * bl; c6h += x * bh;
    x = f32(a[a7 + ka]); c7l += x * bl; c7h += x * bh;
  }
  let cb = p.off_c + row0 * p.ldc;
  store_row8(cb, row0 < rend, col0, c0l, c0h);
  store_row8(cb + p.ldc, row0 + 1u < rend, col0, c1l, c1h);
  store_row8(cb + 2u * p.ldc, row0 + 2u < rend, col0, c2l, c2h);
  store_row8(cb + 3u * p.ldc, row0 + 3u < rend, col0, c3l, c3h);
  store_row8(cb + 4u * p.ldc, row0 + 4u < rend, col0, c4l, c4h);
  store_row8(cb + 5u * p.ldc, row0 + 5u < rend, col0, c5l, c5h);
  store_row8(cb + 6u * p.ldc, row0 + 6u < rend, col0, c6l, c6h);
  store_row8(cb + 7u * p.ldc, row0 + 7u < rend, col0, c7l, c7h);
}

// Output C_e is m × n (i < m rows, j < n columns) at off_c + e·sc_e + i·ldc + j.
// A[q, i] = a[off_a + q·sa_m + i·sa_k], B[q, j] = b[off_b + q·sb_k + j·sb_n].
@compute @workgroup_size(WGX, WGY)
fn gemm_wgrad(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let e = wid.z;
  let q0 = offsets[e];
  let q1 = offsets[e + 1u];
  let row0 = (wid.y * WGY + lid.y) * 8u;
  let col0 = (wid.x * WGX + lid.x) * 8u;
  if (row0 >= p.m || col0 >= p.n) { return; }
  let mm = p.m - 1u;
  let nn = p.n - 1u;
  let a0 = p.off_a + min(row0, mm) * p.sa_k;
  let a1 = p.off_a + min(row0 + 1u, mm) * p.sa_k;
  let a2 = p.off_a + min(row0 + 2u, mm) * p.sa_k;
  let a3 = p.off_a + min(row0 + 3u, mm) * p.sa_k;
  let a4 = p.off_a + min(row0 + 4u, mm) * p.sa_k;
  let a5 = p.off_a + min(row0 + 5u, mm) * p.sa_k;
  let a6 = p.off_a + min(row0 + 6u, mm) * p.sa_k;
  let a7 = p.off_a + min(row0 + 7u, mm) * p.sa_k;
  let b0 = p.off_b + min(col0, nn) * p.sb_n;
  let b1 = p.off_b + min(col0 + 1u, nn) * p.sb_n;
  let b2 = p.off_b + min(col0 + 2u, nn) * p.sb_n;
  let b3 = p.off_b + min(col0 + 3u, nn) * p.sb_n;
  let b4 = p.off_b + min(col0 + 4u, nn) * p.sb_n;
  let b5 = p.off_b + min(col0 + 5u, nn) * p.sb_n;
  let b6 = p.off_b + min(col0 + 6u, nn) * p.sb_n;
  let b7 = p.off_b + min(col0 + 7u, nn) * p.sb_n;
  var c0l = vec4f(); var c0h = vec4f(); var c1l = vec4f(); var c1h = vec4f();
  var c2l = vec4f(); var c2h = vec4f(); var c3l = vec4f(); var c3h = vec4f();
  var c4l = vec4f(); var c4h = vec4f(); var c5l = vec4f(); var c5h = vec4f();
  var c6l = vec4f(); var c6h = vec4f(); var c7l = vec4f(); var c7h = vec4f();
  for (var q = q0; q < q1; q++) {
    let ka = q * p.sa_m;
    let kb = q * p.sb_k;
    let bl = vec4f(f32(b[b0 + kb]), f32(b[b1 + kb]), f32(b[b2 + kb]), f32(b[b3 + kb]));
    let bh = vec4f(f32(b[b4 + kb]), f32(b[b5 + kb]), f32(b[b6 + kb]), f32(b[b7 + kb]));
    var x = f32(a[a0 + ka]); c0l += x * bl; c0h += x * bh;
    x = f32(a[a1 + ka]); c1l += x * bl; c1h += x * bh;
    x = f32(a[a2 + ka]); c2l += x * bl; c2h += x * bh;
    x = f32(a[a3 + ka]); c3l += x * bl; c3h += x * bh;
    x = f32(a[a4 + ka]); c4l += x * bl; c4h += x * bh;
    x = f32(a[a5 + ka]); c5l += x * bl; c5h += x * bh;
    x = f32(a[a6 + ka]); c6l += x * bl; c6h += x * bh;
    x = f32(a[a7 + ka]); c7l += x * bl; c7h += x * bh;
  }
  let cb = p.off_c + e * p.sc_e + row0 * p.ldc;
  store_row8(cb, row0 < p.m, col0, c0l, c0h);
  store_row8(cb + p.ldc, row0 + 1u < p.m, col0, c1l, c1h);
  store_row8(cb + 2u * p.ldc, row0 + 2u < p.m, col0, c2l, c2h);
  store_row8(cb + 3u * p.ldc, row0 + 3u < p.m, col0, c3l, c3h);
  store_row8(cb + 4u * p.ldc, row0 + 4u < p.m, col0, c4l, c4h);
  store_row8(cb + 5u * p.ldc, row0 + 5u < p.m, col0, c5l, c5h);
  store_row8(cb + 6u * p.ldc, row0 + 6u < p.m, col0, c6l, c6h);
  store_row8(cb + 7u * p.ldc, row0 + 7u < p.m, col0, c7l, c7h);
}

// ---------------------------------------------------------------- vec4 variants
// Same problems with 16-byte loads along a contiguous dimension (on lavapipe a per-lane
// vec4 load costs about what a scalar gather does, so 4× fewer loads per FMA). The host
// picks them when the contiguous extents, offsets and strides are multiples of 4.
//   rows4_nt:  gemm_rows with A and B_e both contiguous along k (forward, x · W_eᵀ).
//   rows4_nn:  gemm_rows with A contiguous along k and B_e along n (input gradient, dy · W_e).
//   wgrad4:    gemm_wgrad with A contiguous along i and B along j.
// Reads past an edge are clamped to the last whole vec4 (values never stored).
@group(0) @binding(1) var<storage, read> a4: array<vec4<T>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<T>>;

fn ld_a(i: u32) -> vec4f { return vec4f(a4[i]); }
fn ld_b(i: u32) -> vec4f { return vec4f(b4[i]); }

fn dot4(a: vec4f, b0: vec4f, b1: vec4f, b2: vec4f, b3: vec4f) -> vec4f {
  return vec4f(dot(a, b0), dot(a, b1), dot(a, b2), dot(a, b3));
}

@compute @workgroup_size(WGX, WGY)
fn rows4_nt(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let tile = tiles[wid.y];
  let e = tile.x;
  if (e == 0xffffffffu) { return; }
  let row0 = tile.y + lid.y * 8u;
  let rend = tile.z;
  let col0 = (wid.x * WGX + lid.x) * 8u;
  if (row0 >= rend || col0 >= p.n) { return; }
  let mm = rend - 1u;
  let nn = p.n - 1u;
  let sa = p.sa_m / 4u;
  let sb = p.sb_n / 4u;
  let oa = p.off_a / 4u;
  let ob = (p.off_b + e * p.sb_e) / 4u;
  let a0 = oa + min(row0, mm) * sa; let a1 = oa + min(row0 + 1u, mm) * sa;
  let a2 = oa + min(row0 + 2u, mm) * sa; let a3 = oa + min(row0 + 3u, mm) * sa;
  let a4_ = oa + min(row0 + 4u, mm) * sa; let a5 = oa + min(row0 + 5u, mm) * sa;
  let a6 = oa + min(row0 + 6u, mm) * sa; let a7 = oa + min(row0 + 7u, mm) * sa;
  let b0 = ob + min(col0, nn) * sb; let b1 = ob + min(col0 + 1u, nn) * sb;
  let b2 = ob + min(col0 + 2u, nn) * sb; let b3 = ob + min(col0 + 3u, nn) * sb;
  let b4_ = ob + min(col0 + 4u, nn) * sb; let b5 = ob + min(col0 + 5u, nn) * sb;
  let b6 = ob + min(col0 + 6u, nn) * sb; let b7 = ob + min(col0 + 7u, nn) * sb;
  var c0l = vec4f(); var c0h = vec4f(); var c1l = vec4f(); var c1h = vec4f();
  var c2l = vec4f(); var c2h = vec4f(); var c3l = vec4f(); var c3h = vec4f();
  var c4l = vec4f(); var c4h = vec4f(); var c5l = vec4f(); var c5h = vec4f();
  var c6l = vec4f(); var c6h = vec4f(); var c7l = vec4f(); var c7h = vec4f();
  let kv = p.k / 4u;
  for (var kk = 0u; kk < kv; kk++) {
    let v0 = ld_b(b0 + kk); let v1 = ld_b(b1 + kk); let v2 = ld_b(b2 + kk); let v3 = ld_b(b3 + kk);
    let v4 = ld_b(b4_ + kk); let v5 = ld_b(b5 + kk); let v6 = ld_b(b6 + kk); let v7 = ld_b(b7 + kk);
    var x = ld_a(a0 + kk); c0l += dot4(x, v0, v1, v2, v3); c0h += dot4(x, v4, v5, v6, v7);
    x = ld_a(a1 + kk); c1l += dot4(x, v0, v1, v2, v3); c1h += dot4(x, v4, v5, v6, v7);
    x = ld_a(a2 + kk); c2l += dot4(x, v0, v1, v2, v3); c2h += dot4(x, v4, v5, v6, v7);
    x = ld_a(a3 + kk); c3l += dot4(x, v0, v1, v2, v3); c3h += dot4(x, v4, v5, v6, v7);
    x = ld_a(a4_ + kk); c4l += dot4(x, v0, v1, v2, v3); c4h += dot4(x, v4, v5, v6, v7);
    x = ld_a(a5 + kk); c5l += dot4(x, v0, v1, v2, v3); c5h += dot4(x, v4, v5, v6, v7);
    x = ld_a(a6 + kk); c6l += dot4(x, v0, v1, v2, v3); c6h += dot4(x, v4, v5, v6, v7);
    x = ld_a(a7 + kk); c7l += dot4(x, v0, v1, v2, v3); c7h += dot4(x, v4, v5, v6, v7);
  }
  let cb = p.off_c + row0 * p.ldc;
  store_row8(cb, row0 < rend, col0, c0l, c0h);
  store_row8(cb + p.ldc, row0 + 1u < rend, col0, c1l, c1h);
  store_row8(cb + 2u * p.ldc, row0 + 2u < rend, col0, c2l, c2h);
  store_row8(cb + 3u * p.ldc, row0 + 3u < rend, col0, c3l, c3h);
  store_row8(cb + 4u * p.ldc, row0 + 4u < rend, col0, c4l, c4h);
  store_row8(cb + 5u * p.ldc, row0 + 5u < rend, col0, c5l, c5h);
  store_row8(cb + 6u * p.ldc, row0 + 6u < rend, col0, c6l, c6h);
  store_row8(cb + 7u * p.ldc, row0 + 7u < rend, col0, c7l, c7h);
}

// acc (lo, hi) += a.x·B[k] + a.y·B[k+1] + a.z·B[k+2] + a.w·B[k+3] for one row.
struct Acc2 { lo: vec4f, hi: vec4f }
fn fma_row(c: Acc2, a: vec4f, l0: vec4f, h0: vec4f, l1: vec4f, h1: vec4f, l2: vec4f, h2: vec4f, l3: vec4f, h3: vec4f) -> Acc2 {
  return Acc2(c.lo + a.x * l0 + a.y * l1 + a.z * l2 + a.w * l3, c.hi + a.x * h0 + a.y * h1 + a.z * h2 + a.w * h3);
}

@compute @workgroup_size(WGX, WGY)
fn rows4_nn(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let tile = tiles[wid.y];
  let e = tile.x;
  if (e == 0xffffffffu) { return; }
  let row0 = tile.y + lid.y * 8u;
  let rend = tile.z;
  let col0 = (wid.x * WGX + lid.x) * 8u;
  if (row0 >= rend || col0 >= p.n) { return; }
  let mm = rend - 1u;
  let sa = p.sa_m / 4u;
  let oa = p.off_a / 4u;
  let a0 = oa + min(row0, mm) * sa; let a1 = oa + min(row0 + 1u, mm) * sa;
  let a2 = oa + min(row0 + 2u, mm) * sa; let a3 = oa + min(row0 + 3u, mm) * sa;
  let a4_ = oa + min(row0 + 4u, mm) * sa; let a5 = oa + min(row0 + 5u, mm) * sa;
  let a6 = oa + min(row0 + 6u, mm) * sa; let a7 = oa + min(row0 + 7u, mm) * sa;
  let nv = p.n / 4u;
  let sbk = p.sb_k / 4u;
  let ob = (p.off_b + e * p.sb_e) / 4u;
  let bl = ob + min(col0 / 4u, nv - 1u);
  let bh = ob + min(col0 / 4u + 1u, nv - 1u);
  var c0 = Acc2(); var c1 = Acc2(); var c2 = Acc2(); var c3 = Acc2();
  var c4 = Acc2(); var c5 = Acc2(); var c6 = Acc2(); var c7 = Acc2();
  let kv = p.k / 4u;
  for (var kk = 0u; kk < kv; kk++) {
    let k0 = kk * 4u * sbk;
    let l0 = ld_b(bl + k0); let h0 = ld_b(bh + k0);
    let l1 = ld_b(bl + k0 + sbk); let h1 = ld_b(bh + k0 + sbk);
    let l2 = ld_b(bl + k0 + 2u * sbk); let h2 = ld_b(bh + k0 + 2u * sbk);
    let l3 = ld_b(bl + k0 + 3u * sbk); let h3 = ld_b(bh + k0 + 3u * sbk);
    c0 = fma_row(c0, ld_a(a0 + kk), l0, h0, l1, h1, l2, h2, l3, h3);
    c1 = fma_row(c1, ld_a(a1 + kk), l0, h0, l1, h1, l2, h2, l3, h3);
    c2 = fma_row(c2, ld_a(a2 + kk), l0, h0, l1, h1, l2, h2, l3, h3);
    c3 = fma_row(c3, ld_a(a3 + kk), l0, h0, l1, h1, l2, h2, l3, h3);
    c4 = fma_row(c4, ld_a(a4_ + kk), l0, h0, l1, h1, l2, h2, l3, h3);
    c5 = fma_row(c5, ld_a(a5 + kk), l0, h0, l1, h1, l2, h2, l3, h3);
    c6 = fma_row(c6, ld_a(a6 + kk), l0, h0, l1, h1, l2, h2, l3, h3);
    c7 = fma_row(c7, ld_a(a7 + kk), l0, h0, l1, h1, l2, h2, l3, h3);
  }
  let cb = p.off_c + row0 * p.ldc;
  store_row8(cb, row0 < rend, col0, c0.lo, c0.hi);
  store_row8(cb + p.ldc, row0 + 1u < rend, col0, c1.lo, c1.hi);
  store_row8(cb + 2u * p.ldc, row0 + 2u < rend, col0, c2.lo, c2.hi);
  store_row8(cb + 3u * p.ldc, row0 + 3u < rend, col0, c3.lo, c3.hi);
  store_row8(cb + 4u * p.ldc, row0 + 4u < rend, col0, c4.lo, c4.hi);
  store_row8(cb + 5u * p.ldc, row0 + 5u < rend, col0, c5.lo, c5.hi);
  store_row8(cb + 6u * p.ldc, row0 + 6u < rend, col0, c6.lo, c6.hi);
  store_row8(cb + 7u * p.ldc, row0 + 7u < rend, col0, c7.lo, c7.hi);
}

@compute @workgroup_size(WGX, WGY)
fn wgrad4(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let e = wid.z;
  let q0 = offsets[e];
  let q1 = offsets[e + 1u];
  let row0 = (wid.y * WGY + lid.y) * 8u;
  let col0 = (wid.x * WGX + lid.x) * 8u;
  if (row0 >= p.m || col0 >= p.n) { return; }
  let mv = p.m / 4u;
  let nv = p.n / 4u;
  let al = p.off_a / 4u + min(row0 / 4u, mv - 1u);
  let ah = p.off_a / 4u + min(row0 / 4u + 1u, mv - 1u);
  let bl = p.off_b / 4u + min(col0 / 4u, nv - 1u);
  let bh = p.off_b / 4u + min(col0 / 4u + 1u, nv - 1u);
  let sa = p.sa_m / 4u;
  let sb = p.sb_k / 4u;
  var c0l = vec4f(); var c0h = vec4f(); var c1l = vec4f(); var c1h = vec4f();
  var c2l = vec4f(); var c2h = vec4f(); var c3l = vec4f(); var c3h = vec4f();
  var c4l = vec4f(); var c4h = vec4f(); var c5l = vec4f(); var c5h = vec4f();
  var c6l = vec4f(); var c6h = vec4f(); var c7l = vec4f(); var c7h = vec4f();
  for (var q = q0; q < q1; q++) {
    let xl = ld_a(al + q * sa);
    let xh = ld_a(ah + q * sa);
    let yl = ld_b(bl + q * sb);
    let yh = ld_b(bh + q * sb);
    c0l += xl.x * yl; c0h += xl.x * yh;
    c1l += xl.y * yl; c1h += xl.y * yh;
    c2l += xl.z * yl; c2h += xl.z * yh;
    c3l += xl.w * yl; c3h += xl.w * yh;
    c4l += xh.x * yl; c4h += xh.x * yh;
    c5l += xh.y * yl; c5h += xh.y * yh;
    c6l += xh.z * yl; c6h += xh.z * yh;
    c7l += xh.w * yl; c7h += xh.w * yh;
  }
  let cb = p.off_c + e * p.sc_e + row0 * p.ldc;
  store_row8(cb, row0 < p.m, col0, c0l, c0h);
  store_row8(cb + p.ldc, row0 + 1u < p.m, col0, c1l, c1h);
  store_row8(cb + 2u * p.ldc, row0 + 2u < p.m, col0, c2l, c2h);
  store_row8(cb + 3u * p.ldc, row0 + 3u < p.m, col0, c3l, c3h);
  store_row8(cb + 4u * p.ldc, row0 + 4u < p.m, col0, c4l, c4h);
  store_row8(cb + 5u * p.ldc, row0 + 5u < p.m, col0, c5l, c5h);
  store_row8(cb + 6u * p.ldc, row0 + 6u < p.m, col0, c6l, c6h);
  store_row8(cb + 7u * p.ldc, row0 + 7u < p.m, col0, c7l, c7h);
}
