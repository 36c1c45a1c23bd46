// Batched matmul C[b] = A[b] · B[b] over strided operands: a transposed operand is just a
// view with swapped strides, so no copies are needed. Batch dims (up to 4) are decomposed
// from workgroup z with per-operand batch strides (0 for broadcast batches).
//
// `blocked`: each thread computes TM×TN outputs from direct loads (register blocking with no
// workgroup memory — fastest on lavapipe, which scalarises per-lane loads so shared-memory
// staging only adds traffic). `simple`: one output per thread, for tiny or skinny shapes.
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
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<T>;
@group(0) @binding(2) var<storage, read> b: array<T>;
@group(0) @binding(3) var<storage, read_write> c: array<T>;

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
