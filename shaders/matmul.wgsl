// Batched matmul C[b] = A[b] · B[b] over strided operands: a transposed operand is just a
// view with swapped strides, so no copies are needed. Batch dims (up to 4) are decomposed
// from workgroup z with per-operand batch strides (0 for broadcast batches). Arithmetic is
// f32 whatever T is (T becomes f16 when the op runs in f16).
//
// Variants (entry points), chosen per shape by src/ops/matmul-select.ts:
//  - `simple`   one output per thread: tiny or degenerate shapes.
//  - `blocked`  TM×TN = 4×8 outputs per thread from direct loads (loops), any workgroup shape.
//  - `blocked8` 8×8 outputs per thread, hand-unrolled into 16 vec4 accumulators. No
//               workgroup memory: on lavapipe (CPU SIMD) every lane-varying load is a gather
//               and workgroup memory adds gathers; the cost is ~ (TM+TN) gathers per TM·TN FMAs,
//               so the bigger the register block the better, until LLVM spills. Unrolled by
//               hand because NIR does not fully unroll the nested const loops of `blocked`.
//  - `rows4`    8 rows × 8 columns per thread with B read as vec4 (B rows contiguous, n%4 == 0,
//               B offset and row stride multiples of 4); C written as vec4.
//  - `tiled`    the textbook real-GPU kernel: 64×64 block tile staged through workgroup memory
//               in 16-deep k slices, 16×16 threads, 4×4 outputs per thread (interleaved so
//               workgroup-memory reads are conflict-free).
//  - `splitk` + `splitk_reduce`  skinny M×N with long K (e.g. weight gradients): z also splits
//               K into `splits` chunks written to an f32 partial buffer, then summed.
// The subgroup-broadcast kernel for lavapipe lives in matmul_sg.wgsl (needs `enable subgroups`).
alias T = f32;

override WGX: u32 = 16u;
override WGY: u32 = 8u;
const TM: u32 = 4u;
const TN: u32 = 8u;

struct Params {
  m: u32,
  n: u32,
  k: u32,
  nbatch: u32,
  off_a: u32,
  off_b: u32,
  off_c: u32,
  bdims: u32,
  sa_m: u32,
  sa_k: u32,
  sb_k: u32,
  sb_n: u32,
  bshape: vec4u,
  bstride_a: vec4u,
  bstride_b: vec4u,
  splits: u32,
  kchunk: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<T>;
@group(0) @binding(2) var<storage, read> b: array<T>;
@group(0) @binding(3) var<storage, read_write> c: array<T>;
// `rows4`: B and C seen as vec4 (same bindings, different entry point).
@group(0) @binding(2) var<storage, read> b4: array<vec4<T>>;
@group(0) @binding(3) var<storage, read_write> c4: array<vec4<T>>;
// `splitk`: f32 partial sums; `splitk_reduce` reads them back and writes C.
@group(0) @binding(3) var<storage, read_write> part: array<f32>;
@group(0) @binding(1) var<storage, read> part_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> red_out: array<T>;

// Element offsets of batch `z` in A and B.
fn batch_offsets(z: u32) -> vec2u {
  var r = z;
  var oa = p.off_a;
  var ob = p.off_b;
  for (var d = i32(p.bdims) - 1; d >= 0; d--) {
    let n = p.bshape[d];
    let i = r % n;
    r = r / n;
    oa += i * p.bstride_a[d];
    ob += i * p.bstride_b[d];
  }
  return vec2u(oa, ob);
}

@compute @workgroup_size(WGX, WGY)
fn blocked(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let z = wid.z;
  let offs = batch_offsets(z);
  let row0 = (wid.y * WGY + lid.y) * TM;
  let col0 = (wid.x * WGX + lid.x) * TN;
  if (row0 >= p.m || col0 >= p.n) { return; }
  // Clamp reads to the last row/column so edge threads load valid memory without branches.
  var arow: array<u32, TM>;
  for (var i = 0u; i < TM; i++) { arow[i] = offs.x + min(row0 + i, p.m - 1u) * p.sa_m; }
  var bcol: array<u32, TN>;
  for (var j = 0u; j < TN; j++) { bcol[j] = offs.y + min(col0 + j, p.n - 1u) * p.sb_n; }
  var acc: array<array<f32, TN>, TM>;
  for (var kk = 0u; kk < p.k; kk++) {
    var av: array<f32, TM>;
    for (var i = 0u; i < TM; i++) { av[i] = f32(a[arow[i] + kk * p.sa_k]); }
    var bv: array<f32, TN>;
    let bk = kk * p.sb_k;
    for (var j = 0u; j < TN; j++) { bv[j] = f32(b[bcol[j] + bk]); }
    for (var i = 0u; i < TM; i++) {
      for (var j = 0u; j < TN; j++) {
        acc[i][j] = fma(av[i], bv[j], acc[i][j]);
      }
    }
  }
  let cbase = p.off_c + z * p.m * p.n;
  for (var i = 0u; i < TM; i++) {
    let r = row0 + i;
    if (r < p.m) {
      for (var j = 0u; j < TN; j++) {
        let col = col0 + j;
        if (col < p.n) { c[cbase + r * p.n + col] = T(acc[i][j]); }
      }
    }
  }
}

@compute @workgroup_size(WGX, WGY)
fn simple(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let z = wid.z;
  let row = wid.y * WGY + lid.y;
  let col = wid.x * WGX + lid.x;
  if (row >= p.m || col >= p.n) { return; }
  let offs = batch_offsets(z);
  var acc = 0.0;
  let ab = offs.x + row * p.sa_m;
  let bb = offs.y + col * p.sb_n;
  for (var kk = 0u; kk < p.k; kk++) {
    acc = fma(f32(a[ab + kk * p.sa_k]), f32(b[bb + kk * p.sb_k]), acc);
  }
  c[p.off_c + z * p.m * p.n + row * p.n + col] = T(acc);
}

// ---------------------------------------------------------------- blocked8 (8×8 per thread)

// Writes 8 outputs of row r starting at column col0 (stride `cs` between the two halves'
// elements: 1 for consecutive columns).
fn store_row8(cbase: u32, r: u32, col0: u32, cs: u32, lo: vec4f, hi: vec4f) {
  if (r >= p.m) { return; }
  let base = cbase + r * p.n;
  for (var j = 0u; j < 4u; j++) {
    let c0 = col0 + j * cs;
    if (c0 < p.n) { c[base + c0] = T(lo[j]); }
    let c1 = col0 + (j + 4u) * cs;
    if (c1 < p.n) { c[base + c1] = T(hi[j]); }
  }
}

@compute @workgroup_size(WGX, WGY)
fn blocked8(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let z = wid.z;
  let offs = batch_offsets(z);
  let row0 = (wid.y * WGY + lid.y) * 8u;
  let col0 = (wid.x * WGX + lid.x) * 8u;
  let mm = p.m - 1u;
  let nn = p.n - 1u;
  let a0 = offs.x + min(row0, mm) * p.sa_m;
  let a1 = offs.x + min(row0 + 1u, mm) * p.sa_m;
  let a2 = offs.x + min(row0 + 2u, mm) * p.sa_m;
  let a3 = offs.x + min(row0 + 3u, mm) * p.sa_m;
  let a4 = offs.x + min(row0 + 4u, mm) * p.sa_m;
  let a5 = offs.x + min(row0 + 5u, mm) * p.sa_m;
  let a6 = offs.x + min(row0 + 6u, mm) * p.sa_m;
  let a7 = offs.x + min(row0 + 7u, mm) * p.sa_m;
  let b0 = offs.y + min(col0, nn) * p.sb_n;
  let b1 = offs.y + min(col0 + 1u, nn) * p.sb_n;
  let b2 = offs.y + min(col0 + 2u, nn) * p.sb_n;
  let b3 = offs.y + min(col0 + 3u, nn) * p.sb_n;
  let b4_ = offs.y + min(col0 + 4u, nn) * p.sb_n;
  let b5 = offs.y + min(col0 + 5u, nn) * p.sb_n;
  let b6 = offs.y + min(col0 + 6u, nn) * p.sb_n;
  let b7 = offs.y + min(col0 + 7u, nn) * p.sb_n;
  var c0l = vec4f(); var c0h = vec4f(); var c1l = vec4f(); var c1h = vec4f();
  var c2l = vec4f(); var c2h = vec4f(); var c3l = vec4f(); var c3h = vec4f();
  var c4l = vec4f(); var c4h = vec4f(); var c5l = vec4f(); var c5h = vec4f();
  var c6l = vec4f(); var c6h = vec4f(); var c7l = vec4f(); var c7h = vec4f();
  for (var kk = 0u; kk < p.k; kk++) {
    let ka = kk * p.sa_k;
    let kb = kk * p.sb_k;
    let bl = vec4f(f32(b[b0 + kb]), f32(b[b1 + kb]), f32(b[b2 + kb]), f32(b[b3 + kb]));
    let bh = vec4f(f32(b[b4_ + kb]), f32(b[b5 + kb]), f32(b[b6 + kb]), f32(b[b7 + kb]));
    var x = f32(a[a0 + ka]); c0l += x * bl; c0h += x * bh;
    x = f32(a[a1 + ka]); c1l += x * bl; c1h += x * bh;
    x = f32(a[a2 + ka]); c2l += x * bl; c2h += x * bh;
    x = f32(a[a3 + ka]); c3l += x * bl; c3h += x * bh;
    x = f32(a[a4 + ka]); c4l += x * bl; c4h += x * bh;
    x = f32(a[a5 + ka]); c5l += x * bl; c5h += x * bh;
    x = f32(a[a6 + ka]); c6l += x * bl; c6h += x * bh;
    x = f32(a[a7 + ka]); c7l += x * bl; c7h += x * bh;
  }
  let cbase = p.off_c + z * p.m * p.n;
  store_row8(cbase, row0, col0, 1u, c0l, c0h);
  store_row8(cbase, row0 + 1u, col0, 1u, c1l, c1h);
  store_row8(cbase, row0 + 2u, col0, 1u, c2l, c2h);
  store_row8(cbase, row0 + 3u, col0, 1u, c3l, c3h);
  store_row8(cbase, row0 + 4u, col0, 1u, c4l, c4h);
  store_row8(cbase, row0 + 5u, col0, 1u, c5l, c5h);
  store_row8(cbase, row0 + 6u, col0, 1u, c6l, c6h);
  store_row8(cbase, row0 + 7u, col0, 1u, c7l, c7h);
}

// ---------------------------------------------------------------- rows4 (vec4 B loads)

fn store4(cbase4: u32, r: u32, cv: u32, v: vec4f) {
  if (r < p.m && cv < p.n / 4u) { c4[cbase4 + r * (p.n / 4u) + cv] = vec4<T>(v); }
}

// Workgroup (WGX, 1): rows row0..row0+7 shared by the workgroup, each thread two vec4 column
// groups cv0 and cv0 + WGX. Requires sb_n == 1, n % 4 == 0, off_b % 4 == 0, sb_k % 4 == 0 and
// batch strides of B multiple of 4 (the selector checks).
@compute @workgroup_size(WGX)
fn rows4(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let z = wid.z;
  let offs = batch_offsets(z);
  let nv = p.n / 4u;
  let row0 = wid.y * 8u;
  let mm = p.m - 1u;
  let a0 = offs.x + min(row0, mm) * p.sa_m;
  let a1 = offs.x + min(row0 + 1u, mm) * p.sa_m;
  let a2 = offs.x + min(row0 + 2u, mm) * p.sa_m;
  let a3 = offs.x + min(row0 + 3u, mm) * p.sa_m;
  let a4 = offs.x + min(row0 + 4u, mm) * p.sa_m;
  let a5 = offs.x + min(row0 + 5u, mm) * p.sa_m;
  let a6 = offs.x + min(row0 + 6u, mm) * p.sa_m;
  let a7 = offs.x + min(row0 + 7u, mm) * p.sa_m;
  let cv0 = wid.x * WGX * 2u + lid.x;
  let cv1 = cv0 + WGX;
  let bq0 = offs.y / 4u + min(cv0, nv - 1u);
  let bq1 = offs.y / 4u + min(cv1, nv - 1u);
  let sbk = p.sb_k / 4u;
  var c0l = vec4f(); var c0h = vec4f(); var c1l = vec4f(); var c1h = vec4f();
  var c2l = vec4f(); var c2h = vec4f(); var c3l = vec4f(); var c3h = vec4f();
  var c4l = vec4f(); var c4h = vec4f(); var c5l = vec4f(); var c5h = vec4f();
  var c6l = vec4f(); var c6h = vec4f(); var c7l = vec4f(); var c7h = vec4f();
  for (var kk = 0u; kk < p.k; kk++) {
    let ka = kk * p.sa_k;
    let bl = vec4f(b4[bq0 + kk * sbk]);
    let bh = vec4f(b4[bq1 + kk * sbk]);
    var x = f32(a[a0 + ka]); c0l += x * bl; c0h += x * bh;
    x = f32(a[a1 + ka]); c1l += x * bl; c1h += x * bh;
    x = f32(a[a2 + ka]); c2l += x * bl; c2h += x * bh;
    x = f32(a[a3 + ka]); c3l += x * bl; c3h += x * bh;
    x = f32(a[a4 + ka]); c4l += x * bl; c4h += x * bh;
    x = f32(a[a5 + ka]); c5l += x * bl; c5h += x * bh;
    x = f32(a[a6 + ka]); c6l += x * bl; c6h += x * bh;
    x = f32(a[a7 + ka]); c7l += x * bl; c7h += x * bh;
  }
  let cb = (p.off_c + z * p.m * p.n) / 4u;
  store4(cb, row0, cv0, c0l); store4(cb, row0, cv1, c0h);
  store4(cb, row0 + 1u, cv0, c1l); store4(cb, row0 + 1u, cv1, c1h);
  store4(cb, row0 + 2u, cv0, c2l); store4(cb, row0 + 2u, cv1, c2h);
  store4(cb, row0 + 3u, cv0, c3l); store4(cb, row0 + 3u, cv1, c3h);
  store4(cb, row0 + 4u, cv0, c4l); store4(cb, row0 + 4u, cv1, c4h);
  store4(cb, row0 + 5u, cv0, c5l); store4(cb, row0 + 5u, cv1, c5h);
  store4(cb, row0 + 6u, cv0, c6l); store4(cb, row0 + 6u, cv1, c6h);
  store4(cb, row0 + 7u, cv0, c7l); store4(cb, row0 + 7u, cv1, c7h);
}

// ---------------------------------------------------------------- tiled (workgroup memory)

const BT: u32 = 64u; // block tile (rows and columns)
const BK: u32 = 16u; // k depth of a staged slice
var<workgroup> As: array<array<f32, 64>, 16>; // [k][row]
var<workgroup> Bs: array<array<f32, 64>, 16>; // [k][col]

@compute @workgroup_size(16, 16)
fn tiled(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u,
         @builtin(local_invocation_index) li: u32) {
  let z = wid.z;
  let offs = batch_offsets(z);
  let rb = wid.y * BT;
  let cb = wid.x * BT;
  var acc: array<array<f32, 4>, 4>;
  for (var k0 = 0u; k0 < p.k; k0 += BK) {
    // 64×16 elements of A and 16×64 of B per slice, 4 of each per thread. A is read along
    // k (its fastest dim when row-major), B along n.
    for (var l = 0u; l < 4u; l++) {
      let e = li + l * 256u;
      let ar = e / BK;
      let ak = e % BK;
      let gr = rb + ar;
      let gk = k0 + ak;
      let av = f32(a[offs.x + min(gr, p.m - 1u) * p.sa_m + min(gk, p.k - 1u) * p.sa_k]);
      As[ak][ar] = select(0.0, av, gr < p.m && gk < p.k);
      let bk = e / BT;
      let bc = e % BT;
      let gc = cb + bc;
      let gk2 = k0 + bk;
      let bv = f32(b[offs.y + min(gk2, p.k - 1u) * p.sb_k + min(gc, p.n - 1u) * p.sb_n]);
      Bs[bk][bc] = select(0.0, bv, gc < p.n && gk2 < p.k);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      var av: array<f32, 4>;
      var bv: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) { av[i] = As[kk][lid.y + i * 16u]; }
      for (var j = 0u; j < 4u; j++) { bv[j] = Bs[kk][lid.x + j * 16u]; }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i][j] = fma(av[i], bv[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }
  let cbase = p.off_c + z * p.m * p.n;
  for (var i = 0u; i < 4u; i++) {
    let r = rb + lid.y + i * 16u;
    for (var j = 0u; j < 4u; j++) {
      let col = cb + lid.x + j * 16u;
      if (r < p.m && col < p.n) { c[cbase + r * p.n + col] = T(acc[i][j]); }
    }
  }
}

// ---------------------------------------------------------------- split-K

// Like `blocked` over k in [s·kchunk, (s+1)·kchunk) with s = z / nbatch; partial sums go to
// part[((s·nbatch + batch)·m + row)·n + col] in f32.
@compute @workgroup_size(WGX, WGY)
fn splitk(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let zb = wid.z % p.nbatch;
  let s = wid.z / p.nbatch;
  let offs = batch_offsets(zb);
  let row0 = (wid.y * WGY + lid.y) * TM;
  let col0 = (wid.x * WGX + lid.x) * TN;
  if (row0 >= p.m || col0 >= p.n) { return; }
  let k0 = s * p.kchunk;
  let k1 = min(p.k, k0 + p.kchunk);
  var arow: array<u32, TM>;
  for (var i = 0u; i < TM; i++) { arow[i] = offs.x + min(row0 + i, p.m - 1u) * p.sa_m; }
  var bcol: array<u32, TN>;
  for (var j = 0u; j < TN; j++) { bcol[j] = offs.y + min(col0 + j, p.n - 1u) * p.sb_n; }
  var acc: array<array<f32, TN>, TM>;
  for (var kk = k0; kk < k1; kk++) {
    var av: array<f32, TM>;
    for (var i = 0u; i < TM; i++) { av[i] = f32(a[arow[i] + kk * p.sa_k]); }
    var bv: array<f32, TN>;
    let bk = kk * p.sb_k;
    for (var j = 0u; j < TN; j++) { bv[j] = f32(b[bcol[j] + bk]); }
    for (var i = 0u; i < TM; i++) {
      for (var j = 0u; j < TN; j++) { acc[i][j] = fma(av[i], bv[j], acc[i][j]); }
    }
  }
  let pbase = (s * p.nbatch + zb) * p.m * p.n;
  for (var i = 0u; i < TM; i++) {
    let r = row0 + i;
    if (r < p.m) {
      for (var j = 0u; j < TN; j++) {
        let col = col0 + j;
        if (col < p.n) { part[pbase + r * p.n + col] = acc[i][j]; }
      }
    }
  }
}

// One thread per output element: C = Σ_s partial[s]. Dispatched as (x, y) = 2-D grid of 256
// wide workgroups flattened.
@compute @workgroup_size(256)
fn splitk_reduce(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = gid.x + gid.y * nw.x * 256u;
  let total = p.nbatch * p.m * p.n;
  if (i >= total) { return; }
  var s = 0.0;
  for (var q = 0u; q < p.splits; q++) { s += part_in[q * total + i]; }
  red_out[p.off_c + i] = T(s);
}
