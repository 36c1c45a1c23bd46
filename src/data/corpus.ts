// A tokenized corpus: all documents' token ids in one array with document offsets, and
// its binary file format (platform-neutral encode/decode; node.ts reads/writes files).

import type { Tokenizer } from './tokenizer/tokenizer.ts';
import type { TextDocument } from './documents.ts';

export interface TokenizedCorpus {
  /** Document ids, in order. */
  docIds: string[];
  /** Document d's tokens are tokens[offsets[d] .. offsets[d+1]) (no EOS stored). */
  offsets: Float64Array;
  tokens: Int32Array;
}

export class CorpusFileError extends Error {
  override name = 'CorpusFileError';
}

/** Tokenize documents (no special tokens recognised in the text; no EOS added). */
export function tokenizeDocuments(tokenizer: Tokenizer, docs: readonly TextDocument[]): TokenizedCorpus {
  const parts: number[][] = [];
  const offsets = new Float64Array(docs.length + 1);
  let n = 0;
  docs.forEach((d, i) => {
    const ids = tokenizer.encode(d.text);
    parts.push(ids);
    n += ids.length;
    offsets[i + 1] = n;
  });
  const tokens = new Int32Array(n);
  parts.forEach((p, i) => tokens.set(p, offsets[i]));
  return { docIds: docs.map((d) => d.id), offsets, tokens };
}

/** Number of tokens of document d. */
export function docLength(c: TokenizedCorpus, d: number): number {
  return c.offsets[d + 1] - c.offsets[d];
}

const MAGIC = 'WOTOK001';

/**
 * Binary token file: "WOTOK001", u32 header length, header JSON
 * ({numDocs, numTokens, dtype, docIds, meta}), zero padding to 8 bytes, offsets as
 * f64[numDocs+1], tokens as u16 (vocab ≤ 65,536) or i32, little-endian.
 */
export function encodeCorpusFile(c: TokenizedCorpus, meta: Record<string, unknown> = {}): Uint8Array {
  let maxId = 0;
  for (let i = 0; i < c.tokens.length; i++) if (c.tokens[i] > maxId) maxId = c.tokens[i];
  const dtype = maxId < 65536 ? 'u16' : 'i32';
  const header = new TextEncoder().encode(
    JSON.stringify({ numDocs: c.docIds.length, numTokens: c.tokens.length, dtype, docIds: c.docIds, meta }),
  );
  const headEnd = Math.ceil((12 + header.length) / 8) * 8;
  const offBytes = (c.docIds.length + 1) * 8;
  const tokBytes = c.tokens.length * (dtype === 'u16' ? 2 : 4);
  const out = new Uint8Array(headEnd + offBytes + tokBytes);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) out[i] = MAGIC.charCodeAt(i);
  dv.setUint32(8, header.length, true);
  out.set(header, 12);
  let o = headEnd;
  for (let i = 0; i <= c.docIds.length; i++, o += 8) dv.setFloat64(o, c.offsets[i], true);
  if (dtype === 'u16') for (let i = 0; i < c.tokens.length; i++, o += 2) dv.setUint16(o, c.tokens[i], true);
  else for (let i = 0; i < c.tokens.length; i++, o += 4) dv.setInt32(o, c.tokens[i], true);
  return out;
}

export function decodeCorpusFile(bytes: Uint8Array, name = 'token file'): { corpus: TokenizedCorpus; meta: Record<string, unknown> } {
  const bad = (why: string) => new CorpusFileError(`${name}: ${why}`);
  if (bytes.length < 12) throw bad('too short');
  for (let i = 0; i < 8; i++) if (bytes[i] !== MAGIC.charCodeAt(i)) throw bad(`bad magic (expected "${MAGIC}")`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hlen = dv.getUint32(8, true);
  if (12 + hlen > bytes.length) throw bad('header runs past the end of the file');
  let h: { numDocs: number; numTokens: number; dtype: string; docIds: string[]; meta?: Record<string, unknown> };
  try {
    h = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + hlen)));
  } catch (e) {
    throw bad(`header is not valid JSON: ${(e as Error).message}`);
  }
  if (!Number.isInteger(h.numDocs) || !Number.isInteger(h.numTokens) || !Array.isArray(h.docIds) || h.docIds.length !== h.numDocs)
    throw bad('header: numDocs/numTokens/docIds missing or inconsistent');
  if (h.dtype !== 'u16' && h.dtype !== 'i32') throw bad(`header.dtype: expected "u16" or "i32", got ${JSON.stringify(h.dtype)}`);
  const headEnd = Math.ceil((12 + hlen) / 8) * 8;
  const size = headEnd + (h.numDocs + 1) * 8 + h.numTokens * (h.dtype === 'u16' ? 2 : 4);
  if (bytes.length !== size) throw bad(`size ${bytes.length} bytes, header implies ${size} (truncated or corrupt)`);
  const offsets = new Float64Array(h.numDocs + 1);
  let o = headEnd;
  for (let i = 0; i <= h.numDocs; i++, o += 8) offsets[i] = dv.getFloat64(o, true);
  if (offsets[0] !== 0 || offsets[h.numDocs] !== h.numTokens) throw bad('offsets do not span the tokens');
  for (let i = 0; i < h.numDocs; i++) if (!(offsets[i + 1] >= offsets[i])) throw bad(`offsets decrease at document ${i}`);
  const tokens = new Int32Array(h.numTokens);
  if (h.dtype === 'u16') for (let i = 0; i < h.numTokens; i++, o += 2) tokens[i] = dv.getUint16(o, true);
  else for (let i = 0; i < h.numTokens; i++, o += 4) tokens[i] = dv.getInt32(o, true);
  return { corpus: { docIds: h.docIds, offsets, tokens }, meta: h.meta ?? {} };
}
