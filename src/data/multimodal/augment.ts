// Training-time media augmentation, applied by MultimodalLoader after decoding. Platform-neutral.
//
// Why: the built-in speech set has ~20 clips per word from a handful of synthetic voices and
// is evaluated on held-out voices; without perturbation the audio encoder learns the
// training voices. Each perturbation is drawn from a PRNG seeded by (seed, epoch, position
// in the epoch), so a resumed run sees exactly the same augmented clips.
//
// Audio (all optional; a missing key leaves that property unchanged):
//   speed       [lo, hi]  resample so the clip plays `s` times faster (tempo and pitch
//                         both change, as in Kaldi-style speed perturbation), s ~ U(lo, hi)
//   gainDb      [lo, hi]  scale by 10^(g/20), g ~ U(lo, hi)
//   noiseSnrDb  [lo, hi]  add white Gaussian noise at an SNR ~ U(lo, hi) dB relative to the
//                         clip's RMS
//   shiftMs     max       pad up to this much silence at the start (uniform, whole samples)
//   specAugment           SpecAugment (Park et al., 2019): zero `freqMasks` bands of up to
//                         `freqWidth` feature channels and `timeMasks` spans of up to
//                         `timeWidth` frames (at most `timeFraction` of the clip) in the
//                         encoder's input features. The loader only draws the masks (see
//                         SpecMask); the audio encoder lays them on its own feature grid.
import { AudioError, resample } from './audio.ts';
import { Sfc32 } from '../rng.ts';
import type { AudioInput, MediaInput, SpecMask } from './media.ts';
import type { MediaModality } from './manifest.ts';

export interface AudioAugmentConfig {
  speed?: readonly [number, number];
  gainDb?: readonly [number, number];
  noiseSnrDb?: readonly [number, number];
  shiftMs?: number;
  specAugment?: SpecAugmentConfig;
}

export interface SpecAugmentConfig {
  /** Frequency bands to mask per clip (default 2). */
  freqMasks?: number;
  /** Widest band, in feature channels (mel bins; default 8). */
  freqWidth?: number;
  /** Time spans to mask per clip (default 2). */
  timeMasks?: number;
  /** Longest span, in frames (default 10). */
  timeWidth?: number;
  /** A span never covers more than this fraction of the clip's frames (default 0.2). */
  timeFraction?: number;
}

export interface AugmentConfig {
  audio?: AudioAugmentConfig;
}

/** Perturbs one decoded media item with draws from `rng`; returns the input unchanged when nothing applies. */
export type Augmenter = (modality: MediaModality, input: MediaInput, rng: Sfc32) => MediaInput;

const uniform = (rng: Sfc32, lo: number, hi: number) => lo + (hi - lo) * (rng.nextU32() / 2 ** 32);

function checkRange(name: string, r: readonly [number, number] | undefined, min: number, max: number): void {
  if (r === undefined) return;
  if (r.length !== 2 || !r.every(Number.isFinite) || r[0] > r[1] || r[0] < min || r[1] > max) {
    throw new AudioError(`augment.audio.${name} must be [lo, hi] with ${min} ≤ lo ≤ hi ≤ ${max}, got ${JSON.stringify(r)}`);
  }
}

/** Checks a config and names the offending key. */
export function validateAugmentConfig(cfg: AugmentConfig): void {
  const a = cfg.audio;
  if (!a) return;
  checkRange('speed', a.speed, 0.5, 2);
  checkRange('gainDb', a.gainDb, -40, 40);
  checkRange('noiseSnrDb', a.noiseSnrDb, -10, 100);
  if (a.shiftMs !== undefined && !(Number.isFinite(a.shiftMs) && a.shiftMs >= 0 && a.shiftMs <= 5000)) {
    throw new AudioError(`augment.audio.shiftMs must be between 0 and 5000, got ${a.shiftMs}`);
  }
  const sa = a.specAugment;
  if (sa) {
    for (const k of ['freqMasks', 'freqWidth', 'timeMasks', 'timeWidth'] as const) {
      const v = sa[k];
      if (v !== undefined && !(Number.isInteger(v) && v >= 0 && v <= 1000)) throw new AudioError(`augment.audio.specAugment.${k} must be an integer between 0 and 1000, got ${v}`);
    }
    const f = sa.timeFraction;
    if (f !== undefined && !(Number.isFinite(f) && f >= 0 && f <= 1)) throw new AudioError(`augment.audio.specAugment.timeFraction must be between 0 and 1, got ${f}`);
  }
}

/** SpecAugment draws for one clip: each mask is a width and a uniform position in [0, 1). */
export function drawSpecMask(cfg: SpecAugmentConfig, rng: Sfc32): SpecMask {
  const draw = (count: number, maxWidth: number) =>
    Array.from({ length: count }, () => ({ width: Math.floor(uniform(rng, 0, maxWidth + 1)), at: uniform(rng, 0, 1) }));
  return {
    freq: draw(cfg.freqMasks ?? 2, cfg.freqWidth ?? 8),
    time: draw(cfg.timeMasks ?? 2, cfg.timeWidth ?? 10),
    timeFraction: cfg.timeFraction ?? 0.2,
  };
}

/** One perturbed copy of an audio clip (the input is not modified). */
export function augmentAudio(x: AudioInput, cfg: AudioAugmentConfig, rng: Sfc32): AudioInput {
  let s = x.samples;
  const rate = x.sampleRate;
  if (cfg.speed) {
    const f = uniform(rng, cfg.speed[0], cfg.speed[1]);
    // Playing f× faster = treating the samples as recorded at rate·f and bringing them to rate.
    if (Math.abs(f - 1) > 1e-6) s = resample(s, Math.round(rate * f), rate);
  }
  if (cfg.shiftMs) {
    const pad = Math.floor(uniform(rng, 0, (cfg.shiftMs * rate) / 1000 + 1));
    if (pad > 0) {
      const y = new Float32Array(s.length + pad);
      y.set(s, pad);
      s = y;
    }
  }
  const gain = cfg.gainDb ? 10 ** (uniform(rng, cfg.gainDb[0], cfg.gainDb[1]) / 20) : 1;
  let noiseStd = 0;
  if (cfg.noiseSnrDb) {
    let e = 0;
    for (let i = 0; i < s.length; i++) e += s[i] * s[i];
    const rms = Math.sqrt(e / Math.max(1, s.length)) * gain;
    noiseStd = rms / 10 ** (uniform(rng, cfg.noiseSnrDb[0], cfg.noiseSnrDb[1]) / 20);
  }
  if (gain !== 1 || noiseStd > 0) {
    const y = s === x.samples ? new Float32Array(s.length) : s;
    for (let i = 0; i < s.length; i++) {
      let v = s[i] * gain;
      if (noiseStd > 0) {
        // Box–Muller; u1 in (0, 1] so the log is finite.
        const u1 = (rng.nextU32() + 1) / 2 ** 32;
        const u2 = rng.nextU32() / 2 ** 32;
        v += noiseStd * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
      }
      y[i] = v;
    }
    s = y;
  }
  // Drawn last so adding specAugment to a config leaves the other perturbations' draws unchanged.
  const specMask = cfg.specAugment ? drawSpecMask(cfg.specAugment, rng) : undefined;
  if (s === x.samples && !specMask) return x;
  return { ...x, samples: s, seconds: s.length / rate, ...(specMask ? { specMask } : {}) };
}

/** The loader's augmenter for a config, or undefined when it asks for nothing. */
export function createAugmenter(cfg: AugmentConfig | undefined): Augmenter | undefined {
  if (!cfg?.audio || Object.keys(cfg.audio).length === 0) return undefined;
  validateAugmentConfig(cfg);
  const audio = cfg.audio;
  return (modality, input, rng) => (modality === 'audio' && input.kind === 'audio' ? augmentAudio(input, audio, rng) : input);
}

/** A PRNG for the sample at (epoch, position) of a run seeded with `seed`. */
export function sampleRng(seed: number, epoch: number, position: number): Sfc32 {
  let h = 0x811c9dc5;
  for (const v of [seed, epoch, position]) {
    h ^= v >>> 0;
    h = Math.imul(h, 0x01000193) >>> 0;
    h ^= h >>> 15;
  }
  return Sfc32.fromSeed(h);
}
