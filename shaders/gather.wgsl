// Index kernels over strided views of up to 8 dimensions:
//   index_select: out[.., j, ..] = x[.., idx[j], ..]           (iteration shape = x's with
//                 the axis sized by the index count; out contiguous)
//   gather_elems: out[c] = x[c with c[axis] = idx[c]]          (PyTorch gather; c over idx's shape)
//   scatter_keys: for c over idx's shape, the destination of src[c] in a contiguous
//                 target (key) and the value itself — the first half of a deterministic
//                 scatter-add (sort by key, then segment.wgsl sums in position order).
// Indices are read as u32 bits, so negative i32 indices are out of range too. An
// out-of-range index reads as 0 (index_select, gather) or is dropped (scatter: key
// 0xffffffff), and the first one is recorded in a 4-word error buffer: tag (op and axis),
// index bits, axis size, position in the index tensor. The host reads it back lazily.

alias T = f32;

override WG: u32 = 256u;
// index_select4: vec4s per thread along the last dim, `span` vec4s apart, where the
// iteration shape's last dim is span = (last dim in vec4s) / COLS.
override COLS: u32 = 1u;

struct Params {
  total: u32,
  rank: u32,
  axis: u32,
  axis_size: u32,
  x_off: u32,
  idx_off: u32,
  tag: u32,
  _pad: u32,
  shape: array<vec4u, 2>,
  xst: array<vec4u, 2>,
  tst: array<vec4u, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
// index_select, gather_elems
@group(0) @binding(3) var<storage, read_write> out: array<T>;
@group(0) @binding(4) var<storage, read_write> err: array<atomic<u32>, 4>;
// index_select4: the same over vec4s (last dim, strides and offsets in vec4 units)
@group(0) @binding(1) var<storage, read> x4: array<vec4<T>>;
@group(0) @binding(3) var<storage, read_write> out4: array<vec4<T>>;
// scatter_keys
@group(0) @binding(3) var<storage, read_write> keys_out: array<u32>;
@group(0) @binding(4) var<storage, read_write> vals_out: array<T>;
@group(0) @binding(5) var<storage, read_write> err2: array<atomic<u32>, 4>;

fn dim_of(v: array<vec4u, 2>, d: u32) -> u32 {
  return v[d / 4u][d % 4u];
}

// Offsets of iteration element g in x (strides xst) and in the target (strides tst),
// leaving out the axis, and g's coordinate along the axis.
struct Coords { xo: u32, to: u32, ax: u32 }

fn coords(g: u32) -> Coords {
  var r = g;
  var c = Coords(0u, 0u, 0u);
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let du = u32(d);
    let n = dim_of(p.shape, du);
    let k = r % n;
    r = r / n;
    if (du == p.axis) {
      c.ax = k;
    } else {
      c.xo += k * dim_of(p.xst, du);
      c.to += k * dim_of(p.tst, du);
    }
  }
  return c;
}

fn report(v: u32, pos: u32) {
  loop {
    let r = atomicCompareExchangeWeak(&err[0], 0u, p.tag);
    if (r.exchanged) {
      atomicStore(&err[1], v);
      atomicStore(&err[2], p.axis_size);
      atomicStore(&err[3], pos);
      break;
    }
    if (r.old_value != 0u) {
      break;
    }
  }
}

fn report2(v: u32, pos: u32) {
  loop {
    let r = atomicCompareExchangeWeak(&err2[0], 0u, p.tag);
    if (r.exchanged) {
      atomicStore(&err2[1], v);
      atomicStore(&err2[2], p.axis_size);
      atomicStore(&err2[3], pos);
      break;
    }
    if (r.old_value != 0u) {
      break;
    }
  }
}

@compute @workgroup_size(WG)
fn index_select(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = gid.x + gid.y * nwg.x * WG;
  if (g >= p.total) {
    return;
  }
  let c = coords(g);
  let v = idx[p.idx_off + c.ax];
  if (v >= p.axis_size) {
    report(v, c.ax);
    out[g] = T(0.0);
    return;
  }
  out[g] = x[p.x_off + c.xo + v * dim_of(p.xst, p.axis)];
}

@compute @workgroup_size(WG)
fn index_select4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = gid.x + gid.y * nwg.x * WG;
  if (g >= p.total) {
    return;
  }
  let c = coords(g);
  let v = idx[p.idx_off + c.ax];
  let span = dim_of(p.shape, p.rank - 1u);
  let o0 = (g / span) * span * COLS + g % span;
  if (v >= p.axis_size) {
    report(v, c.ax);
    for (var j = 0u; j < COLS; j++) {
      out4[o0 + j * span] = vec4<T>(T(0.0));
    }
    return;
  }
  let x0 = p.x_off + c.xo + v * dim_of(p.xst, p.axis);
  for (var j = 0u; j < COLS; j++) {
    out4[o0 + j * span] = x4[x0 + j * span];
  }
}

@compute @workgroup_size(WG)
fn gather_elems(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = gid.x + gid.y * nwg.x * WG;
  if (g >= p.total) {
    return;
  }
  let c = coords(g);
  let v = idx[p.idx_off + g];
  if (v >= p.axis_size) {
    report(v, g);
    out[g] = T(0.0);
    return;
  }
  out[g] = x[p.x_off + c.xo + v * dim_of(p.xst, p.axis)];
}

@compute @workgroup_size(WG)
fn scatter_keys(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = gid.x + gid.y * nwg.x * WG;
  if (g >= p.total) {
    return;
  }
  let c = coords(g);
  let v = idx[p.idx_off + g];
  vals_out[g] = x[p.x_off + c.xo + c.ax * dim_of(p.xst, p.axis)];
  if (v >= p.axis_size) {
    report2(v, g);
    keys_out[g] = 0xffffffffu;
    return;
  }
  keys_out[g] = c.to + v * dim_of(p.tst, p.axis);
}
