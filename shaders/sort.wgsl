// Stable argsort of 32-bit keys: a bitonic sort of (key, position) pairs. Positions are
// unique, so pairs compare as a total order and the result is the stable sort (equal
// keys keep their original order) — deterministic regardless of scheduling.
//
// The padded length P is a power of two and a multiple of CHUNK. Pad elements carry the
// largest key and positions >= n, so they sort after every real element.
//   local_sort:  loads CHUNK keys per workgroup (mapping signed keys to unsigned order),
//                sorts the chunk completely in workgroup memory (stages k <= CHUNK).
//   global_step: one compare-exchange step (stage k, distance j >= CHUNK) over P/2 pairs.
//   local_merge: the steps j < CHUNK of stage k, in workgroup memory.
// The last dispatch of a sort maps keys back (p.last = 1).

override SIGNED: bool = false;

const WG: u32 = 256u;
const CHUNK: u32 = 512u;

struct Params {
  n: u32,
  p: u32,
  k: u32,
  j: u32,
  in_off: u32,
  last: u32,
}

@group(0) @binding(0) var<uniform> prm: Params;
// local_sort
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> keys: array<u32>;
@group(0) @binding(3) var<storage, read_write> vals: array<u32>;
// global_step, local_merge
@group(0) @binding(1) var<storage, read_write> mkeys: array<u32>;
@group(0) @binding(2) var<storage, read_write> mvals: array<u32>;

var<workgroup> sk: array<u32, CHUNK>;
var<workgroup> sv: array<u32, CHUNK>;

fn flip() -> u32 {
  return select(0u, 0x80000000u, SIGNED);
}

fn greater(ka: u32, va: u32, kb: u32, vb: u32) -> bool {
  return ka > kb || (ka == kb && va > vb);
}

fn chunk_base(wid: vec3u, nwg: vec3u) -> u32 {
  return (wid.x + wid.y * nwg.x) * CHUNK;
}

// Compare-exchange in workgroup memory: step j of stage k; t is the local thread.
fn local_step(t: u32, base: u32, k: u32, j: u32) {
  let i = (t / j) * 2u * j + (t % j);
  let l = i + j;
  let up = ((base + i) & k) == 0u;
  let ka = sk[i];
  let va = sv[i];
  let kb = sk[l];
  let vb = sv[l];
  if (greater(ka, va, kb, vb) == up) {
    sk[i] = kb;
    sv[i] = vb;
    sk[l] = ka;
    sv[l] = va;
  }
}

fn out_key(k: u32) -> u32 {
  return select(k, k ^ flip(), prm.last != 0u);
}

@compute @workgroup_size(WG)
fn local_sort(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let base = chunk_base(wid, nwg);
  if (base >= prm.p) {
    return; // spare workgroup of a 2-d grid (workgroup-uniform, so barriers stay uniform)
  }
  for (var h = 0u; h < 2u; h++) {
    let li = t + h * WG;
    let gi = base + li;
    var key = 0xffffffffu;
    if (gi < prm.n) {
      key = src[prm.in_off + gi] ^ flip();
    }
    sk[li] = key;
    sv[li] = gi;
  }
  workgroupBarrier();
  for (var k = 2u; k <= CHUNK; k <<= 1u) {
    for (var j = k >> 1u; j > 0u; j >>= 1u) {
      local_step(t, base, k, j);
      workgroupBarrier();
    }
  }
  for (var h = 0u; h < 2u; h++) {
    let li = t + h * WG;
    keys[base + li] = out_key(sk[li]);
    vals[base + li] = sv[li];
  }
}

@compute @workgroup_size(WG)
fn local_merge(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let base = chunk_base(wid, nwg);
  if (base >= prm.p) {
    return; // spare workgroup of a 2-d grid (workgroup-uniform, so barriers stay uniform)
  }
  for (var h = 0u; h < 2u; h++) {
    let li = t + h * WG;
    sk[li] = mkeys[base + li];
    sv[li] = mvals[base + li];
  }
  workgroupBarrier();
  for (var j = CHUNK >> 1u; j > 0u; j >>= 1u) {
    local_step(t, base, prm.k, j);
    workgroupBarrier();
  }
  for (var h = 0u; h < 2u; h++) {
    let li = t + h * WG;
    mkeys[base + li] = out_key(sk[li]);
    mvals[base + li] = sv[li];
  }
}

@compute @workgroup_size(WG)
fn global_step(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = gid.x + gid.y * nwg.x * WG;
  if (t >= prm.p / 2u) {
    return;
  }
  let j = prm.j;
  let i = (t / j) * 2u * j + (t % j);
  let l = i + j;
  let up = (i & prm.k) == 0u;
  let ka = mkeys[i];
  let va = mvals[i];
  let kb = mkeys[l];
  let vb = mvals[l];
  if (greater(ka, va, kb, vb) == up) {
    mkeys[i] = kb;
    mvals[i] = vb;
    mkeys[l] = ka;
    mvals[l] = va;
  }
}

// ---- Stable counting sort for a known key range [0, m): three dispatches, O(n + m·nb).
// Keys are split into nb blocks of `blk` consecutive elements; bin = key if key < m
// (unsigned compare), else m (out-of-range keys go last, in their original order).
//   count_blocks:   one invocation per block zeroes its column of the (m+1)×nb count
//                   table (bin-major) and counts its block's keys serially.
//   scan_counts:    one workgroup turns the table into exclusive prefix sums, so entry
//                   (bin, block) is where that block's first key of that bin goes.
//   scatter_blocks: one invocation per block walks its keys in order and places each at
//                   its entry, bumping it — stable and deterministic without atomics.

struct CParams {
  n: u32,
  m: u32,
  nb: u32,
  blk: u32,
  in_off: u32,
  len: u32,
}

@group(0) @binding(0) var<uniform> cp: CParams;
// count_blocks, scatter_blocks: src @1 (above), table @2, and for scatter the outputs
@group(0) @binding(2) var<storage, read_write> table: array<u32>;
@group(0) @binding(3) var<storage, read_write> ckeys: array<u32>;
@group(0) @binding(4) var<storage, read_write> cvals: array<u32>;
// scan_counts
@group(0) @binding(1) var<storage, read_write> scan_buf: array<u32>;

const CWG: u32 = 64u;

fn cbin(k: u32) -> u32 {
  return select(cp.m, k, k < cp.m);
}

@compute @workgroup_size(CWG)
fn count_blocks(@builtin(global_invocation_id) gid: vec3u) {
  let b = gid.x;
  if (b >= cp.nb) {
    return;
  }
  for (var r = 0u; r <= cp.m; r++) {
    table[r * cp.nb + b] = 0u;
  }
  let end = min(cp.n, (b + 1u) * cp.blk);
  for (var i = b * cp.blk; i < end; i++) {
    let e = cbin(src[cp.in_off + i]) * cp.nb + b;
    table[e] = table[e] + 1u;
  }
}

@compute @workgroup_size(CWG)
fn scatter_blocks(@builtin(global_invocation_id) gid: vec3u) {
  let b = gid.x;
  if (b >= cp.nb) {
    return;
  }
  let end = min(cp.n, (b + 1u) * cp.blk);
  for (var i = b * cp.blk; i < end; i++) {
    let k = src[cp.in_off + i];
    let e = cbin(k) * cp.nb + b;
    let d = table[e];
    table[e] = d + 1u;
    ckeys[d] = k;
    cvals[d] = i;
  }
}

var<workgroup> part: array<u32, 256>;

@compute @workgroup_size(256)
fn scan_counts(@builtin(local_invocation_index) t: u32) {
  let per = (cp.len + 255u) / 256u;
  let lo = min(cp.len, t * per);
  let hi = min(cp.len, lo + per);
  var s = 0u;
  for (var i = lo; i < hi; i++) {
    s += scan_buf[i];
  }
  part[t] = s;
  workgroupBarrier();
  if (t == 0u) {
    var acc = 0u;
    for (var i = 0u; i < 256u; i++) {
      let v = part[i];
      part[i] = acc;
      acc += v;
    }
  }
  workgroupBarrier();
  var acc = part[t];
  for (var i = lo; i < hi; i++) {
    let v = scan_buf[i];
    scan_buf[i] = acc;
    acc += v;
  }
}
