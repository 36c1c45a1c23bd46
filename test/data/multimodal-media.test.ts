import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import {
  AudioError,
  decodeWav,
  encodeWav,
  parseIdx,
  preprocessAudio,
  preprocessImage,
  resample,
  resampledLength,
  resizeBilinear,
} from '../../src/data/multimodal/index.ts';
import { createNodeMediaLoader, decodePng, encodeGrayPng } from '../../src/data/multimodal/node.ts';

const close = (a: ArrayLike<number>, b: ArrayLike<number>, eps = 1e-6) => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i]), `index ${i}: ${a[i]} vs ${b[i]}`).toBeLessThanOrEqual(eps);
};

describe('images', () => {
  it('PNG decode (gray and RGB) matches the encoded pixels', () => {
    const gray = Uint8Array.from([0, 50, 100, 150, 200, 255]);
    const g = decodePng(encodeGrayPng(gray, 3, 2));
    expect([g.width, g.height, g.channels]).toEqual([3, 2, 4]);
    expect([...g.data].filter((_, i) => i % 4 === 0)).toEqual([...gray]);
    expect([...g.data].filter((_, i) => i % 4 === 3)).toEqual([255, 255, 255, 255, 255, 255]);

    const png = new PNG({ width: 2, height: 1, colorType: 2 });
    png.data = Buffer.from([255, 0, 0, 255, 10, 20, 30, 255]);
    const rgb = decodePng(new Uint8Array(PNG.sync.write(png, { colorType: 2 })));
    expect([...rgb.data]).toEqual([255, 0, 0, 255, 10, 20, 30, 255]);
    // 1 channel: ITU-R 601 luma; 3 channels: as is.
    const one = preprocessImage(rgb, { size: [1, 2], channels: 1 });
    close(one.data, [0.299, (0.299 * 10 + 0.587 * 20 + 0.114 * 30) / 255]);
    const three = preprocessImage(rgb, { size: [1, 2], channels: 3 });
    close(three.data, [1, 10 / 255, 0, 20 / 255, 0, 30 / 255]);
  });

  it('bilinear resize (half-pixel centres) and normalisation vs a hand-computed case', () => {
    // 2×2 [[0, 255], [255, 0]] → 4×4: source coordinate d/2 − 1/4, clamped.
    const img = { width: 2, height: 2, channels: 1, data: Uint8Array.from([0, 255, 255, 0]) };
    const expected = [
      [0, 0.25, 0.75, 1],
      [0.25, 0.375, 0.625, 0.75],
      [0.75, 0.625, 0.375, 0.25],
      [1, 0.75, 0.25, 0],
    ].flat();
    const up = preprocessImage(img, { size: 4 });
    expect([up.channels, up.height, up.width, up.sourceWidth, up.sourceHeight]).toEqual([1, 4, 4, 2, 2]);
    close(up.data, expected);
    const norm = preprocessImage(img, { size: 4, mean: 0.5, std: 0.25 });
    close(
      norm.data,
      expected.map((v) => (v - 0.5) / 0.25),
    );
    // RGB output replicates gray, per-channel mean/std.
    const rgb = preprocessImage(img, { size: [4, 4], channels: 3, mean: [0, 0.5, 1], std: [1, 0.5, 2] });
    close(rgb.data.subarray(16, 32), expected.map((v) => (v - 0.5) / 0.5));
    close(rgb.data.subarray(32), expected.map((v) => (v - 1) / 2));
    // 4×4 → 2×2 samples at 2d + 0.5: the mean of each 2×2 block.
    const src = Float32Array.from({ length: 16 }, (_, i) => i);
    close(resizeBilinear(src, 4, 4, 2, 2), [(0 + 1 + 4 + 5) / 4, (2 + 3 + 6 + 7) / 4, (8 + 9 + 12 + 13) / 4, (10 + 11 + 14 + 15) / 4]);
    // 3 → 2 columns: coordinates 0.25 and 1.75.
    close(resizeBilinear(Float32Array.from([0, 10, 20]), 1, 3, 1, 2), [2.5, 17.5]);
    expect(() => preprocessImage(img, { std: 0 })).toThrow(/std must be positive/);
  });

  it('IDX files (gzipped too) load through the Node media loader with an index', async () => {
    // [3 images, 2×2] uint8, big-endian header.
    const header = Uint8Array.from([0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2]);
    const pixels = Uint8Array.from({ length: 12 }, (_, i) => i * 20);
    const idx = new Uint8Array([...header, ...pixels]);
    const p = parseIdx(idx);
    expect(p.dims).toEqual([3, 2, 2]);
    expect([...p.data]).toEqual([...pixels]);
    const dir = mkdtempSync(join(tmpdir(), 'mm-idx-'));
    writeFileSync(join(dir, 'imgs.idx.gz'), gzipSync(idx));
    const loader = createNodeMediaLoader({ image: { size: 2 } });
    const im = await loader.load({ type: 'image', path: 'imgs.idx.gz', index: 2 }, join(dir, 'imgs.idx.gz'));
    expect(im.kind).toBe('image');
    close((im as { data: Float32Array }).data, [160, 180, 200, 220].map((v) => v / 255));
    await expect(loader.load({ type: 'image', path: 'x', index: 3 }, join(dir, 'imgs.idx.gz'))).rejects.toThrow(/image index 3 out of range \(3 images\)/);
    await expect(loader.load({ type: 'image', path: 'x' }, join(dir, 'imgs.idx.gz'))).rejects.toThrow(/needs "index"/);
    expect(() => parseIdx(idx.subarray(0, 20))).toThrow(/IDX data has 4 bytes/);
  });
});

/** Magnitude of the DFT of x at frequency f (Hz), Hann-windowed, normalised so a unit sine gives ≈ 0.5. */
function dftMag(x: Float32Array, rate: number, f: number): number {
  let re = 0;
  let im = 0;
  let wsum = 0;
  for (let i = 0; i < x.length; i++) {
    const w = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (x.length - 1));
    const ph = (2 * Math.PI * f * i) / rate;
    re += w * x[i] * Math.cos(ph);
    im -= w * x[i] * Math.sin(ph);
    wsum += w;
  }
  return Math.hypot(re, im) / wsum;
}
const sine = (f: number, rate: number, n: number, a = 0.5) => Float32Array.from({ length: n }, (_, i) => a * Math.sin((2 * Math.PI * f * i) / rate));

describe('audio', () => {
  it('WAV decode: 16-bit PCM and 32-bit float round trips', () => {
    const x = Float32Array.from([0, 0.5, -0.5, 0.999, -1, 0.123456]);
    const pcm = decodeWav(encodeWav(x, 16000));
    expect([pcm.sampleRate, pcm.channels.length, pcm.format, pcm.bitsPerSample]).toEqual([16000, 1, 'pcm', 16]);
    close(pcm.channels[0], [0, 16384, -16384, 32735, -32768, 4045].map((v) => v / 32768), 0);
    const fl = decodeWav(encodeWav(x, 44100, { format: 'float32' }));
    expect([fl.sampleRate, fl.format, fl.bitsPerSample]).toEqual([44100, 'float', 32]);
    close(fl.channels[0], x, 0);
    // Stereo → mono by averaging.
    const st = decodeWav(encodeWav([Float32Array.from([0.5, 0.25]), Float32Array.from([0, -0.25])], 8000, { format: 'float32' }));
    expect(st.channels.length).toBe(2);
    const mono = preprocessAudio(st, { sampleRate: 8000 });
    close(mono.samples, [0.25, 0]);
  });

  it('WAV decode: hand-built 24-bit stereo with an extra chunk, and errors', () => {
    const b: number[] = [];
    const str = (s: string) => b.push(...[...s].map((c) => c.charCodeAt(0)));
    const u32 = (v: number) => b.push(v & 255, (v >> 8) & 255, (v >> 16) & 255, (v >>> 24) & 255);
    const u16 = (v: number) => b.push(v & 255, (v >> 8) & 255);
    str('RIFF');
    u32(0);
    str('WAVE');
    str('LIST');
    u32(3);
    b.push(1, 2, 3, 0); // odd-sized chunk + pad byte
    str('fmt ');
    u32(16);
    u16(1);
    u16(2);
    u32(48000);
    u32(48000 * 6);
    u16(6);
    u16(24);
    str('data');
    u32(12);
    b.push(0x00, 0x00, 0x40, 0x00, 0x00, 0xc0); // +0.5, −0.5
    b.push(0xff, 0xff, 0x7f, 0x01, 0x00, 0x00); // max, 1 LSB
    const w = decodeWav(Uint8Array.from(b));
    expect([w.sampleRate, w.bitsPerSample, w.channels.length]).toEqual([48000, 24, 2]);
    close(w.channels[0], [0.5, 8388607 / 8388608], 0);
    close(w.channels[1], [-0.5, 1 / 8388608], 0);
    expect(() => decodeWav(new Uint8Array(50), 'x.wav')).toThrow(/x\.wav: not a RIFF\/WAVE file/);
  });

  it('resampling preserves a sine frequency and amplitude and removes content above the new Nyquist', () => {
    const from = 22050;
    const to = 16000;
    const n = 22050; // 1 s
    for (const f of [440, 1000, 3000, 6000]) {
      const y = resample(sine(f, from, n), from, to);
      expect(y.length).toBe(resampledLength(n, from, to));
      expect(y.length).toBe(16000);
      // Peak DFT bin at f, amplitude ≈ 0.5 (Hann window → 0.25 of the peak).
      const at = dftMag(y, to, f);
      expect(at).toBeGreaterThan(0.245);
      expect(at).toBeLessThan(0.255);
      for (const g of [f * 0.9, f * 1.1]) expect(dftMag(y, to, g)).toBeLessThan(at * 0.01);
      // Zero crossings in the middle 0.5 s: 2 per period.
      const mid = y.subarray(4000, 12000);
      let zc = 0;
      for (let i = 1; i < mid.length; i++) if (mid[i - 1] < 0 !== mid[i] < 0) zc++;
      expect(Math.abs(zc - 2 * f * 0.5)).toBeLessThanOrEqual(2);
      // Compare with the ideal sine sample by sample away from the edges.
      const ideal = sine(f, to, 16000);
      let err = 0;
      for (let i = 200; i < 15800; i++) err = Math.max(err, Math.abs(y[i] - ideal[i]));
      expect(err).toBeLessThan(2e-3);
    }
    // 10 kHz cannot exist at 16 kHz: it must be attenuated, not aliased to 6 kHz.
    const alias = resample(sine(10000, from, n), from, to);
    expect(dftMag(alias, to, 6000)).toBeLessThan(0.25 * 1e-3);
    // Upsampling works too: 16 kHz → 22.05 kHz keeps 1 kHz.
    const up = resample(sine(1000, 16000, 16000), 16000, 22050);
    expect(dftMag(up, 22050, 1000)).toBeGreaterThan(0.245);
  });

  it('the media loader resamples WAV files to the configured rate, or refuses with resample: false', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mm-wav-'));
    const path = join(dir, 'tone.wav');
    writeFileSync(path, encodeWav(sine(500, 22050, 11025), 22050));
    const a = await createNodeMediaLoader({ audio: { sampleRate: 16000 } }).load({ type: 'audio', path: 'tone.wav' }, path);
    if (a.kind !== 'audio') throw new Error('expected audio');
    expect([a.sampleRate, a.sourceSampleRate, a.samples.length, a.seconds]).toEqual([16000, 22050, 8000, 0.5]);
    expect(dftMag(a.samples, 16000, 500)).toBeGreaterThan(0.24);
    const strict = createNodeMediaLoader({ audio: { sampleRate: 16000, resample: false } });
    await expect(strict.load({ type: 'audio', path: 'tone.wav' }, path)).rejects.toThrow(AudioError);
    await expect(strict.load({ type: 'audio', path: 'tone.wav' }, path)).rejects.toThrow(
      `${path}: sample rate is 22050 Hz, the config wants 16000 Hz and resample is false`,
    );
  });
});
