// 1-D convolution over packed variable-length sequences, im2col style.
//
// x [T, C] holds several segments (clips) back to back: segment s has its input rows at
// [in_start, in_start + in_len) and its output rows at [out_start, out_start + out_len)
// (segs[s] = (in_start, in_len, out_start, out_len)). Padding is zeros at both ends of
// every segment, so segments never see each other.
//
// unfold: col [T_out, C·K], col[r, c·K + k] = x[in_start + t·stride − pad + k, c]
//         (t = r − out_start; zero outside the segment). conv = col · W[C_out, C·K]ᵀ.
// fold:   the backward of unfold, dx [T_in, C] (contiguous): each input element sums the
//         ≤ ⌈K/stride⌉ col entries it was copied to — a gather, no atomics, deterministic.
alias T = f32;

override WG: u32 = 256u;

struct Params {
  cin: u32,
  k: u32,
  stride: u32,
  pad: u32,
  nseg: u32,
  count: u32,   // elements written
  s_row: u32,   // strides of the read tensor (x for unfold, dcol for fold)
  s_col: u32,
  off: u32,
  _p0: u32,
  _p1: u32,
  _p2: u32,
}

@group(0) @binding(0) var<uniform> prm: Params;
@group(0) @binding(1) var<storage, read> src: array<T>;
@group(0) @binding(2) var<storage, read> segs: array<vec4u>;
@group(0) @binding(3) var<storage, read_write> dst: array<T>;

fn flat_id(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

/** The last segment whose (input or output) start is ≤ row. */
fn find_seg(row: u32, by_out: bool) -> u32 {
  var lo = 0u;
  var hi = prm.nseg;
  loop {
    if (hi - lo <= 1u) { break; }
    let mid = (lo + hi) / 2u;
    let s = segs[mid];
    let start = select(s.x, s.z, by_out);
    if (start <= row) { lo = mid; } else { hi = mid; }
  }
  return lo;
}

@compute @workgroup_size(WG)
fn unfold(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = flat_id(gid, nwg);
  if (idx >= prm.count) { return; }
  let ck = prm.cin * prm.k;
  let row = idx / ck;
  let j = idx % ck;
  let c = j / prm.k;
  let kk = j % prm.k;
  let s = segs[find_seg(row, true)];
  let t = i32((row - s.z) * prm.stride + kk) - i32(prm.pad);
  var v = T(0.0);
  if (t >= 0 && t < i32(s.y)) {
    v = src[prm.off + (s.x + u32(t)) * prm.s_row + c * prm.s_col];
  }
  dst[idx] = v;
}

@compute @workgroup_size(WG)
fn fold(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = flat_id(gid, nwg);
  if (idx >= prm.count) { return; }
  let row = idx / prm.cin;
  let c = idx % prm.cin;
  let s = segs[find_seg(row, false)];
  let tl = row - s.x + prm.pad;     // position in the padded segment
  var acc = 0.0;
  for (var kk = 0u; kk < prm.k; kk++) {
    if (tl < kk) { break; }
    let num = tl - kk;
    if (num % prm.stride != 0u) { continue; }
    let to = num / prm.stride;
    if (to >= s.w) { continue; }
    acc += f32(src[prm.off + (s.z + to) * prm.s_row + (c * prm.k + kk) * prm.s_col]);
  }
  dst[idx] = T(acc);
}
