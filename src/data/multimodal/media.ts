// Media loading: bytes → decoded, preprocessed inputs for the encoders. Platform-neutral;
// the platform supplies file reading, gunzip and PNG decoding (./node.ts does it for Node).

import { AudioError, decodeWav, resample, toMono, type DecodedWav, type ResampleOptions } from './audio.ts';
import { idxImage, ImageError, isIdx, parseIdx, preprocessImage, type IdxArray, type ImageConfig, type ImageInput, type RawImage } from './image.ts';
import type { MediaSegment } from './manifest.ts';
import { mediaDecoder } from './modalities.ts';

export interface AudioConfig {
  /** Sample rate the encoder expects (default 16000). */
  sampleRate?: number;
  /**
   * Resample other rates to `sampleRate` (default true) with the Kaiser-windowed sinc of
   * `resample()` (audio.ts); false makes a different rate an error.
   */
  resample?: boolean;
  resampleOptions?: ResampleOptions;
}

/** A preprocessed clip, ready for an audio encoder: mono float samples at the configured rate. */
export interface AudioInput {
  kind: 'audio';
  samples: Float32Array;
  sampleRate: number;
  /** Rate of the file before resampling. */
  sourceSampleRate: number;
  /** Duration in seconds. */
  seconds: number;
  /** Training-time SpecAugment masks (augment.ts), applied by the audio encoder to its features. */
  specMask?: SpecMask;
}

/**
 * Masks drawn for one clip, independent of the encoder's feature grid: a mask of `width`
 * channels (or frames) starts at ⌊at · (size − width + 1)⌋; time widths are first capped
 * at ⌊timeFraction · frames⌋.
 */
export interface SpecMask {
  freq: ReadonlyArray<{ at: number; width: number }>;
  time: ReadonlyArray<{ at: number; width: number }>;
  timeFraction: number;
}

export type MediaInput = ImageInput | AudioInput;

export interface MediaConfig {
  image?: ImageConfig;
  audio?: AudioConfig;
}

/** Mix down to mono and bring to the configured rate. */
export function preprocessAudio(wav: DecodedWav, cfg: AudioConfig = {}, name = 'audio'): AudioInput {
  const rate = cfg.sampleRate ?? 16000;
  if (!Number.isInteger(rate) || rate < 1) throw new AudioError(`audio sampleRate must be a positive integer, got ${rate}`);
  let samples = toMono(wav.channels);
  if (wav.sampleRate !== rate) {
    if (cfg.resample === false)
      throw new AudioError(`${name}: sample rate is ${wav.sampleRate} Hz, the config wants ${rate} Hz and resample is false`);
    samples = resample(samples, wav.sampleRate, rate, cfg.resampleOptions);
  }
  return { kind: 'audio', samples, sampleRate: rate, sourceSampleRate: wav.sampleRate, seconds: samples.length / rate };
}

/** What a platform provides to read and decode media files. */
export interface MediaIO {
  readFile(path: string): Uint8Array | Promise<Uint8Array>;
  /** Decompress gzip (needed for .gz IDX files). */
  gunzip?(bytes: Uint8Array): Uint8Array | Promise<Uint8Array>;
  /** Decode a PNG to pixels (8-bit; any channel layout). */
  decodePng?(bytes: Uint8Array): RawImage | Promise<RawImage>;
}

/** Turns a manifest media segment (with its resolved path) into an encoder input. */
export interface MediaLoader {
  load(segment: MediaSegment, resolvedPath: string): MediaInput | Promise<MediaInput>;
}

const isPng = (b: Uint8Array) => b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47;
const isGzip = (b: Uint8Array) => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;

/**
 * A MediaLoader over `io`: images are PNG (via io.decodePng) or IDX (optionally gzipped,
 * `index` selects the image; parsed files are cached), audio is WAV. Images are resized
 * and normalised by `cfg.image`, audio mixed to mono and resampled by `cfg.audio`.
 */
export function createMediaLoader(io: MediaIO, cfg: MediaConfig = {}): MediaLoader {
  const idxCache = new Map<string, IdxArray>();
  const bytesOf = async (path: string): Promise<Uint8Array> => {
    let b = await io.readFile(path);
    if (isGzip(b)) {
      if (!io.gunzip) throw new ImageError(`${path}: gzip-compressed, and this platform has no gunzip`);
      b = await io.gunzip(b);
    }
    return b;
  };
  return {
    async load(seg, path) {
      if (seg.type === 'audio') return preprocessAudio(decodeWav(await bytesOf(path), path), cfg.audio, path);
      if (seg.type === 'extra') {
        const decode = mediaDecoder(seg.modality);
        if (!decode) throw new Error(`${path}: no decoder registered for modality '${seg.modality}'`);
        return (await decode(await bytesOf(path), path)) as MediaInput;
      }
      let raw: RawImage;
      const cached = idxCache.get(path);
      if (cached) raw = pickIdx(cached, seg.index, path);
      else {
        const b = await bytesOf(path);
        if (isPng(b)) {
          if (seg.index !== undefined) throw new ImageError(`${path}: "index" is only for IDX files`);
          if (!io.decodePng) throw new ImageError(`${path}: PNG decoding is not available on this platform`);
          raw = await io.decodePng(b);
        } else if (isIdx(b)) {
          const idx = parseIdx(b, path);
          idxCache.set(path, idx);
          raw = pickIdx(idx, seg.index, path);
        } else throw new ImageError(`${path}: unsupported image format (PNG and IDX are supported)`);
      }
      return preprocessImage(raw, cfg.image);
    },
  };
}

function pickIdx(idx: IdxArray, index: number | undefined, path: string): RawImage {
  if (idx.dims.length === 2) {
    if (index !== undefined && index !== 0) throw new ImageError(`${path}: a single-image IDX file has no image ${index}`);
    return idxImage({ dims: [1, ...idx.dims], data: idx.data }, 0, path);
  }
  if (index === undefined) throw new ImageError(`${path}: an IDX file with ${idx.dims[0]} images needs "index" in the segment`);
  return idxImage(idx, index, path);
}
