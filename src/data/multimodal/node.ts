// Node-only multimodal helpers: manifest files, PNG decoding (pngjs), gzip, the built-in
// omni-fashion datasets.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { PNG } from 'pngjs';
import type { RawImage } from './image.ts';
import { ManifestError, parseManifest, type ManifestSample } from './manifest.ts';
import { createMediaLoader, type MediaConfig, type MediaLoader } from './media.ts';

/** Decode a PNG with pngjs (any bit depth/colour type → 8-bit RGBA). */
export function decodePng(bytes: Uint8Array): RawImage {
  const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  return { width: png.width, height: png.height, channels: 4, data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength) };
}

/** Encode 8-bit grayscale pixels [H·W] as a PNG (colour type 0). */
export function encodeGrayPng(pixels: Uint8Array, width: number, height: number): Uint8Array {
  const png = new PNG({ width, height, colorType: 0, inputColorType: 0, inputHasAlpha: false, bitDepth: 8 });
  png.data = Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength);
  return new Uint8Array(PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false, bitDepth: 8 }));
}

/** A MediaLoader reading local files (PNG, IDX optionally gzipped, WAV). */
export function createNodeMediaLoader(cfg: MediaConfig = {}): MediaLoader {
  return createMediaLoader(
    {
      readFile: (p) => {
        try {
          return new Uint8Array(readFileSync(p));
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          throw new Error(code === 'ENOENT' ? `file not found: ${p}` : `cannot read ${p}: ${(e as Error).message}`);
        }
      },
      gunzip: (b) => new Uint8Array(gunzipSync(b)),
      decodePng,
    },
    cfg,
  );
}

export interface LoadManifestOptions {
  /** Check that every media file exists (default true). */
  checkFiles?: boolean;
}

/** Read and validate a JSONL manifest; media paths resolve against its directory. */
export function loadManifest(path: string, opts: LoadManifestOptions = {}): ManifestSample[] {
  if (!existsSync(path)) throw new ManifestError(`manifest not found: ${path}`);
  return parseManifest(readFileSync(path, 'utf8'), {
    file: path,
    baseDir: dirname(resolve(path)),
    checkFiles: opts.checkFiles === false ? undefined : (p) => existsSync(p),
  });
}

/** Repository root (two levels above src/data/multimodal). */
const repoRoot = () => join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Directory of the committed mini dataset (data/omni-fashion-mini). */
export function omniFashionMiniDir(): string {
  return join(repoRoot(), 'data', 'omni-fashion-mini');
}

/** The train and val manifests of a dataset directory (manifest.train.jsonl, manifest.val.jsonl). */
export function loadOmniDataset(dir = omniFashionMiniDir(), opts: LoadManifestOptions = {}): { train: ManifestSample[]; val: ManifestSample[] } {
  return { train: loadManifest(join(dir, 'manifest.train.jsonl'), opts), val: loadManifest(join(dir, 'manifest.val.jsonl'), opts) };
}
