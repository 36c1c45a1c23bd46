// Row reductions over a contiguous [rows, len] view: sum (scaled, for mean), max, min.
// `rows_wg`: one workgroup per row, threads stride over the row, tree reduction in
// workgroup memory (long rows). `rows_thread`: one thread per row (short rows, many rows).
alias T = f32;

override OP: u32 = 0u;     // 0 sum, 1 max, 2 min
override WG: u32 = 256u;

struct Params {
  rows: u32,
  len: u32,
  offset: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read_write> out: array<T>;

var<workgroup> partial: array<f32, WG>;

fn identity() -> f32 {
  // A runtime bitcast: ±inf is not allowed as a constant expression.
  var bits = 0u;
  switch OP {
    case 1u: { bits = 0xff800000u; }  // -inf
    case 2u: { bits = 0x7f800000u; }  // +inf
    default: {}
  }
  return bitcast<f32>(bits);
}

fn combine(a: f32, b: f32) -> f32 {
  switch OP {
    case 1u: { return max(a, b); }
    case 2u: { return min(a, b); }
    default: { return a + b; }
  }
}

fn finish(v: f32) -> f32 {
  return select(v, v * p.scale, OP == 0u);
}

@compute @workgroup_size(WG)
fn rows_wg(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = wid.x + wid.y * nwg.x;
  // Uniform control flow: every thread of a workgroup agrees on `row`.
  if (row >= p.rows) { return; }
  let base = p.offset + row * p.len;
  var acc = identity();
  for (var i = lid.x; i < p.len; i += WG) {
    acc = combine(acc, f32(x[base + i]));
  }
  partial[lid.x] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid.x < s) {
      partial[lid.x] = combine(partial[lid.x], partial[lid.x + s]);
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    out[row] = T(finish(partial[0]));
  }
}

@compute @workgroup_size(WG)
fn rows_thread(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * WG;
  if (row >= p.rows) { return; }
  let base = p.offset + row * p.len;
  var acc = identity();
  for (var i = 0u; i < p.len; i++) {
    acc = combine(acc, f32(x[base + i]));
  }
  out[row] = T(finish(acc));
}
