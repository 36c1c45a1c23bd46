import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CorpusFileError,
  IGNORE_INDEX,
  PackedLoader,
  PackingError,
  Sfc32,
  decodeCorpusFile,
  encodeCorpusFile,
  type PackOptions,
  type PackedBatch,
  type TokenizedCorpus,
} from '../../src/data/index.ts';
import { loadCorpusFile, prepareBrown, saveCorpusFile } from '../../src/data/node.ts';

const EOS = 1;
const BOS = 2;
/** Token value encoding (doc, position) so every emitted token can be traced. */
const tokenOf = (d: number, p: number) => 10 + d * 10000 + p;

function syntheticCorpus(lengths: number[]): TokenizedCorpus {
  const offsets = new Float64Array(lengths.length + 1);
  lengths.forEach((n, i) => (offsets[i + 1] = offsets[i] + n));
  const tokens = new Int32Array(offsets[lengths.length]);
  lengths.forEach((n, d) => {
    for (let p = 0; p < n; p++) tokens[offsets[d] + p] = tokenOf(d, p);
  });
  return { docIds: lengths.map((_, i) => `doc${i}`), offsets, tokens };
}

/** Virtual sequence of document d: [BOS?] tokens EOS. */
function virtualDoc(c: TokenizedCorpus, d: number, bos: boolean): number[] {
  const out = bos ? [BOS] : [];
  for (let i = c.offsets[d]; i < c.offsets[d + 1]; i++) out.push(c.tokens[i]);
  out.push(EOS);
  return out;
}

/** Check one batch's invariants; returns its sequences as token arrays with their doc. */
function checkBatch(b: PackedBatch, opts: PackOptions, corpus: TokenizedCorpus): Array<{ doc: number; at: number; ids: number[] }> {
  const T = b.ids.length;
  expect(b.targets.length).toBe(T);
  expect(b.positions.length).toBe(T);
  expect(T).toBeLessThanOrEqual(opts.tokensPerBatch);
  expect(b.cuSeqlens[0]).toBe(0);
  expect(b.cuSeqlens[b.cuSeqlens.length - 1]).toBe(T);
  expect(b.docs.length).toBe(b.cuSeqlens.length - 1);
  const seqs = [];
  let maxLen = 0;
  let nt = 0;
  for (let k = 0; k + 1 < b.cuSeqlens.length; k++) {
    const a = b.cuSeqlens[k];
    const e = b.cuSeqlens[k + 1];
    expect(e).toBeGreaterThan(a);
    expect(e - a).toBeLessThanOrEqual(opts.maxSeqLen ?? opts.tokensPerBatch);
    maxLen = Math.max(maxLen, e - a);
    const doc = b.docs[k];
    const v = virtualDoc(corpus, doc, opts.bosId !== undefined);
    for (let i = a; i < e; i++) {
      expect(b.positions[i]).toBe(i - a); // restart at every sequence
      // ids come from this sequence's document only
      const id = b.ids[i];
      if (id !== EOS && id !== BOS) expect(Math.floor((id - 10) / 10000)).toBe(doc);
      // target is the next token of the same document, never another document's
      const t = b.targets[i];
      if (t !== IGNORE_INDEX) {
        nt++;
        if (i + 1 < e) expect(t).toBe(b.ids[i + 1]);
        else {
          expect(id).not.toBe(EOS);
          if (t !== EOS && t !== BOS) expect(Math.floor((t - 10) / 10000)).toBe(doc);
        }
      } else {
        // -100 only at a document's end (EOS) or, with chunkEndTarget 'ignore', at a cut
        if (opts.chunkEndTarget !== 'ignore') expect(id).toBe(EOS);
        else expect(id === EOS || i + 1 === e).toBe(true);
      }
      if (id === EOS) expect(t).toBe(IGNORE_INDEX);
    }
    // the sequence is the document's slice at docOffsets[k]
    const at = b.docOffsets[k];
    expect([...b.ids.subarray(a, e)]).toEqual(v.slice(at, at + e - a));
    // the target at a cut is the document's next token; -100 only after its EOS
    const last = b.targets[e - 1];
    if (opts.chunkEndTarget !== 'ignore') expect(last).toBe(at + e - a < v.length ? v[at + e - a] : IGNORE_INDEX);
    seqs.push({ doc, at, ids: [...b.ids.subarray(a, e)] });
  }
  expect(b.maxSeqlen).toBe(maxLen);
  expect(b.numTargets).toBe(nt);
  return seqs;
}

const LENGTHS = (() => {
  const rng = Sfc32.fromSeed(99);
  const ls = Array.from({ length: 60 }, () => 1 + rng.below(90));
  ls[5] = 0; // empty document: skipped
  ls[7] = 400; // longer than maxSeqLen: split
  ls[8] = 128; // exactly maxSeqLen - 1 tokens + EOS = maxSeqLen
  return ls;
})();
const corpus = syntheticCorpus(LENGTHS);
const nonEmpty = LENGTHS.filter((n) => n > 0).length;
const totalTokens = LENGTHS.reduce((a, b) => a + b, 0);

describe('PackedLoader', () => {
  for (const bos of [false, true])
    it(`packs documents without crossing boundaries or wasting tokens (bos=${bos})`, () => {
      const opts: PackOptions = { tokensPerBatch: 256, maxSeqLen: 129, eosId: EOS, bosId: bos ? BOS : undefined, seed: 5 };
      const loader = new PackedLoader(corpus, opts);
      const extra = nonEmpty * (bos ? 2 : 1);
      expect(loader.tokensPerEpoch).toBe(totalTokens + extra);
      const batches = [...loader.epochBatches()];
      expect(batches.length).toBe(Math.ceil((totalTokens + extra) / 256));
      expect(batches.length).toBe(loader.batchesPerEpoch);
      // every batch full except the last of the epoch
      batches.slice(0, -1).forEach((b) => expect(b.ids.length).toBe(256));
      expect(batches.at(-1)!.lastInEpoch).toBe(true);
      expect(batches.slice(0, -1).every((b) => !b.lastInEpoch)).toBe(true);
      // sum of batch sizes = total tokens + eos (+ bos) count
      expect(batches.reduce((a, b) => a + b.ids.length, 0)).toBe(totalTokens + extra);
      // the pieces of each document cover it exactly once
      const cover = new Map<number, number[]>();
      let eosTargets = 0;
      for (const b of batches) {
        for (const s of checkBatch(b, opts, corpus)) {
          const c = cover.get(s.doc) ?? new Array(virtualDoc(corpus, s.doc, bos).length).fill(0);
          for (let i = 0; i < s.ids.length; i++) c[s.at + i]++;
          cover.set(s.doc, c);
        }
        eosTargets += [...b.targets].filter((t) => t === IGNORE_INDEX).length;
      }
      expect(eosTargets).toBe(nonEmpty); // exactly one -100 per document
      expect(cover.size).toBe(nonEmpty);
      for (const c of cover.values()) expect(c.every((x) => x === 1)).toBe(true);
      // the long document was split into chunks of at most maxSeqLen
      expect(batches.some((b) => b.docs.includes(7))).toBe(true);
    });

  it("chunkEndTarget 'ignore' puts -100 at every cut", () => {
    const opts: PackOptions = { tokensPerBatch: 200, maxSeqLen: 64, eosId: EOS, seed: 1, chunkEndTarget: 'ignore' };
    const batches = [...new PackedLoader(corpus, opts).epochBatches()];
    for (const b of batches) {
      checkBatch(b, opts, corpus);
      for (let k = 1; k < b.cuSeqlens.length; k++) expect(b.targets[b.cuSeqlens[k] - 1]).toBe(IGNORE_INDEX);
    }
  });

  it('is deterministic given the seed, reshuffles every epoch, and differs across seeds', () => {
    const opts: PackOptions = { tokensPerBatch: 300, maxSeqLen: 100, eosId: EOS, seed: 42 };
    const a = new PackedLoader(corpus, opts);
    const b = new PackedLoader(corpus, opts);
    const ea = [...a.epochBatches()];
    const eb = [...b.epochBatches()];
    expect(eb.map((x) => [...x.ids])).toEqual(ea.map((x) => [...x.ids]));
    const e2 = [...a.epochBatches()];
    expect(e2[0].epoch).toBe(1);
    expect(e2.map((x) => [...x.docs])).not.toEqual(ea.map((x) => [...x.docs]));
    const c = [...new PackedLoader(corpus, { ...opts, seed: 43 }).epochBatches()];
    expect(c.map((x) => [...x.docs])).not.toEqual(ea.map((x) => [...x.docs]));
    // no shuffle: documents in corpus order
    const plain = [...new PackedLoader(corpus, { ...opts, shuffle: false }).epochBatches()];
    const order = plain.flatMap((x) => [...x.docs]).filter((d, i, arr) => i === 0 || arr[i - 1] !== d);
    expect(order).toEqual(LENGTHS.map((n, d) => (n > 0 ? d : -1)).filter((d) => d >= 0));
  });

  for (const tail of ['emit', 'drop', 'carry'] as const)
    it(`restored state continues at exactly the next batch (tail=${tail})`, () => {
      const opts: PackOptions = { tokensPerBatch: 173, maxSeqLen: 90, eosId: EOS, seed: 7, tail };
      const ref = new PackedLoader(corpus, opts);
      const perEpoch = Math.ceil(ref.batchesPerEpoch);
      const N = perEpoch * 3 + 2;
      const all = Array.from({ length: N }, () => ref.next());
      if (tail === 'carry') all.forEach((b) => expect(b.ids.length).toBe(173));
      if (tail === 'drop') all.forEach((b) => expect(b.ids.length).toBe(173));
      if (tail === 'emit') expect(all.filter((b) => b.ids.length < 173).length).toBe(3);
      for (const k of [0, 1, perEpoch - 1, perEpoch, perEpoch + 3, 2 * perEpoch + 1]) {
        const run = new PackedLoader(corpus, opts);
        for (let i = 0; i < k; i++) run.next();
        const saved = JSON.stringify(run.state());
        const restored = new PackedLoader(corpus, opts);
        restored.restore(JSON.parse(saved));
        for (let i = k; i < Math.min(N, k + perEpoch + 2); i++) {
          const b = restored.next();
          expect(b.index).toBe(i);
          expect(b.epoch).toBe(all[i].epoch);
          expect([...b.ids]).toEqual([...all[i].ids]);
          expect([...b.targets]).toEqual([...all[i].targets]);
          expect([...b.positions]).toEqual([...all[i].positions]);
          expect(b.cuSeqlens).toEqual(all[i].cuSeqlens);
        }
      }
    });

  it('rejects bad options and foreign state with clear errors', () => {
    expect(() => new PackedLoader(corpus, { tokensPerBatch: 0, eosId: EOS })).toThrow(/tokensPerBatch must be a positive integer/);
    expect(() => new PackedLoader(corpus, { tokensPerBatch: 64, maxSeqLen: 1, eosId: EOS })).toThrow(/maxSeqLen must be an integer/);
    expect(() => new PackedLoader(corpus, { tokensPerBatch: 512, maxSeqLen: 256, eosId: EOS, splitLongDocuments: false })).toThrow(
      /document "doc7" has 401 tokens \(with BOS\/EOS\), more than maxSeqLen 256, and splitLongDocuments is off/,
    );
    expect(() => new PackedLoader(syntheticCorpus([0, 0]), { tokensPerBatch: 8, eosId: EOS })).toThrow(/no non-empty documents/);
    const a = new PackedLoader(corpus, { tokensPerBatch: 64, eosId: EOS, seed: 1 });
    const b = new PackedLoader(corpus, { tokensPerBatch: 64, eosId: EOS, seed: 2 });
    expect(() => b.restore(a.state())).toThrow(PackingError);
    expect(() => b.restore(a.state())).toThrow(/another corpus or options/);
    expect(() => a.restore({ ...a.state(), cursor: 10_000 })).toThrow(/cursor 10000 out of range/);
    expect(() => a.restore({ ...a.state(), rngState: [1, 2, 3] as never })).toThrow(/rngState/);
    expect(() => a.restore({ ...a.state(), version: 2 as never })).toThrow(/unsupported state version/);
  });
});

describe('token files and the Brown corpus', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'webomni-pack-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('token files round-trip and reject corruption', () => {
    const path = join(dir, 'x.tokens');
    saveCorpusFile(path, corpus, { note: 'hi' });
    const { corpus: back, meta } = loadCorpusFile(path);
    expect(meta).toEqual({ note: 'hi' });
    expect(back.docIds).toEqual(corpus.docIds);
    expect([...back.offsets]).toEqual([...corpus.offsets]);
    expect([...back.tokens]).toEqual([...corpus.tokens]);
    const big = { ...corpus, tokens: corpus.tokens.map((t) => t + 100000) };
    expect([...decodeCorpusFile(encodeCorpusFile(big)).corpus.tokens]).toEqual([...big.tokens]); // i32 path
    const bytes = readFileSync(path);
    writeFileSync(join(dir, 'cut.tokens'), bytes.subarray(0, bytes.length - 2));
    expect(() => loadCorpusFile(join(dir, 'cut.tokens'))).toThrow(/cut\.tokens: size .* \(truncated or corrupt\)/);
    expect(() => decodeCorpusFile(new Uint8Array(20))).toThrow(CorpusFileError);
    expect(() => loadCorpusFile(join(dir, 'nope.tokens'))).toThrow(/token file not found/);
  });

  it('prepares Brown: trains, caches, splits by document, round-trips real text, packs', () => {
    const cacheDir = join(dir, 'cache');
    const first = prepareBrown({ cacheDir, vocabSize: 1024 });
    expect(first.cached).toEqual({ tokenizer: false, tokens: false });
    expect(first.train.docIds.length + first.val.docIds.length).toBe(500);
    const trainIds = new Set(first.train.docIds);
    expect(first.val.docIds.every((id) => !trainIds.has(id))).toBe(true);
    expect(first.tokenizer.vocabSize).toBe(1024);
    // ~3 chars per token at vocab 1024 on English
    const tpc = first.train.tokens.length / first.chars.train;
    expect(tpc).toBeGreaterThan(0.25);
    expect(tpc).toBeLessThan(0.45);
    const again = prepareBrown({ cacheDir, vocabSize: 1024 });
    expect(again.cached).toEqual({ tokenizer: true, tokens: true });
    expect(Buffer.from(again.train.tokens.buffer).equals(Buffer.from(first.train.tokens.buffer))).toBe(true);
    expect(Buffer.from(again.val.offsets.buffer).equals(Buffer.from(first.val.offsets.buffer))).toBe(true);
    expect(again.train.tokens.length).toBe(first.train.tokens.length);
    // decoding a document's cached tokens gives back its text
    const d0 = first.tokenizer.decode(first.val.tokens.subarray(first.val.offsets[0], first.val.offsets[1]));
    expect(d0.length).toBeGreaterThan(5000);
    expect(first.tokenizer.encode(d0)).toEqual([...first.val.tokens.subarray(first.val.offsets[0], first.val.offsets[1])]);
    // pack the validation split: long Brown texts are split into maxSeqLen chunks
    const opts: PackOptions = { tokensPerBatch: 4096, maxSeqLen: 1024, eosId: first.tokenizer.eosId!, shuffle: false };
    const loader = new PackedLoader(first.val, opts);
    let sum = 0;
    let ignored = 0;
    for (const b of loader.epochBatches()) {
      sum += b.ids.length;
      ignored += b.targets.filter((t) => t === IGNORE_INDEX).length;
      for (let k = 0; k + 1 < b.cuSeqlens.length; k++) expect(b.cuSeqlens[k + 1] - b.cuSeqlens[k]).toBeLessThanOrEqual(1024);
      for (let i = 0; i < b.ids.length; i++) if (b.targets[i] === IGNORE_INDEX) expect(b.ids[i]).toBe(first.tokenizer.eosId);
    }
    expect(sum).toBe(first.val.tokens.length + first.val.docIds.length);
    expect(ignored).toBe(first.val.docIds.length);
  });
});
