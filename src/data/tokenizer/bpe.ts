// The byte-level BPE model: vocabulary, ranked merges, and word encoding with a cache.

import { BYTE_TO_CHAR, bytesToTokenString, utf8Into } from './bytes.ts';
import { TokenizerError } from './errors.ts';

/** Pair key for two token ids (each < 2^21). */
export const PAIR_SHIFT = 2 ** 21;
export const MAX_VOCAB = PAIR_SHIFT;
export const pairKey = (a: number, b: number): number => a * PAIR_SHIFT + b;

export interface BpeOptions {
  /** If the whole word is a vocabulary token, emit it without merging (Llama-3 sets this). */
  ignoreMerges?: boolean;
  /** Token used for bytes missing from the vocabulary; without it such bytes throw. */
  unkToken?: string | null;
  /** Maximum number of cached words (default 65,536; 0 disables the cache). */
  cacheSize?: number;
}

export class BpeModel {
  readonly vocab: ReadonlyMap<string, number>;
  readonly idToToken: readonly (string | undefined)[];
  readonly merges: ReadonlyArray<readonly [string, string]>;
  readonly ignoreMerges: boolean;
  readonly unkToken: string | null;
  private readonly unkId: number;
  private readonly mergeRank = new Map<number, number>();
  private readonly mergeResult: Int32Array;
  private readonly byteId = new Int32Array(256);
  private cache = new Map<string, Int32Array>();
  private readonly cacheSize: number;
  private buf: Uint8Array<ArrayBuffer> = new Uint8Array(256);

  constructor(vocab: Map<string, number>, merges: Array<readonly [string, string]>, opts: BpeOptions = {}, where = 'model') {
    this.vocab = vocab;
    const idToToken: (string | undefined)[] = [];
    for (const [tok, id] of vocab) {
      if (!Number.isInteger(id) || id < 0 || id >= MAX_VOCAB) throw new TokenizerError(`${where}.vocab: token ${JSON.stringify(tok)} has invalid id ${id}`);
      if (idToToken[id] !== undefined) throw new TokenizerError(`${where}.vocab: id ${id} is used by both ${JSON.stringify(idToToken[id])} and ${JSON.stringify(tok)}`);
      idToToken[id] = tok;
    }
    this.idToToken = idToToken;
    this.merges = merges;
    this.ignoreMerges = opts.ignoreMerges ?? false;
    this.unkToken = opts.unkToken ?? null;
    this.unkId = this.unkToken !== null ? (vocab.get(this.unkToken) ?? -1) : -1;
    if (this.unkToken !== null && this.unkId < 0) throw new TokenizerError(`${where}.unk_token: ${JSON.stringify(this.unkToken)} is not in the vocabulary`);
    this.cacheSize = opts.cacheSize ?? 65536;
    this.mergeResult = new Int32Array(merges.length);
    merges.forEach(([a, b], rank) => {
      const ia = vocab.get(a);
      const ib = vocab.get(b);
      const ic = vocab.get(a + b);
      if (ia === undefined || ib === undefined)
        throw new TokenizerError(`${where}.merges[${rank}]: ${JSON.stringify(ia === undefined ? a : b)} is not in the vocabulary`);
      if (ic === undefined) throw new TokenizerError(`${where}.merges[${rank}]: merged token ${JSON.stringify(a + b)} is not in the vocabulary`);
      const k = pairKey(ia, ib);
      if (!this.mergeRank.has(k)) {
        this.mergeRank.set(k, rank);
        this.mergeResult[rank] = ic;
      }
    });
    for (let b = 0; b < 256; b++) this.byteId[b] = vocab.get(BYTE_TO_CHAR[b]) ?? -1;
  }

  get size(): number {
    return this.idToToken.length;
  }

  /** Clear the word cache. */
  clearCache(): void {
    this.cache = new Map();
  }

  /** Token ids for one pre-tokenized piece (appended to out). */
  encodePiece(piece: string, out: number[]): void {
    const hit = this.cache.get(piece);
    if (hit !== undefined) {
      for (let i = 0; i < hit.length; i++) out.push(hit[i]);
      return;
    }
    const [buf, n] = utf8Into(piece, this.buf);
    this.buf = buf;
    const ids = this.encodeBytesWord(buf, 0, n);
    if (this.cacheSize > 0 && piece.length <= 256) {
      if (this.cache.size >= this.cacheSize) this.cache = new Map();
      this.cache.set(piece, ids);
    }
    for (let i = 0; i < ids.length; i++) out.push(ids[i]);
  }

  /** BPE over raw bytes[start, end) treated as one word. */
  encodeBytesWord(bytes: Uint8Array, start: number, end: number): Int32Array {
    const n = end - start;
    if (this.ignoreMerges) {
      const whole = this.vocab.get(bytesToTokenString(bytes, start, end));
      if (whole !== undefined) return Int32Array.of(whole);
    }
    const syms = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const b = bytes[start + i];
      let id = this.byteId[b];
      if (id < 0) {
        if (this.unkId < 0) throw new TokenizerError(`byte 0x${b.toString(16).padStart(2, '0')} has no token in the vocabulary and there is no unk_token`);
        id = this.unkId;
      }
      syms[i] = id;
    }
    return n > 48 ? this.mergeLong(syms) : this.mergeShort(syms);
  }

  /** Quadratic merge loop; fastest for ordinary words. */
  private mergeShort(syms: Int32Array): Int32Array {
    let len = syms.length;
    const rank = this.mergeRank;
    while (len > 1) {
      let best = Infinity;
      let bestI = -1;
      for (let i = 0; i < len - 1; i++) {
        const r = rank.get(syms[i] * PAIR_SHIFT + syms[i + 1]);
        if (r !== undefined && r < best) {
          best = r;
          bestI = i;
        }
      }
      if (bestI < 0) break;
      const a = syms[bestI];
      const b = syms[bestI + 1];
      const c = this.mergeResult[best];
      let w = bestI;
      for (let i = bestI; i < len; ) {
        if (i + 1 < len && syms[i] === a && syms[i + 1] === b) {
          syms[w++] = c;
          i += 2;
        } else syms[w++] = syms[i++];
      }
      len = w;
    }
    return len === syms.length ? syms : syms.slice(0, len);
  }

  /**
   * Heap-based merging for long words (O(n log n)): a doubly linked list of symbols and a
   * min-heap of (rank, position) candidates with lazy invalidation. Lowest rank first,
   * leftmost first among equal ranks, which is the same order as mergeShort.
   */
  private mergeLong(syms: Int32Array): Int32Array {
    const n = syms.length;
    const prev = new Int32Array(n);
    const next = new Int32Array(n);
    const alive = new Uint8Array(n).fill(1);
    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    const hr: number[] = [];
    const hp: number[] = [];
    const less = (i: number, j: number) => hr[i] < hr[j] || (hr[i] === hr[j] && hp[i] < hp[j]);
    const swap = (i: number, j: number) => {
      const r = hr[i];
      hr[i] = hr[j];
      hr[j] = r;
      const p = hp[i];
      hp[i] = hp[j];
      hp[j] = p;
    };
    const push = (r: number, p: number) => {
      hr.push(r);
      hp.push(p);
      let i = hr.length - 1;
      while (i > 0) {
        const up = (i - 1) >> 1;
        if (!less(i, up)) break;
        swap(i, up);
        i = up;
      }
    };
    const pop = () => {
      const last = hr.length - 1;
      swap(0, last);
      hr.pop();
      hp.pop();
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < hr.length && less(l, m)) m = l;
        if (r < hr.length && less(r, m)) m = r;
        if (m === i) break;
        swap(i, m);
        i = m;
      }
    };
    const consider = (i: number) => {
      const j = next[i];
      if (i < 0 || j < 0) return;
      const r = this.mergeRank.get(syms[i] * PAIR_SHIFT + syms[j]);
      if (r !== undefined) push(r, i);
    };
    for (let i = 0; i < n - 1; i++) consider(i);
    while (hr.length > 0) {
      const r = hr[0];
      const i = hp[0];
      pop();
      const j = next[i];
      if (!alive[i] || j < 0 || this.mergeRank.get(syms[i] * PAIR_SHIFT + syms[j]) !== r) continue;
      syms[i] = this.mergeResult[r];
      alive[j] = 0;
      next[i] = next[j];
      if (next[j] >= 0) prev[next[j]] = i;
      if (prev[i] >= 0) consider(prev[i]);
      consider(i);
    }
    const out: number[] = [];
    for (let i = 0; i >= 0; i = next[i]) out.push(syms[i]);
    return Int32Array.from(out);
  }
}
