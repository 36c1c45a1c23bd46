// BPE training over a corpus: word counts from pre-tokenization, then greedy merges of
// the most frequent adjacent pair with incremental pair-count updates (only the words
// containing the merged pair are touched) and a lazy max-heap of pair counts.

import { BYTE_TO_CHAR, utf8Into } from './bytes.ts';
import { MAX_VOCAB, PAIR_SHIFT } from './bpe.ts';
import { TokenizerError } from './errors.ts';
import { GPT2_PATTERN, LLAMA3_PATTERN, PreTokenizer, splitBy } from './pretokenize.ts';
import { RESERVED_SPECIAL_TOKENS } from './special.ts';
import { Tokenizer, type AddedToken } from './tokenizer.ts';

export interface TrainOptions {
  /** Total vocabulary size: special tokens + 256 byte tokens + merges. */
  vocabSize: number;
  /** Pre-tokenization regex: 'llama3' (default), 'gpt2', or an Oniguruma-style pattern. */
  pattern?: 'llama3' | 'gpt2' | (string & {});
  /** Special tokens given the first ids (default: RESERVED_SPECIAL_TOKENS). */
  specialTokens?: readonly string[];
  /** Stop when the best pair occurs fewer times than this (default 2). */
  minFrequency?: number;
  /** Called every `progressEvery` merges. */
  onProgress?: (merges: number, total: number) => void;
  progressEvery?: number;
}

export interface TrainStats {
  words: number;
  uniqueWords: number;
  merges: number;
  countMs: number;
  mergeMs: number;
}

/** Pre-tokenize texts and count words. */
export function countWords(texts: Iterable<string>, pattern: string, counts = new Map<string, number>()): Map<string, number> {
  const pre = new PreTokenizer(PreTokenizer.configFor(pattern));
  const re = pre.fastRegex;
  const pieces: string[] = [];
  for (const text of texts) {
    pieces.length = 0;
    if (re) splitBy(text, re, 'Isolated', false, pieces);
    else pieces.push(...pre.split(text));
    for (const p of pieces) if (p.length > 0) counts.set(p, (counts.get(p) ?? 0) + 1);
  }
  return counts;
}

export function resolvePattern(p: TrainOptions['pattern']): string {
  return p === undefined || p === 'llama3' ? LLAMA3_PATTERN : p === 'gpt2' ? GPT2_PATTERN : p;
}

/**
 * Train a byte-level BPE tokenizer. Ids: special tokens 0..S-1, bytes S..S+255 (in byte
 * order), then one id per merge in merge order. Ties between equally frequent pairs go
 * to the pair with the smaller (left id, right id), so training is deterministic.
 */
export function trainBpe(texts: Iterable<string>, opts: TrainOptions): { tokenizer: Tokenizer; stats: TrainStats } {
  const specials = opts.specialTokens ?? RESERVED_SPECIAL_TOKENS;
  const S = specials.length;
  const minVocab = S + 256;
  if (!Number.isInteger(opts.vocabSize) || opts.vocabSize < minVocab || opts.vocabSize > MAX_VOCAB)
    throw new TokenizerError(`vocabSize must be an integer in [${minVocab}, ${MAX_VOCAB}] (specials + 256 bytes), got ${opts.vocabSize}`);
  if (new Set(specials).size !== S) throw new TokenizerError('specialTokens contains duplicates');
  const minFreq = opts.minFrequency ?? 2;
  const pattern = resolvePattern(opts.pattern);

  const t0 = performance.now();
  const counts = countWords(texts, pattern);
  const t1 = performance.now();

  // Words as symbol arrays.
  const nw = counts.size;
  const words: Int32Array[] = new Array(nw);
  const lens = new Int32Array(nw);
  const freq = new Float64Array(nw);
  let total = 0;
  {
    let buf = new Uint8Array(256);
    let w = 0;
    for (const [word, c] of counts) {
      const [b, n] = utf8Into(word, buf);
      buf = b;
      const syms = new Int32Array(n);
      for (let i = 0; i < n; i++) syms[i] = S + b[i];
      words[w] = syms;
      lens[w] = n;
      freq[w] = c;
      total += c;
      w++;
    }
  }

  // Vocabulary.
  const tokStr: string[] = [];
  const vocab = new Map<string, number>();
  specials.forEach((s, i) => {
    tokStr.push(s);
    vocab.set(s, i);
  });
  for (let b = 0; b < 256; b++) {
    const s = BYTE_TO_CHAR[b];
    if (vocab.has(s)) throw new TokenizerError(`special token ${JSON.stringify(s)} collides with a byte token`);
    tokStr.push(s);
    vocab.set(s, S + b);
  }
  const specialSet = new Set(specials);

  // Pair counts, where-index (word lists with possible duplicates), lazy heap.
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, number[]>();
  const hc: number[] = [];
  const hk: number[] = [];
  const better = (i: number, j: number) => hc[i] > hc[j] || (hc[i] === hc[j] && hk[i] < hk[j]);
  const swap = (i: number, j: number) => {
    const c = hc[i];
    hc[i] = hc[j];
    hc[j] = c;
    const k = hk[i];
    hk[i] = hk[j];
    hk[j] = k;
  };
  const push = (c: number, k: number) => {
    hc.push(c);
    hk.push(k);
    let i = hc.length - 1;
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (!better(i, up)) break;
      swap(i, up);
      i = up;
    }
  };
  const pop = () => {
    const last = hc.length - 1;
    swap(0, last);
    hc.pop();
    hk.pop();
    let i = 0;
    const n = hc.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && better(l, m)) m = l;
      if (r < n && better(r, m)) m = r;
      if (m === i) break;
      swap(i, m);
      i = m;
    }
  };
  for (let w = 0; w < nw; w++) {
    const s = words[w];
    const f = freq[w];
    for (let i = 0; i + 1 < lens[w]; i++) {
      const k = s[i] * PAIR_SHIFT + s[i + 1];
      pairCount.set(k, (pairCount.get(k) ?? 0) + f);
      let l = pairWords.get(k);
      if (l === undefined) pairWords.set(k, (l = []));
      if (l[l.length - 1] !== w) l.push(w);
    }
  }
  for (const [k, c] of pairCount) push(c, k);

  const merges: Array<[string, string]> = [];
  const seen = new Int32Array(nw).fill(-1);
  const delta = new Map<number, number>();
  const targetMerges = opts.vocabSize - vocab.size;
  const every = opts.progressEvery ?? 500;
  let stamp = 0;
  while (vocab.size < opts.vocabSize && hc.length > 0) {
    const c = hc[0];
    const key = hk[0];
    pop();
    if (pairCount.get(key) !== c) continue; // stale entry
    if (c < minFreq) break;
    const a = Math.floor(key / PAIR_SHIFT);
    const b = key - a * PAIR_SHIFT;
    const str = tokStr[a] + tokStr[b];
    if (specialSet.has(str)) {
      pairCount.delete(key); // never let merges spell a special token
      continue;
    }
    let id = vocab.get(str);
    if (id === undefined) {
      id = tokStr.length;
      tokStr.push(str);
      vocab.set(str, id);
    }
    merges.push([tokStr[a], tokStr[b]]);
    // Apply to every word that contains (a, b).
    stamp++;
    delta.clear();
    const list = pairWords.get(key)!;
    for (let li = 0; li < list.length; li++) {
      const w = list[li];
      if (seen[w] === stamp) continue;
      seen[w] = stamp;
      const s = words[w];
      const n = lens[w];
      let found = false;
      for (let i = 0; i + 1 < n; i++)
        if (s[i] === a && s[i + 1] === b) {
          found = true;
          break;
        }
      if (!found) continue;
      const f = freq[w];
      for (let i = 0; i + 1 < n; i++) {
        const k = s[i] * PAIR_SHIFT + s[i + 1];
        delta.set(k, (delta.get(k) ?? 0) - f);
      }
      let o = 0;
      for (let i = 0; i < n; ) {
        if (i + 1 < n && s[i] === a && s[i + 1] === b) {
          s[o++] = id;
          i += 2;
        } else s[o++] = s[i++];
      }
      lens[w] = o;
      for (let i = 0; i + 1 < o; i++) {
        const x = s[i];
        const y = s[i + 1];
        const k = x * PAIR_SHIFT + y;
        delta.set(k, (delta.get(k) ?? 0) + f);
        if (x === id || y === id) {
          let l = pairWords.get(k);
          if (l === undefined) pairWords.set(k, (l = []));
          if (l[l.length - 1] !== w) l.push(w);
        }
      }
    }
    for (const [k, d] of delta) {
      if (d === 0) continue;
      const nc = (pairCount.get(k) ?? 0) + d;
      if (nc <= 0) {
        pairCount.delete(k);
        pairWords.delete(k);
      } else {
        pairCount.set(k, nc);
        push(nc, k);
      }
    }
    pairCount.delete(key);
    pairWords.delete(key);
    if (opts.onProgress && merges.length % every === 0) opts.onProgress(merges.length, targetMerges);
  }
  const t2 = performance.now();

  const added: AddedToken[] = specials.map((content, id) => ({ id, content, special: true }));
  const tokenizer = Tokenizer.fromParts({ vocab, merges, addedTokens: added, preTokenizer: PreTokenizer.configFor(pattern) });
  return {
    tokenizer,
    stats: { words: total, uniqueWords: nw, merges: merges.length, countMs: t1 - t0, mergeMs: t2 - t1 },
  };
}
