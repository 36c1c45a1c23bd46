// The safetensors format (what PyTorch and Hugging Face exchange weights in):
//   u64 little-endian header length N · N bytes of JSON header · raw little-endian data.
// The header maps each tensor name to {dtype, shape, data_offsets: [begin, end]} relative
// to the data section, plus an optional "__metadata__" string map. Parsing validates
// everything before any byte is interpreted, so a malformed file gets a clear error.
// Platform-neutral: works on bytes; file I/O is in ./files.ts (Node).

export type SafeDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'U16' | 'U32' | 'U64' | 'BOOL';

const DTYPE_SIZE: Record<SafeDType, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, U16: 2, U32: 4, U64: 8, BOOL: 1,
};

/** Headers above this are refused (the reference implementation uses 100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

export interface SafeTensorEntry {
  dtype: SafeDType;
  shape: number[];
  /** The raw bytes (a view into the file's buffer when parsed). */
  data: Uint8Array;
}

export interface SafeTensorsFile {
  tensors: Map<string, SafeTensorEntry>;
  metadata: Record<string, string>;
}

export class SafeTensorsError extends Error {
  override name = 'SafeTensorsError';
}

export function parseSafeTensors(bytes: Uint8Array, source = 'safetensors data'): SafeTensorsFile {
  const fail = (msg: string): never => {
    throw new SafeTensorsError(`${source}: ${msg}`);
  };
  if (bytes.byteLength < 8) fail(`file is ${bytes.byteLength} bytes, too short for the 8-byte header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  if (n > MAX_HEADER_BYTES) fail(`header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (8 + n > bytes.byteLength) fail(`header length ${n} runs past the end of the file (${bytes.byteLength} bytes): truncated?`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    fail(`header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) fail('header is not a JSON object');
  const data = bytes.subarray(8 + n);
  const tensors = new Map<string, SafeTensorEntry>();
  let metadata: Record<string, string> = {};
  const ranges: Array<[number, number, string]> = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (!raw || typeof raw !== 'object' || Array.isArray(raw) || Object.values(raw).some((v) => typeof v !== 'string')) {
        fail('__metadata__ must be an object of strings');
      }
      metadata = raw as Record<string, string>;
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!e || typeof e !== 'object') fail(`tensor '${name}': entry is not an object`);
    if (typeof e.dtype !== 'string' || !(e.dtype in DTYPE_SIZE)) fail(`tensor '${name}': unknown dtype ${JSON.stringify(e.dtype)}`);
    if (!Array.isArray(e.shape) || e.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      fail(`tensor '${name}': shape ${JSON.stringify(e.shape)} is not a list of non-negative integers`);
    }
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((v) => Number.isSafeInteger(v) && v >= 0) || off[1] < off[0]) {
      fail(`tensor '${name}': data_offsets ${JSON.stringify(off)} must be [begin, end] with 0 ≤ begin ≤ end`);
    }
    const [begin, end] = off as [number, number];
    const dtype = e.dtype as SafeDType;
    const shape = e.shape as number[];
    const expected = shape.reduce((p, d) => p * d, 1) * DTYPE_SIZE[dtype];
    if (end - begin !== expected) {
      fail(`tensor '${name}': ${dtype} shape [${shape.join(', ')}] needs ${expected} bytes but data_offsets span ${end - begin}`);
    }
    if (end > data.byteLength) fail(`tensor '${name}': data ends at byte ${end} but the data section has ${data.byteLength}: truncated?`);
    ranges.push([begin, end, name]);
    tensors.set(name, { dtype, shape, data: data.subarray(begin, end) });
  }
  // Tensors must tile the data section exactly: no overlaps (aliasing) and no holes.
  ranges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let cursor = 0;
  for (const [begin, end, name] of ranges) {
    if (begin < cursor) fail(`tensor '${name}' overlaps the previous tensor (bytes ${begin}–${end})`);
    if (begin > cursor) fail(`hole in the data section before tensor '${name}' (bytes ${cursor}–${begin})`);
    cursor = end;
  }
  if (cursor !== data.byteLength) fail(`data section has ${data.byteLength - cursor} trailing bytes not owned by any tensor`);
  return { tensors, metadata };
}

export function serializeSafeTensors(
  tensors: Iterable<[string, { dtype: SafeDType; shape: readonly number[]; data: Uint8Array }]>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const entries = [...tensors];
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  const seen = new Set<string>();
  for (const [name, t] of entries) {
    if (name === '__metadata__' || seen.has(name)) throw new SafeTensorsError(`cannot write tensor name '${name}' (reserved or duplicate)`);
    seen.add(name);
    const expected = t.shape.reduce((p, d) => p * d, 1) * DTYPE_SIZE[t.dtype];
    if (t.data.byteLength !== expected) {
      throw new SafeTensorsError(`tensor '${name}': ${t.data.byteLength} bytes given for ${t.dtype} [${t.shape.join(', ')}] (${expected} expected)`);
    }
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + expected] };
    offset += expected;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  // Pad the header with spaces so the data section starts 8-byte aligned (as the reference writer does).
  const pad = (8 - (json.byteLength % 8)) % 8;
  if (pad) {
    const padded = new Uint8Array(json.byteLength + pad).fill(0x20);
    padded.set(json);
    json = padded;
  }
  const out = new Uint8Array(8 + json.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  let pos = 8 + json.byteLength;
  for (const [, t] of entries) {
    out.set(t.data, pos);
    pos += t.data.byteLength;
  }
  return out;
}
