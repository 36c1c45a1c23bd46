// Training-time audio augmentation: what each perturbation does to a clip, determinism per
// (seed, epoch, position), exact replay after a loader restore, config errors.
import { describe, expect, it } from 'vitest';
import {
  augmentAudio,
  createAugmenter,
  drawSpecMask,
  MultimodalLoader,
  parseManifest,
  sampleRng,
  type AudioInput,
  type MediaLoader,
  type MultimodalBatch,
} from '../../src/data/multimodal/index.ts';

const RATE = 16000;

function sine(freq: number, seconds: number, amp = 0.5): AudioInput {
  const n = Math.round(seconds * RATE);
  const s = new Float32Array(n);
  for (let i = 0; i < n; i++) s[i] = amp * Math.sin((2 * Math.PI * freq * i) / RATE);
  return { kind: 'audio', samples: s, sampleRate: RATE, sourceSampleRate: RATE, seconds: n / RATE };
}

const rms = (x: Float32Array) => Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length);

/** Dominant frequency by counting upward zero crossings. */
function zeroCrossingHz(x: Float32Array): number {
  let c = 0;
  for (let i = 1; i < x.length; i++) if (x[i - 1] < 0 && x[i] >= 0) c++;
  return c / (x.length / RATE);
}

describe('audio augmentation', () => {
  it('speed: a clip played f× faster is 1/f as long and f× higher in pitch', () => {
    const x = sine(440, 1);
    for (const f of [0.9, 1.1]) {
      const y = augmentAudio(x, { speed: [f, f] }, sampleRng(0, 0, 0));
      expect(Math.abs(y.samples.length - x.samples.length / f)).toBeLessThan(3);
      expect(y.seconds).toBeCloseTo(y.samples.length / RATE, 9);
      expect(Math.abs(zeroCrossingHz(y.samples) - 440 * f) / (440 * f)).toBeLessThan(0.01);
    }
    expect(x.samples.length).toBe(RATE); // input untouched
  });

  it('gain scales the RMS by 10^(g/20); noise lands at the asked SNR; shift pads silence', () => {
    const x = sine(300, 1);
    const g = augmentAudio(x, { gainDb: [6, 6] }, sampleRng(1, 0, 0));
    expect(rms(g.samples) / rms(x.samples)).toBeCloseTo(10 ** (6 / 20), 4);

    const n = augmentAudio(x, { noiseSnrDb: [20, 20] }, sampleRng(2, 0, 0));
    const noise = n.samples.map((v, i) => v - x.samples[i]);
    const snr = 20 * Math.log10(rms(x.samples) / rms(noise));
    expect(Math.abs(snr - 20)).toBeLessThan(0.3);

    const s = augmentAudio(x, { shiftMs: 100 }, sampleRng(3, 0, 0));
    const pad = s.samples.length - x.samples.length;
    expect(pad).toBeGreaterThanOrEqual(0);
    expect(pad).toBeLessThanOrEqual(1601);
    for (let i = 0; i < pad; i++) expect(s.samples[i]).toBe(0);
    expect([...s.samples.subarray(pad, pad + 50)]).toEqual([...x.samples.subarray(0, 50)]);
  });

  it('the same (seed, epoch, position) gives the same clip; another position a different one', () => {
    const x = sine(200, 0.5);
    const cfg = { speed: [0.9, 1.1], gainDb: [-6, 6], noiseSnrDb: [15, 30], shiftMs: 50 } as const;
    const a = augmentAudio(x, cfg, sampleRng(7, 2, 11));
    const b = augmentAudio(x, cfg, sampleRng(7, 2, 11));
    const c = augmentAudio(x, cfg, sampleRng(7, 2, 12));
    const d = augmentAudio(x, cfg, sampleRng(7, 3, 11));
    expect([...a.samples]).toEqual([...b.samples]);
    expect([...a.samples]).not.toEqual([...c.samples]);
    expect([...a.samples]).not.toEqual([...d.samples]);
  });

  it('specAugment draws masks per clip (widths within bounds, positions in [0, 1)) and leaves the samples alone', () => {
    const x = sine(300, 0.4);
    const cfg = { specAugment: { freqMasks: 3, freqWidth: 5, timeMasks: 2, timeWidth: 7, timeFraction: 0.1 } };
    const a = augmentAudio(x, cfg, sampleRng(1, 0, 4));
    expect(a.samples).toBe(x.samples);
    const m = a.specMask!;
    expect(m.freq).toHaveLength(3);
    expect(m.time).toHaveLength(2);
    expect(m.timeFraction).toBe(0.1);
    for (const d of m.freq) expect(Number.isInteger(d.width) && d.width >= 0 && d.width <= 5 && d.at >= 0 && d.at < 1).toBe(true);
    for (const d of m.time) expect(Number.isInteger(d.width) && d.width >= 0 && d.width <= 7 && d.at >= 0 && d.at < 1).toBe(true);
    expect(augmentAudio(x, cfg, sampleRng(1, 0, 4)).specMask).toEqual(m);
    expect(augmentAudio(x, cfg, sampleRng(1, 0, 5)).specMask).not.toEqual(m);
    // Across many draws every width from 0 to the maximum occurs.
    const widths = new Set(Array.from({ length: 400 }, (_, i) => drawSpecMask({ freqMasks: 1, freqWidth: 4 }, sampleRng(0, 0, i)).freq[0].width));
    expect([...widths].sort()).toEqual([0, 1, 2, 3, 4]);
    // Defaults: 2 + 2 masks, 20% cap.
    const d = drawSpecMask({}, sampleRng(0, 0, 0));
    expect([d.freq.length, d.time.length, d.timeFraction]).toEqual([2, 2, 0.2]);
  });

  it('adding specAugment leaves the waveform perturbations of a clip unchanged', () => {
    const x = sine(200, 0.5);
    const base = { speed: [0.9, 1.1], gainDb: [-6, 6] } as const;
    const a = augmentAudio(x, base, sampleRng(3, 1, 2));
    const b = augmentAudio(x, { ...base, specAugment: { freqMasks: 1 } }, sampleRng(3, 1, 2));
    expect([...b.samples]).toEqual([...a.samples]);
    expect(b.specMask?.freq).toHaveLength(1);
  });

  it('bad ranges are refused naming the key; an empty config is no augmenter', () => {
    expect(() => createAugmenter({ audio: { specAugment: { freqWidth: 2.5 } } })).toThrow(/augment\.audio\.specAugment\.freqWidth must be an integer/);
    expect(() => createAugmenter({ audio: { specAugment: { timeFraction: 1.5 } } })).toThrow(/augment\.audio\.specAugment\.timeFraction/);
    expect(() => createAugmenter({ audio: { speed: [1.2, 0.9] } })).toThrow(/augment\.audio\.speed must be \[lo, hi\]/);
    expect(() => createAugmenter({ audio: { gainDb: [0, 90] } })).toThrow(/augment\.audio\.gainDb/);
    expect(() => createAugmenter({ audio: { shiftMs: -1 } })).toThrow(/augment\.audio\.shiftMs/);
    expect(createAugmenter({})).toBeUndefined();
    expect(createAugmenter({ audio: {} })).toBeUndefined();
  });
});

describe('augmentation in the multimodal loader', () => {
  // Every clip is the same 0.3 s sine; an audio item's token count is its length in 10 ms.
  const media: MediaLoader = { load: () => sine(250, 0.3) };
  const tok = { encode: (t: string) => [...t].map((c) => c.codePointAt(0)! + 100) };
  const samples = parseManifest(
    Array.from({ length: 12 }, (_, i) => JSON.stringify({ id: `s${i}`, source: 'speech', segments: [{ audio: `a${i}.wav` }, { text: 'coat', target: true }] })).join('\n'),
    { file: 'm.jsonl' },
  );
  const augment = createAugmenter({ audio: { speed: [0.8, 1.2], noiseSnrDb: [20, 30] } })!;
  const mk = () =>
    new MultimodalLoader(samples, {
      tokenizer: tok,
      media,
      tokenCount: (_m, x) => (x.kind === 'audio' ? Math.ceil(x.samples.length / 160) : 1),
      tokensPerBatch: 200,
      shuffle: true,
      seed: 5,
      augment,
      augmentKey: 'speed0.8-1.2',
    });
  const lengths = (b: MultimodalBatch) => b.audio.map((m) => m.input.kind === 'audio' && m.input.samples.length);

  it('clips differ from each other and from the original; a restored loader replays them exactly', async () => {
    const A = mk();
    const first = await A.next();
    const lens = lengths(first);
    expect(new Set(lens).size).toBeGreaterThan(1); // different speeds per sample
    expect(lens.every((n) => n !== 4800)).toBe(true);
    const state = JSON.parse(JSON.stringify(A.state()));
    const rest: MultimodalBatch[] = [];
    for (let i = 0; i < 6; i++) rest.push(await A.next());
    const B = mk();
    B.restore(state);
    for (const want of rest) {
      const got = await B.next();
      expect([...got.ids]).toEqual([...want.ids]);
      expect(got.audio.map((m) => (m.input.kind === 'audio' ? [...m.input.samples.subarray(0, 64)] : []))).toEqual(
        want.audio.map((m) => (m.input.kind === 'audio' ? [...m.input.samples.subarray(0, 64)] : [])),
      );
    }
    // A loader without augmentation (or with another) may not adopt the state.
    const C = new MultimodalLoader(samples, { tokenizer: tok, media, tokenCount: () => 1, tokensPerBatch: 200, shuffle: true, seed: 5 });
    expect(() => C.restore(state)).toThrow(/state belongs to other samples or options/);
  });
});
