// Images: IDX (MNIST-family) parsing, bilinear resize and normalisation to a Float32Array
// [C, H, W]. Platform-neutral; PNG decoding needs a platform decoder (pngjs in ./node.ts).

export class ImageError extends Error {
  override name = 'ImageError';
}

/** Decoded pixels, interleaved (HWC), 8-bit (0..255) or float. */
export interface RawImage {
  width: number;
  height: number;
  /** 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA). */
  channels: number;
  data: Uint8Array | Uint8ClampedArray | Float32Array;
}

export interface ImageConfig {
  /** Output size: one number (square) or [height, width]. Default 28. */
  size?: number | [number, number];
  /** Output channels: 1 (gray; RGB → ITU-R 601 luma) or 3 (RGB; gray replicated). Default 1. */
  channels?: 1 | 3;
  /** Per-channel mean and std applied after scaling 8-bit values to [0, 1]: (x − mean) / std. Default 0 and 1. */
  mean?: number | number[];
  std?: number | number[];
}

/** A preprocessed image, ready for a vision encoder. */
export interface ImageInput {
  kind: 'image';
  /** [channels, height, width], row-major. */
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
  /** Size before resizing. */
  sourceWidth: number;
  sourceHeight: number;
}

// ---------- IDX ----------

export interface IdxArray {
  dims: number[];
  data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
}

const IDX_TYPES: Record<number, { bytes: number; name: string }> = {
  0x08: { bytes: 1, name: 'uint8' },
  0x09: { bytes: 1, name: 'int8' },
  0x0b: { bytes: 2, name: 'int16' },
  0x0c: { bytes: 4, name: 'int32' },
  0x0d: { bytes: 4, name: 'float32' },
  0x0e: { bytes: 8, name: 'float64' },
};

export function isIdx(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0 && bytes[1] === 0 && bytes[2] in IDX_TYPES && bytes[3] >= 1 && bytes[3] <= 8;
}

/** Parse an (uncompressed) IDX file: big-endian header [0, 0, type, ndim], ndim uint32 dims, data. */
export function parseIdx(bytes: Uint8Array, name = 'IDX'): IdxArray {
  if (!isIdx(bytes)) throw new ImageError(`${name}: not an IDX file (bad magic)`);
  const type = IDX_TYPES[bytes[2]];
  const ndim = bytes[3];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4 + 4 * ndim) throw new ImageError(`${name}: truncated IDX header`);
  const dims: number[] = [];
  for (let i = 0; i < ndim; i++) dims.push(dv.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const off = 4 + 4 * ndim;
  if (bytes.length < off + count * type.bytes)
    throw new ImageError(`${name}: IDX data has ${bytes.length - off} bytes, dims [${dims}] need ${count * type.bytes}`);
  let data: IdxArray['data'];
  switch (type.name) {
    case 'uint8':
      data = bytes.slice(off, off + count);
      break;
    case 'int8':
      data = new Int8Array(bytes.slice(off, off + count).buffer);
      break;
    default: {
      const arr =
        type.name === 'int16' ? new Int16Array(count) : type.name === 'int32' ? new Int32Array(count) : type.name === 'float32' ? new Float32Array(count) : new Float64Array(count);
      for (let i = 0; i < count; i++) {
        const o = off + i * type.bytes;
        arr[i] =
          type.name === 'int16' ? dv.getInt16(o, false) : type.name === 'int32' ? dv.getInt32(o, false) : type.name === 'float32' ? dv.getFloat32(o, false) : dv.getFloat64(o, false);
      }
      data = arr;
    }
  }
  return { dims, data };
}

/** Image `index` of an IDX image array [N, H, W] (or [N, H, W, C]) as a RawImage. */
export function idxImage(idx: IdxArray, index: number, name = 'IDX'): RawImage {
  const { dims, data } = idx;
  if (dims.length !== 3 && dims.length !== 4) throw new ImageError(`${name}: IDX images need 3 or 4 dims, got [${dims}]`);
  const [n, h, w] = dims;
  const c = dims[3] ?? 1;
  if (!Number.isInteger(index) || index < 0 || index >= n) throw new ImageError(`${name}: image index ${index} out of range (${n} images)`);
  const size = h * w * c;
  const sub = data.subarray(index * size, (index + 1) * size);
  const pixels = sub instanceof Uint8Array || sub instanceof Float32Array ? sub.slice() : Float32Array.from(sub as ArrayLike<number>);
  return { width: w, height: h, channels: c, data: pixels };
}

// ---------- preprocessing ----------

function sizeOf(cfg: ImageConfig): [number, number] {
  const s = cfg.size ?? 28;
  const [h, w] = typeof s === 'number' ? [s, s] : s;
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1) throw new ImageError(`image size must be positive integers, got ${JSON.stringify(s)}`);
  return [h, w];
}

function perChannel(v: number | number[] | undefined, c: number, dflt: number, what: string): number[] {
  if (v === undefined) return new Array(c).fill(dflt);
  if (typeof v === 'number') return new Array(c).fill(v);
  if (v.length === 1) return new Array(c).fill(v[0]);
  if (v.length !== c) throw new ImageError(`image ${what} has ${v.length} values for ${c} channels`);
  return v;
}

/** Planes [C][H·W] in the source resolution, converted to `channels` and scaled to [0, 1] for 8-bit input. */
function toPlanes(img: RawImage, channels: number): Float32Array[] {
  const { width: w, height: h, channels: c, data } = img;
  if (![1, 2, 3, 4].includes(c)) throw new ImageError(`unsupported channel count ${c}`);
  if (data.length !== w * h * c) throw new ImageError(`image data has ${data.length} values, expected ${w}×${h}×${c}`);
  const scale = data instanceof Float32Array ? 1 : 1 / 255;
  const n = w * h;
  const planes = Array.from({ length: channels }, () => new Float32Array(n));
  const hasColor = c >= 3;
  for (let i = 0; i < n; i++) {
    const o = i * c;
    if (channels === 1) {
      planes[0][i] = (hasColor ? 0.299 * data[o] + 0.587 * data[o + 1] + 0.114 * data[o + 2] : data[o]) * scale;
      if (hasColor && data[o] === data[o + 1] && data[o] === data[o + 2]) planes[0][i] = data[o] * scale; // exact for gray RGB
    } else {
      for (let k = 0; k < 3; k++) planes[k][i] = (hasColor ? data[o + k] : data[o]) * scale;
    }
  }
  return planes;
}

/**
 * Bilinear resize of one plane with half-pixel centres (PyTorch `interpolate(mode='bilinear',
 * align_corners=False)`, no antialiasing): source coordinate (d + 0.5)·in/out − 0.5, clamped at 0.
 */
export function resizeBilinear(src: Float32Array, sh: number, sw: number, dh: number, dw: number): Float32Array {
  if (sh === dh && sw === dw) return src.slice();
  const out = new Float32Array(dh * dw);
  const sy = sh / dh;
  const sx = sw / dw;
  const x0s = new Int32Array(dw);
  const x1s = new Int32Array(dw);
  const lxs = new Float32Array(dw);
  for (let x = 0; x < dw; x++) {
    const fx = Math.max(0, (x + 0.5) * sx - 0.5);
    const x0 = Math.min(Math.floor(fx), sw - 1);
    x0s[x] = x0;
    x1s[x] = Math.min(x0 + 1, sw - 1);
    lxs[x] = fx - x0;
  }
  for (let y = 0; y < dh; y++) {
    const fy = Math.max(0, (y + 0.5) * sy - 0.5);
    const y0 = Math.min(Math.floor(fy), sh - 1);
    const y1 = Math.min(y0 + 1, sh - 1);
    const ly = fy - y0;
    for (let x = 0; x < dw; x++) {
      const a = src[y0 * sw + x0s[x]];
      const b = src[y0 * sw + x1s[x]];
      const c = src[y1 * sw + x0s[x]];
      const d = src[y1 * sw + x1s[x]];
      const lx = lxs[x];
      const top = a + (b - a) * lx;
      const bot = c + (d - c) * lx;
      out[y * dw + x] = top + (bot - top) * ly;
    }
  }
  return out;
}

/** Convert channels, resize (bilinear) and normalise: RawImage → ImageInput [C, H, W]. */
export function preprocessImage(img: RawImage, cfg: ImageConfig = {}): ImageInput {
  const [h, w] = sizeOf(cfg);
  const c = cfg.channels ?? 1;
  if (c !== 1 && c !== 3) throw new ImageError(`image channels must be 1 or 3, got ${c}`);
  const mean = perChannel(cfg.mean, c, 0, 'mean');
  const std = perChannel(cfg.std, c, 1, 'std');
  if (std.some((s) => !(s > 0))) throw new ImageError(`image std must be positive, got ${JSON.stringify(cfg.std)}`);
  const planes = toPlanes(img, c);
  const out = new Float32Array(c * h * w);
  for (let k = 0; k < c; k++) {
    const r = resizeBilinear(planes[k], img.height, img.width, h, w);
    const m = mean[k];
    const inv = 1 / std[k];
    for (let i = 0; i < r.length; i++) out[k * h * w + i] = (r[i] - m) * inv;
  }
  return { kind: 'image', data: out, channels: c, height: h, width: w, sourceWidth: img.width, sourceHeight: img.height };
}
