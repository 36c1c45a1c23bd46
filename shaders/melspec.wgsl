// Log-mel spectrogram front end (no backward: a fixed transform of the data).
//
//   frames        raw frames [F, n_fft] of packed clips (window and DFT are in the basis)
//   (matmul)      spec = frames · basis, basis [n_fft, 2·bins] = [w·cos | −w·sin]
//   mel           out [F, n_mels] = log10(max(Σ_b (re² + im²)·fb[m, b], 1e-10))
//   whisper_norm  per clip, in place: (max(x, max_clip(x) − 8) + 4) / 4
//
// Clips are packed back to back: clips[c] = (wave_start, len, frame_start, n_frames).
// Frame f of a clip is centred on sample f·hop: it reads samples
// [f·hop − n_fft/2, f·hop + n_fft/2) with reflect (x[−i] = x[i], x[len−1+i] = x[len−1−i])
// or zero padding at the clip's ends (torch.stft center=True).

override WG: u32 = 256u;

struct Params {
  nfft: u32,
  hop: u32,
  half: u32,
  nclips: u32,
  count: u32,    // elements written (frames, mel)
  reflect: u32,
  nbins: u32,
  nmels: u32,
}

@group(0) @binding(0) var<uniform> prm: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> clips: array<vec4u>;
@group(0) @binding(2) var<storage, read> fb: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;
@group(0) @binding(4) var<storage, read> ranges: array<vec2u>;
// whisper_norm's own bindings (no entry point uses these together with the ones above).
@group(0) @binding(1) var<storage, read> norm_clips: array<vec4u>;
@group(0) @binding(2) var<storage, read_write> ndata: array<f32>;

fn flat_id(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

/** The clip holding frame `row`: the last whose frame_start is ≤ row. */
fn find_clip(row: u32) -> u32 {
  var lo = 0u;
  var hi = prm.nclips;
  loop {
    if (hi - lo <= 1u) { break; }
    let mid = (lo + hi) / 2u;
    if (clips[mid].z <= row) { lo = mid; } else { hi = mid; }
  }
  return lo;
}

@compute @workgroup_size(WG)
fn frames(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = flat_id(gid, nwg);
  if (idx >= prm.count) { return; }
  let row = idx / prm.nfft;
  let k = idx % prm.nfft;
  let c = clips[find_clip(row)];
  let len = i32(c.y);
  var t = i32((row - c.z) * prm.hop + k) - i32(prm.half);
  var v = 0.0;
  if (prm.reflect != 0u) {
    if (t < 0) { t = -t; }
    if (t >= len) { t = 2 * (len - 1) - t; }
    t = clamp(t, 0, len - 1);
    v = src[c.x + u32(t)];
  } else if (t >= 0 && t < len) {
    v = src[c.x + u32(t)];
  }
  dst[idx] = v;
}

@compute @workgroup_size(WG)
fn mel(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = flat_id(gid, nwg);
  if (idx >= prm.count) { return; }
  let f = idx / prm.nmels;
  let m = idx % prm.nmels;
  let r = ranges[m];
  let base = f * 2u * prm.nbins;
  var acc = 0.0;
  for (var b = r.x; b < r.y; b++) {
    let re = src[base + b];
    let im = src[base + prm.nbins + b];
    acc += (re * re + im * im) * fb[m * prm.nbins + b];
  }
  dst[idx] = log2(max(acc, 1e-10)) * 0.30102999566398120;
}

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn whisper_norm(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let c = norm_clips[wid.x];
  let begin = c.z * prm.nmels;
  let end = (c.z + c.w) * prm.nmels;
  var m = -1e30;
  for (var i = begin + lid.x; i < end; i += WG) { m = max(m, ndata[i]); }
  red[lid.x] = m;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid.x < s) { red[lid.x] = max(red[lid.x], red[lid.x + s]); }
    workgroupBarrier();
  }
  let floor_v = red[0] - 8.0;
  for (var i = begin + lid.x; i < end; i += WG) { ndata[i] = (max(ndata[i], floor_v) + 4.0) / 4.0; }
}
