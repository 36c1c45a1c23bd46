// Log-mel spectrogram on the GPU (shaders/melspec.wgsl + one matmul), the audio front end.
// No backward: it is a fixed transform of the data (NON_DIFFERENTIABLE).
//
// Conventions (defaults = OpenAI Whisper's `log_mel_spectrogram`, which is
// torch.stft(center=True, pad_mode='reflect') + librosa.filters.mel):
//  - 16 kHz mono; n_fft = 400 (25 ms) → 201 frequency bins; hop 160 (10 ms);
//  - periodic Hann window of winLength (default n_fft) samples, centred in n_fft with
//    zeros when shorter (torch.stft's convention);
//  - frame f of a clip is centred on sample f·hop; the clip is padded by n_fft/2 at both
//    ends by reflection (x[−i] = x[i]; needs len > n_fft/2) or with zeros;
//  - a clip of `len` samples gives ⌊len / hop⌋ frames (torch.stft's 1 + ⌊len/hop⌋ frames
//    without the last one, as Whisper does), so one second is 100 frames;
//  - power spectrum |X|², 80 mel bands, Slaney mel scale with Slaney area normalisation
//    (librosa's defaults, = Whisper's mel_filters.npz) or HTK scale / no normalisation
//    (torchaudio's defaults), fmin 0, fmax sr/2;
//  - log10(max(mel, 1e-10)); then optionally Whisper's per-clip normalisation
//    (max(x, max_clip − 8) + 4) / 4.
// The DFT is a matmul with a windowed cos/sin basis uploaded once per device.

import { Tensor, fmtShape } from '../tensor/tensor.ts';
import { keep } from '../tensor/scope.ts';
import type { Device } from '../device/index.ts';
import { defineOp, NON_DIFFERENTIABLE, opError } from './registry.ts';
import { grid1d } from './launch.ts';
import { matmulK } from './matmul.ts';
import { contiguousK } from './kernels.ts';

export type MelScale = 'slaney' | 'htk';

export interface MelSpecOptions {
  /** Samples per second the kernels expect (default 16000). */
  sampleRate?: number;
  /** DFT size (default 400 → 201 bins). */
  nFft?: number;
  /** Hann window length (default nFft), centred in nFft. */
  winLength?: number;
  /** Samples between frames (default 160). */
  hopLength?: number;
  /** Mel bands (default 80). */
  nMels?: number;
  fMin?: number;
  /** Default sampleRate / 2. */
  fMax?: number;
  /** Mel scale (default 'slaney', librosa/Whisper; 'htk' is torchaudio's default). */
  melScale?: MelScale;
  /** Filter normalisation: 'slaney' (area, default) or 'none'. */
  melNorm?: 'slaney' | 'none';
  /** Padding at clip ends (default 'reflect'). */
  padMode?: 'reflect' | 'zero';
  /** After log10: Whisper's per-clip (max(x, max − 8) + 4) / 4, or nothing (default 'whisper'). */
  logNorm?: 'whisper' | 'none';
}

export type ResolvedMelSpecOptions = Required<MelSpecOptions>;

const OP = 'melSpectrogram';

export function resolveMelOptions(o: MelSpecOptions = {}): ResolvedMelSpecOptions {
  const sampleRate = o.sampleRate ?? 16000;
  const nFft = o.nFft ?? 400;
  const r: ResolvedMelSpecOptions = {
    sampleRate,
    nFft,
    winLength: o.winLength ?? nFft,
    hopLength: o.hopLength ?? 160,
    nMels: o.nMels ?? 80,
    fMin: o.fMin ?? 0,
    fMax: o.fMax ?? sampleRate / 2,
    melScale: o.melScale ?? 'slaney',
    melNorm: o.melNorm ?? 'slaney',
    padMode: o.padMode ?? 'reflect',
    logNorm: o.logNorm ?? 'whisper',
  };
  const bad = (what: string): never => {
    throw opError(OP, what);
  };
  for (const k of ['sampleRate', 'nFft', 'winLength', 'hopLength', 'nMels'] as const) {
    if (!Number.isInteger(r[k]) || r[k] < 1) bad(`${k} must be a positive integer, got ${r[k]}`);
  }
  if (r.nFft % 2 !== 0) bad(`nFft must be even, got ${r.nFft}`);
  if (r.winLength > r.nFft) bad(`winLength ${r.winLength} exceeds nFft ${r.nFft}`);
  if (!(r.fMin >= 0 && r.fMax > r.fMin && r.fMax <= sampleRate / 2)) bad(`need 0 ≤ fMin < fMax ≤ sampleRate/2, got fMin ${r.fMin}, fMax ${r.fMax}`);
  return r;
}

/** Frequency bins of the one-sided spectrum: nFft/2 + 1. */
export const melBins = (nFft: number): number => nFft / 2 + 1;

/** Frames of a clip of `samples` samples: ⌊samples / hop⌋. */
export function melFrameCount(samples: number, opts: MelSpecOptions = {}): number {
  return Math.floor(samples / (opts.hopLength ?? 160));
}

/** Smallest clip (in samples) the front end accepts with these options. */
export function melMinSamples(opts: MelSpecOptions = {}): number {
  const r = resolveMelOptions(opts);
  return Math.max(r.hopLength, r.padMode === 'reflect' ? r.nFft / 2 + 1 : 1);
}

// ------------------------------------------------------------------ host tables (float64)

function hzToMel(f: number, scale: MelScale): number {
  if (scale === 'htk') return 2595 * Math.log10(1 + f / 700);
  const fsp = 200 / 3;
  const minLogHz = 1000;
  const minLogMel = minLogHz / fsp;
  const logstep = Math.log(6.4) / 27;
  return f >= minLogHz ? minLogMel + Math.log(f / minLogHz) / logstep : f / fsp;
}

function melToHz(m: number, scale: MelScale): number {
  if (scale === 'htk') return 700 * (10 ** (m / 2595) - 1);
  const fsp = 200 / 3;
  const minLogHz = 1000;
  const minLogMel = minLogHz / fsp;
  const logstep = Math.log(6.4) / 27;
  return m >= minLogMel ? minLogHz * Math.exp(logstep * (m - minLogMel)) : fsp * m;
}

/** Mel filter bank [nMels, nFft/2 + 1] in float64, librosa.filters.mel's construction. */
export function melFilterBank(opts: MelSpecOptions = {}): Float64Array {
  const r = resolveMelOptions(opts);
  const nb = melBins(r.nFft);
  const out = new Float64Array(r.nMels * nb);
  const mMin = hzToMel(r.fMin, r.melScale);
  const mMax = hzToMel(r.fMax, r.melScale);
  const pts = Array.from({ length: r.nMels + 2 }, (_, i) => melToHz(mMin + ((mMax - mMin) * i) / (r.nMels + 1), r.melScale));
  for (let m = 0; m < r.nMels; m++) {
    const [lo, c, hi] = [pts[m], pts[m + 1], pts[m + 2]];
    const enorm = r.melNorm === 'slaney' ? 2 / (hi - lo) : 1;
    for (let b = 0; b < nb; b++) {
      const f = (b * r.sampleRate) / r.nFft;
      const w = Math.max(0, Math.min((f - lo) / (c - lo), (hi - f) / (hi - c)));
      out[m * nb + b] = w * enorm;
    }
  }
  return out;
}

/** Periodic Hann window of winLength, zero-padded (centred) to nFft. */
export function hannWindow(nFft: number, winLength = nFft): Float64Array {
  const w = new Float64Array(nFft);
  const left = Math.floor((nFft - winLength) / 2);
  for (let i = 0; i < winLength; i++) w[left + i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / winLength);
  return w;
}

interface MelTables {
  basis: Tensor; // [nFft, 2·bins]
  fb: Tensor; // [nMels·bins]
  ranges: Tensor; // u32 [nMels, 2]
}

const tableCache = new WeakMap<Device, Map<string, MelTables>>();

function melTables(device: Device, r: ResolvedMelSpecOptions): MelTables {
  let byKey = tableCache.get(device);
  if (!byKey) tableCache.set(device, (byKey = new Map()));
  const key = JSON.stringify([r.sampleRate, r.nFft, r.winLength, r.nMels, r.fMin, r.fMax, r.melScale, r.melNorm]);
  const hit = byKey.get(key);
  if (hit && !hit.basis.released) return hit;
  const nb = melBins(r.nFft);
  const win = hannWindow(r.nFft, r.winLength);
  const basis = new Float32Array(r.nFft * 2 * nb);
  for (let k = 0; k < r.nFft; k++) {
    for (let b = 0; b < nb; b++) {
      // Exact argument reduction: k·b mod nFft keeps the angle in [0, 2π).
      const ang = (2 * Math.PI * ((k * b) % r.nFft)) / r.nFft;
      basis[k * 2 * nb + b] = win[k] * Math.cos(ang);
      basis[k * 2 * nb + nb + b] = -win[k] * Math.sin(ang);
    }
  }
  const fb = melFilterBank(r);
  const ranges = new Uint32Array(r.nMels * 2);
  for (let m = 0; m < r.nMels; m++) {
    let lo = nb;
    let hi = 0;
    for (let b = 0; b < nb; b++) {
      if (fb[m * nb + b] !== 0) {
        lo = Math.min(lo, b);
        hi = b + 1;
      }
    }
    ranges.set(hi > lo ? [lo, hi] : [0, 0], 2 * m);
  }
  // Long-lived tables: never owned by a scope.
  const t: MelTables = {
    basis: keep(Tensor.fromArray(basis, [r.nFft, 2 * nb], 'f32', device)),
    fb: keep(Tensor.fromArray(Float32Array.from(fb), [r.nMels * nb], 'f32', device)),
    ranges: keep(Tensor.fromArray(ranges, [r.nMels, 2], 'u32', device)),
  };
  byKey.set(key, t);
  return t;
}

// ------------------------------------------------------------------ the op

let groupFramesOverride: number | null = null;
/** Tests: cap the frames computed per group of clips (null: as many as one binding holds). */
export function setMelFramesPerGroup(n: number | null): void {
  groupFramesOverride = n;
}

/** Log-mel of clips `table` (wave_start, len, frame_start, n_frames per clip; frames from 0) → [F, nMels]. */
function melGroup(wave: Tensor, table: Uint32Array, F: number, r: ResolvedMelSpecOptions): Tensor {
  const device = wave.device;
  const nb = melBins(r.nFft);
  const nclips = table.length / 4;
  const tables = melTables(device, r);
  const clips = Tensor.fromArray(table, [nclips, 4], 'u32', device);
  const params = (count: number) => new Uint32Array([r.nFft, r.hopLength, r.nFft / 2, nclips, count, r.padMode === 'reflect' ? 1 : 0, nb, r.nMels]);
  const frames = Tensor.empty([F, r.nFft], 'f32', device);
  device.dispatch({
    kernel: 'melspec',
    entry: 'frames',
    uniforms: params(frames.size),
    buffers: [wave.storage.buffer, clips.storage.buffer, frames.storage.buffer],
    workgroups: grid1d(frames.size),
    label: `${OP}.frames`,
  });
  const spec = matmulK(`${OP}.dft`, frames, tables.basis);
  frames.release();
  const out = Tensor.empty([F, r.nMels], 'f32', device);
  device.dispatch({
    kernel: 'melspec',
    entry: 'mel',
    uniforms: params(out.size),
    buffers: [spec.storage.buffer, tables.fb.storage.buffer, out.storage.buffer, tables.ranges.storage.buffer],
    workgroups: grid1d(out.size),
    label: `${OP}.mel`,
  });
  spec.release();
  if (r.logNorm === 'whisper') {
    device.dispatch({
      kernel: 'melspec',
      entry: 'whisper_norm',
      uniforms: params(out.size),
      buffers: [clips.storage.buffer, out.storage.buffer],
      workgroups: [nclips],
      label: `${OP}.norm`,
    });
  }
  clips.release();
  return out;
}

/**
 * Log-mel spectrogram of packed clips: `wave` f32 [S] holds the clips back to back,
 * `cuSamples` = [0, len1, len1+len2, …, S] their boundaries. Returns [F, nMels] (frames
 * of all clips, in order; clip i has ⌊len_i / hop⌋ rows). No gradient.
 */
export const logMelSpectrogram: (wave: Tensor, cuSamples: readonly number[], opts?: MelSpecOptions) => Tensor = defineOp({
  name: OP,
  forward(_ctx, wave: Tensor, cuSamples: readonly number[], opts: MelSpecOptions = {}) {
    const r = resolveMelOptions(opts);
    if (wave.dtype !== 'f32') throw opError(OP, `waveform must be f32, got ${wave.dtype}`, wave);
    if (wave.rank !== 1) throw opError(OP, `waveform must be 1-D [samples] (clips packed back to back), got ${fmtShape(wave.shape)}`, wave);
    const S = wave.shape[0];
    const cu = Array.from(cuSamples);
    if (cu.length < 2 || cu[0] !== 0 || cu[cu.length - 1] !== S) {
      throw opError(OP, `cuSamples must run from 0 to the sample count ${S}, got [${cu.slice(0, 8).join(', ')}${cu.length > 8 ? ', …' : ''}]`, wave);
    }
    const nclips = cu.length - 1;
    const minLen = melMinSamples(r);
    const table = new Uint32Array(nclips * 4);
    let F = 0;
    for (let c = 0; c < nclips; c++) {
      const len = cu[c + 1] - cu[c];
      if (!Number.isInteger(len) || len < 0) throw opError(OP, `cuSamples must be non-decreasing integers (clip ${c})`, wave);
      if (len === 0) throw opError(OP, `audio clip ${c} is empty`, wave);
      if (len < minLen) {
        throw opError(
          OP,
          `audio clip ${c} has ${len} samples; at least ${minLen} are needed (hop ${r.hopLength}${r.padMode === 'reflect' ? `, reflect padding needs > nFft/2 = ${r.nFft / 2}` : ''})`,
          wave,
        );
      }
      const nf = Math.floor(len / r.hopLength);
      table.set([cu[c], len, F, nf], 4 * c);
      F += nf;
    }
    if (!wave.isContiguous || wave.offset !== 0) throw opError(OP, 'waveform must be a contiguous tensor of its own (no offset view)', wave);
    if (4 * S > wave.device.maxBinding) {
      throw opError(OP, `${S} samples (${(4 * S / 2 ** 20).toFixed(0)} MiB) exceed one storage binding (${(wave.device.maxBinding / 2 ** 20).toFixed(0)} MiB); compute fewer clips at a time`, wave);
    }
    // Clips in groups whose frame and spectrum buffers fit one storage binding.
    const rowBytes = 4 * Math.max(r.nFft, 2 * melBins(r.nFft));
    const cap = Math.max(1, groupFramesOverride ?? Math.floor(wave.device.maxBinding / rowBytes));
    const groups: Array<[number, number]> = [];
    for (let c = 0; c < nclips; ) {
      let end = c + 1;
      let frames = table[4 * c + 3];
      while (end < nclips && frames + table[4 * end + 3] <= cap) frames += table[4 * end++ + 3];
      groups.push([c, end]);
      c = end;
    }
    if (groups.length === 1) return melGroup(wave, table, F, r);
    const out = Tensor.empty([F, r.nMels], 'f32', wave.device);
    for (const [c0, c1] of groups) {
      const sub = table.slice(4 * c0, 4 * c1);
      const f0 = sub[2];
      let fn = 0;
      for (let i = 0; i < c1 - c0; i++) {
        sub[4 * i + 2] -= f0;
        fn += sub[4 * i + 3];
      }
      const part = melGroup(wave, sub, fn, r);
      const region = out.view(part.shape, out.strides, f0 * r.nMels);
      contiguousK(part, region);
      region.release();
      part.release();
    }
    return out;
  },
  backward: NON_DIFFERENTIABLE,
});

/** Upload host clips and compute their log-mel spectrogram: [Σ frames, nMels] plus frames per clip. */
export function logMelFromClips(clips: readonly Float32Array[], opts: MelSpecOptions = {}, device?: Device): { mel: Tensor; frames: number[] } {
  if (clips.length === 0) throw opError(OP, 'no audio clips given');
  const cu = [0];
  for (const c of clips) cu.push(cu[cu.length - 1] + c.length);
  const all = new Float32Array(cu[cu.length - 1]);
  clips.forEach((c, i) => all.set(c, cu[i]));
  clips.forEach((c, i) => {
    if (c.length === 0) throw opError(OP, `audio clip ${i} is empty`);
  });
  const wave = Tensor.fromArray(all, [all.length], 'f32', device);
  try {
    const mel = logMelSpectrogram(wave, cu, opts);
    const hop = resolveMelOptions(opts).hopLength;
    return { mel, frames: clips.map((c) => Math.floor(c.length / hop)) };
  } finally {
    wave.release();
  }
}
