import { describe, expect, it } from 'vitest';
import * as W from '../../src/node.ts';
import { WHISPER, logMel, melFilters, melToHz, hzToMel, type RefMelOptions } from '../reference/melspec.ts';
import { expectClose, rng } from '../helpers/check.ts';
import { useDevice } from '../helpers/device.ts';

useDevice();

/** A linear chirp (100 Hz → 6 kHz) plus two sines and a little noise, at 16 kHz. */
function signal(n: number, seed: number, sr = 16000): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  const dur = n / sr;
  for (let i = 0; i < n; i++) {
    const t = i / sr;
    const chirp = Math.sin(2 * Math.PI * (100 * t + ((6000 - 100) / (2 * Math.max(dur, 1e-3))) * t * t));
    out[i] = 0.4 * chirp + 0.3 * Math.sin(2 * Math.PI * 440 * t) + 0.2 * Math.sin(2 * Math.PI * 2500 * t + 1) + 0.01 * (r() * 2 - 1);
  }
  return out;
}

function tone(n: number, hz: number, sr = 16000): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => 0.5 * Math.sin((2 * Math.PI * hz * i) / sr));
}

async function compare(clips: Float32Array[], opts: W.MelSpecOptions, ref: RefMelOptions, atol: number, what: string) {
  const { mel, frames } = W.logMelFromClips(clips, opts);
  expect(frames).toEqual(clips.map((c) => Math.floor(c.length / ref.hop)));
  expect(mel.shape).toEqual([frames.reduce((a, b) => a + b, 0), ref.nMels]);
  const got = await mel.toArray();
  const expected = clips.flatMap((c) => logMel(c, ref).flat());
  expectClose(got, expected, atol, 0, what);
  mel.release();
}

describe('log-mel spectrogram (GPU) vs float64 reference', () => {
  it('Whisper defaults (n_fft 400, hop 160, 80 Slaney mels, reflect, Whisper normalisation), several lengths incl. non-multiples of the hop', async () => {
    const clips = [signal(16000, 1), signal(4321, 2), signal(1000, 3), signal(201, 4), signal(3207, 5)];
    await compare(clips, {}, WHISPER, 5e-4, "whisper log-mel");
  });

  it('raw log10 (no normalisation), n_fft 512 (257 bins) with a 400-sample window, zero padding, HTK scale without norm', async () => {
    const clips = [signal(4000, 6), signal(2599, 7)];
    const ref: RefMelOptions = { ...WHISPER, nFft: 512, winLength: 400, reflect: false, whisperNorm: false, htk: true, slaneyNorm: false, nMels: 64 };
    await compare(clips, { nFft: 512, winLength: 400, padMode: 'zero', logNorm: 'none', melScale: 'htk', melNorm: 'none', nMels: 64 }, ref, 1e-3, "htk log-mel");
    // Zero padding accepts clips shorter than n_fft/2 (≥ one hop).
    await compare([signal(170, 8)], { padMode: 'zero', logNorm: 'none' }, { ...WHISPER, reflect: false, whisperNorm: false }, 1e-3, "short clip");
  });

  it('a pure tone lands in the mel band whose filter peaks at its frequency, in every frame', async () => {
    const fb = melFilters(WHISPER);
    for (const hz of [500, 1000, 3000]) {
      // The DFT bin nearest the tone (40 Hz per bin) and the band whose filter peaks there.
      const b = Math.round((hz * WHISPER.nFft) / WHISPER.sampleRate);
      const expected = fb.reduce((best, row, m) => (row[b] > fb[best][b] ? m : best), 0);
      // The expected band's centre frequency is within one band spacing of the tone.
      const lo = hzToMel(0, false);
      const hi = hzToMel(8000, false);
      const centre = melToHz(lo + ((expected + 1) * (hi - lo)) / 81, false);
      expect(Math.abs(hzToMel(centre, false) - hzToMel(hz, false))).toBeLessThan((hi - lo) / 81);
      const { mel, frames } = W.logMelFromClips([tone(8000, hz)], { logNorm: 'none' });
      const v = await mel.toArray();
      for (let f = 2; f < frames[0] - 2; f++) {
        const row = Array.from(v.slice(f * 80, f * 80 + 80));
        expect(row.indexOf(Math.max(...row)), `${hz} Hz tone, frame ${f}`).toBe(expected);
      }
      mel.release();
    }
  });

  it('silence gives the floor: log10(1e-10) = −10 raw, (−10 + 4)/4 = −1.5 after Whisper normalisation', async () => {
    const { mel } = W.logMelFromClips([new Float32Array(800)], { logNorm: 'none' });
    expect(Array.from(await mel.toArray()).every((x) => Math.abs(x + 10) < 1e-5)).toBe(true);
    const { mel: m2 } = W.logMelFromClips([new Float32Array(800)]);
    expect(Array.from(await m2.toArray()).every((x) => Math.abs(x - -1.5) < 1e-5)).toBe(true);
  });

  it('host helpers: frame counts, minimum lengths, filter bank matches the reference', () => {
    expect(W.melFrameCount(16000)).toBe(100);
    expect(W.melFrameCount(4321)).toBe(27);
    expect(W.melMinSamples()).toBe(201);
    expect(W.melMinSamples({ padMode: 'zero' })).toBe(160);
    const fb = W.melFilterBank();
    expectClose(fb, melFilters(WHISPER).flat(), 1e-12, 1e-9, 'filter bank');
    // Slaney normalisation: every triangle has area ≈ 1 in Hz·(1/Hz) units, i.e. Σ_b w·Δf ≈ 1.
    const nb = 201;
    for (let m = 5; m < 80; m++) {
      let area = 0;
      for (let b = 0; b < nb; b++) area += fb[m * nb + b] * 40;
      expect(Math.abs(area - 1)).toBeLessThan(0.25);
    }
  });

  it('clips split into groups that fit one binding give the same rows as one pass', async () => {
    const clips = [signal(3000, 11), signal(1700, 12), signal(4100, 13), signal(900, 14)];
    const one = W.logMelFromClips(clips);
    const a = await one.mel.toArray();
    W.setMelFramesPerGroup(30); // frames 18, 10, 25, 5 → groups [0, 1], [2, 3]; a clip above the cap still runs alone
    try {
      const split = W.logMelFromClips(clips);
      expect(Array.from(await split.mel.toArray())).toEqual(Array.from(a));
      W.setMelFramesPerGroup(1);
      expect(Array.from(await W.logMelFromClips(clips).mel.toArray())).toEqual(Array.from(a));
    } finally {
      W.setMelFramesPerGroup(null);
    }
  });

  it('bad inputs name the problem', () => {
    expect(() => W.logMelFromClips([signal(1000, 1), new Float32Array(0)])).toThrow(/melSpectrogram: audio clip 1 is empty/);
    expect(() => W.logMelFromClips([signal(150, 1)])).toThrow(/audio clip 0 has 150 samples; at least 201 are needed/);
    expect(() => W.logMelFromClips([signal(100, 1)], { padMode: 'zero' })).toThrow(/audio clip 0 has 100 samples; at least 160/);
    expect(() => W.logMelFromClips([])).toThrow(/no audio clips given/);
    expect(() => W.logMelFromClips([signal(1000, 1)], { nFft: 401 })).toThrow(/nFft must be even/);
    expect(() => W.logMelFromClips([signal(1000, 1)], { winLength: 600 })).toThrow(/winLength 600 exceeds nFft 400/);
    const wave = W.zeros([1000]);
    expect(() => W.logMelSpectrogram(wave, [0, 999])).toThrow(/cuSamples must run from 0 to the sample count 1000/);
  });
});
