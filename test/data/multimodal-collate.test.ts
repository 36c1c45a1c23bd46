import { describe, expect, it } from 'vitest';
import {
  MultimodalLoader,
  parseManifest,
  SampleError,
  tokenSources,
  type ManifestSample,
  type MediaInput,
  type MediaLoader,
  type MultimodalBatch,
  type MultimodalLoaderOptions,
} from '../../src/data/multimodal/index.ts';
import { SPECIAL_IDS } from '../../src/data/tokenizer/special.ts';

// A character tokenizer (id = code point + 100) keeps expected ids easy to write down.
const tok = { encode: (t: string) => [...t].map((c) => c.codePointAt(0)! + 100) };
const enc = tok.encode;
// Fake media: an image's placeholder count is in its name ("img3.png" → 3), audio has
// 100 samples per placeholder ("a5.wav" → 500 samples → 5 tokens).
const media: MediaLoader = {
  load(seg, path): MediaInput {
    const n = Number(/(\d+)\.\w+$/.exec(seg.path)![1]);
    if (seg.path.startsWith('broken')) throw new Error(`cannot decode ${path}`);
    if (seg.type === 'image') return { kind: 'image', data: new Float32Array(n), channels: 1, height: 1, width: n, sourceHeight: 1, sourceWidth: n };
    return { kind: 'audio', samples: new Float32Array(n * 100), sampleRate: 16000, sourceSampleRate: 16000, seconds: (n * 100) / 16000 };
  },
};
const tokenCount = (m: string, x: MediaInput) => (m === 'image' && x.kind === 'image' ? x.width : x.kind === 'audio' ? x.samples.length / 100 : NaN);
const S = SPECIAL_IDS;

const manifest = (lines: object[], file = 'set/m.jsonl') => parseManifest(lines.map((l) => JSON.stringify(l)).join('\n'), { file });
const loader = (samples: ManifestSample[], o: Partial<MultimodalLoaderOptions> = {}) =>
  new MultimodalLoader(samples, { tokenizer: tok, media, tokenCount, tokensPerBatch: 64, shuffle: false, ...o });

/** Invariants every batch must satisfy. */
function checkBatch(b: MultimodalBatch, T: number) {
  const n = b.ids.length;
  expect(b.numTokens).toBe(n);
  expect(n).toBeLessThanOrEqual(T);
  expect(b.cuSeqlens[0]).toBe(0);
  expect(b.cuSeqlens[b.cuSeqlens.length - 1]).toBe(n);
  expect(b.seqSources.length).toBe(b.cuSeqlens.length - 1);
  let targets = 0;
  for (let q = 0; q + 1 < b.cuSeqlens.length; q++) {
    const [a, e] = [b.cuSeqlens[q], b.cuSeqlens[q + 1]];
    expect(e).toBeGreaterThan(a);
    for (let i = a; i < e; i++) expect(b.positions[i]).toBe(i - a);
    expect(b.targets[e - 1]).toBe(-100); // nothing crosses a sample boundary
    for (let i = a; i < e - 1; i++) if (b.targets[i] !== -100) expect(b.targets[i]).toBe(b.ids[i + 1]);
  }
  for (const t of b.targets) if (t !== -100) targets++;
  expect(b.numTargets).toBe(targets);
  expect(Object.values(b.lossTokensBySource).reduce((x, y) => x + y, 0)).toBe(targets);
  const isMarker = new Set<number>([S.image, S.audio, S.imageStart, S.imageEnd, S.audioStart, S.audioEnd]);
  let covered = 0;
  for (const m of b.media) {
    const ph = m.modality === 'image' ? S.image : S.audio;
    expect(b.ids[m.start - 1]).toBe(m.modality === 'image' ? S.imageStart : S.audioStart);
    expect(b.ids[m.start + m.length]).toBe(m.modality === 'image' ? S.imageEnd : S.audioEnd);
    for (let i = m.start; i < m.start + m.length; i++) {
      expect(b.ids[i]).toBe(ph);
      expect(b.targets[i]).toBe(-100);
    }
    expect(b.targets[m.start - 1]).toBe(-100);
    expect(m.start).toBeGreaterThanOrEqual(b.cuSeqlens[m.seq]);
    expect(m.start + m.length).toBeLessThan(b.cuSeqlens[m.seq + 1]);
    covered += m.length;
  }
  expect(b.ids.filter((id) => id === S.image || id === S.audio).length).toBe(covered);
  // No target ever predicts a marker or placeholder.
  for (const t of b.targets) if (t !== -100) expect(isMarker.has(t)).toBe(false);
}

describe('multimodal collator', () => {
  it('builds a caption sample: placeholder span, targets only on the target text and EOS', async () => {
    const L = loader(manifest([{ id: 'c1', source: 'fashion-caption', segments: [{ image: 'img3.png' }, { text: 'a coat', target: true }] }]));
    const b = await L.next();
    const text = enc('a coat');
    expect([...b.ids]).toEqual([S.imageStart, S.image, S.image, S.image, S.imageEnd, ...text, S.eos]);
    expect([...b.targets]).toEqual([-100, -100, -100, -100, text[0], ...text.slice(1), S.eos, -100]);
    expect([...b.positions]).toEqual([...Array(12).keys()]);
    expect(b.cuSeqlens).toEqual([0, 12]);
    expect(b.media.map((m) => [m.modality, m.start, m.length, m.seq, m.path, m.resolvedPath, m.sampleId])).toEqual([['image', 1, 3, 0, 'img3.png', 'set/img3.png', 'c1']]);
    expect(b.images).toHaveLength(1);
    expect(b.audio).toHaveLength(0);
    expect(b.tokensByModality).toEqual({ text: 7, image: 5, audio: 0 });
    expect(b.lossTokensBySource).toEqual({ 'fashion-caption': 7 });
    expect(b.lastInEpoch).toBe(true);
    checkBatch(b, 64);
  });

  it('non-target text and media carry no loss; loss modes "all" and "none"; BOS', async () => {
    const samples = manifest([
      { id: 'p', source: 'qa', segments: [{ text: 'Q:' }, { audio: 'a2.wav' }, { text: 'A:' }, { text: 'hat', target: true }] },
      { id: 'all', source: 'txt', segments: [{ text: 'ab' }, { text: 'c', target: false }], loss: 'all' },
      { id: 'none', source: 'txt', segments: [{ text: 'xy', target: true }], loss: 'none' },
      { id: 'mid', source: 'qa', segments: [{ text: 'k', target: true }, { image: 'img1.png' }] },
    ]);
    const b = await loader(samples, { bos: true }).next();
    checkBatch(b, 64);
    const q = enc('Q:'),
      a = enc('A:'),
      h = enc('hat');
    const seq0 = [S.bos, ...q, S.audioStart, S.audio, S.audio, S.audioEnd, ...a, ...h, S.eos];
    const t0 = [...Array(1 + 2 + 4 + 1).fill(-100), h[0], h[1], h[2], S.eos, -100];
    const seq1 = [S.bos, ...enc('abc'), S.eos];
    const t1 = [...enc('abc'), S.eos, -100];
    const seq2 = [S.bos, ...enc('xy'), S.eos];
    const t2 = [-100, -100, -100, -100];
    // A target followed by media: EOS is not a loss token (the last segment is not loss-bearing).
    const seq3 = [S.bos, ...enc('k'), S.imageStart, S.image, S.imageEnd, S.eos];
    const t3 = [enc('k')[0], -100, -100, -100, -100, -100];
    expect([...b.ids]).toEqual([...seq0, ...seq1, ...seq2, ...seq3]);
    expect([...b.targets]).toEqual([...t0, ...t1, ...t2, ...t3]);
    expect(b.cuSeqlens).toEqual([0, 13, 18, 22, 28]);
    expect(b.sourceNames).toEqual(['qa', 'txt']);
    expect([...b.seqSources]).toEqual([0, 1, 1, 0]);
    expect([...tokenSources(b)]).toEqual([...Array(13).fill(0), ...Array(9).fill(1), ...Array(6).fill(0)]);
    expect(b.lossTokensBySource).toEqual({ qa: 4 + 1, txt: 4 });
    expect(b.media.map((m) => [m.modality, m.start, m.length, m.seq])).toEqual([
      ['audio', 4, 2, 0],
      ['image', 22 + 3, 1, 3],
    ]);
  });

  // A mixed dataset: 30 samples of varying size and modality.
  const mixed = () =>
    manifest(
      Array.from({ length: 30 }, (_, i) =>
        i % 3 === 0
          ? { id: `cap${i}`, source: 'caption', segments: [{ image: `img${1 + (i % 7)}.png` }, { text: `item ${i}`, target: true }] }
          : i % 3 === 1
            ? { id: `sp${i}`, source: 'speech', segments: [{ audio: `a${2 + (i % 5)}.wav` }, { text: `w${i}`, target: true }] }
            : { id: `tx${i}`, source: 'text', segments: [{ text: 'x'.repeat(3 + (i % 11)), target: true }] },
      ),
    );

  it('respects the budget, takes every sample once per epoch, in a seeded order', async () => {
    const samples = mixed();
    const T = 40;
    const L = loader(samples, { tokensPerBatch: T, shuffle: true, seed: 7 });
    const lengths = new Map<string, number>();
    const seen: string[] = [];
    let prev: MultimodalBatch | null = null;
    for await (const b of L.epochBatches()) {
      checkBatch(b, T);
      expect(b.epoch).toBe(0);
      b.samples.forEach((s, q) => {
        seen.push(s.id);
        lengths.set(s.id, b.cuSeqlens[q + 1] - b.cuSeqlens[q]);
      });
      // Greedy: the first sample of this batch did not fit into the previous one.
      if (prev) expect(prev.numTokens + (b.cuSeqlens[1] - b.cuSeqlens[0])).toBeGreaterThan(T);
      prev = b;
    }
    expect([...seen].sort()).toEqual(samples.map((s) => s.id).sort());
    expect(seen).not.toEqual(samples.map((s) => s.id)); // shuffled
    const again: string[] = [];
    for await (const b of loader(samples, { tokensPerBatch: T, shuffle: true, seed: 7 }).epochBatches()) again.push(...b.samples.map((s) => s.id));
    expect(again).toEqual(seen);
    const other: string[] = [];
    for await (const b of loader(samples, { tokensPerBatch: T, shuffle: true, seed: 8 }).epochBatches()) other.push(...b.samples.map((s) => s.id));
    expect(other).not.toEqual(seen);
    // Next epoch: a different order of the same samples.
    const e1: string[] = [];
    for await (const b of L.epochBatches()) {
      expect(b.epoch).toBe(1);
      e1.push(...b.samples.map((s) => s.id));
    }
    expect([...e1].sort()).toEqual([...seen].sort());
    expect(e1).not.toEqual(seen);
    // Sample length = text + media tokens + EOS, e.g. cap0: "item 0" (6) + img1 (1 + 2 markers) + EOS.
    expect(lengths.get('cap0')).toBe(6 + 3 + 1);
    expect(lengths.get('sp1')).toBe(2 + (2 + (1 % 5) + 2) + 1);
  });

  it('repeat: a source\'s samples appear k times per epoch; bad repeat options are refused', async () => {
    const samples = mixed();
    const L = loader(samples, { tokensPerBatch: 40, shuffle: true, seed: 7, repeat: { speech: 3 } });
    const count = new Map<string, number>();
    for await (const b of L.epochBatches()) for (const s of b.samples) count.set(s.id, (count.get(s.id) ?? 0) + 1);
    for (const s of samples) expect(count.get(s.id)).toBe(s.source === 'speech' ? 3 : 1);
    // Restoring mid-epoch works with repeats (cursor ranges over the longer epoch).
    const A = loader(samples, { tokensPerBatch: 40, shuffle: true, seed: 7, repeat: { speech: 3 } });
    for (let i = 0; i < 5; i++) await A.next();
    const st = A.state();
    const want = await A.next();
    const B = loader(samples, { tokensPerBatch: 40, shuffle: true, seed: 7, repeat: { speech: 3 } });
    B.restore(st);
    expect([...(await B.next()).ids]).toEqual([...want.ids]);
    expect(() => loader(samples, { tokensPerBatch: 40, shuffle: true, seed: 7 }).restore(st)).toThrow(/state belongs to other samples or options/);
    expect(() => loader(samples, { repeat: { podcasts: 2 } })).toThrow(/repeat: unknown source 'podcasts' \(the samples' sources are caption, speech, text\)/);
    expect(() => loader(samples, { repeat: { speech: 1.5 } })).toThrow(/repeat\.speech must be an integer from 1 to 1000, got 1\.5/);
  });

  it('restores the exact stream from a saved state (across epochs)', async () => {
    const samples = mixed();
    const mk = () => loader(samples, { tokensPerBatch: 37, shuffle: true, seed: 3 });
    const A = mk();
    for (let i = 0; i < 9; i++) await A.next();
    const state = JSON.parse(JSON.stringify(A.state()));
    const rest: MultimodalBatch[] = [];
    for (let i = 0; i < 25; i++) rest.push(await A.next());
    expect(new Set(rest.map((b) => b.epoch)).size).toBeGreaterThan(1);
    const B = mk();
    B.restore(state);
    for (const want of rest) {
      const got = await B.next();
      expect([...got.ids]).toEqual([...want.ids]);
      expect([...got.targets]).toEqual([...want.targets]);
      expect(got.cuSeqlens).toEqual(want.cuSeqlens);
      expect(got.media.map((m) => [m.start, m.length, m.path])).toEqual(want.media.map((m) => [m.start, m.length, m.path]));
      expect([got.epoch, got.index, got.lastInEpoch]).toEqual([want.epoch, want.index, want.lastInEpoch]);
    }
    expect(B.state()).toEqual(A.state());
    const C = loader(samples, { tokensPerBatch: 38, shuffle: true, seed: 3 });
    expect(() => C.restore(state)).toThrow(/state belongs to other samples or options/);
    expect(() => mk().restore({ ...state, cursor: 30 })).toThrow(/cursor 30 out of range/);
  });

  it('batches with only text, only images, only audio', async () => {
    for (const [src, seg] of [
      ['text', { text: 'hello', target: true }],
      ['image', { image: 'img4.png' }],
      ['audio', { audio: 'a3.wav' }],
    ] as const) {
      const samples = manifest(Array.from({ length: 5 }, (_, i) => ({ id: `${src}${i}`, source: src, segments: [seg] })));
      const b = await loader(samples, { tokensPerBatch: 100 }).next();
      checkBatch(b, 100);
      expect(b.samples).toHaveLength(5);
      expect(b.images).toHaveLength(src === 'image' ? 5 : 0);
      expect(b.audio).toHaveLength(src === 'audio' ? 5 : 0);
      expect(b.numTargets).toBe(src === 'text' ? 5 * 5 : 0);
      expect(b.tokensByModality).toEqual({ text: src === 'text' ? 30 : 5, image: src === 'image' ? 30 : 0, audio: src === 'audio' ? 25 : 0 });
    }
  });

  it('a sample over the budget is an error naming file and line, or skipped and counted with skipBad', async () => {
    const samples = manifest([
      { id: 'ok1', source: 's', segments: [{ text: 'abc', target: true }] },
      { id: 'big', source: 's', segments: [{ image: 'img30.png' }] },
      { id: 'ok2', source: 's', segments: [{ text: 'de', target: true }] },
      { id: 'bad', source: 's', segments: [{ audio: 'broken2.wav' }] },
    ]);
    const L = loader(samples, { tokensPerBatch: 20 });
    await expect(L.next()).rejects.toThrow(SampleError);
    await expect(loader(samples, { tokensPerBatch: 20 }).next()).rejects.toThrow('set/m.jsonl:2: sample "big": 33 tokens (text 1, image 32, audio 0) exceed tokensPerBatch 20');
    const warnings: string[] = [];
    const K = loader(samples, { tokensPerBatch: 20, skipBad: true, onWarning: (m) => warnings.push(m) });
    const b = await K.next();
    expect(b.samples.map((s) => s.id)).toEqual(['ok1', 'ok2']);
    expect(b.skipped).toBe(2);
    expect(b.lastInEpoch).toBe(true);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/skipping bad sample \(1 so far\): set\/m\.jsonl:2: sample "big"/);
    expect(warnings[1]).toMatch(/set\/m\.jsonl:4: sample "bad": segments\[0\] \(audio broken2\.wav\): cannot decode set\/broken2\.wav/);
    // A media failure without skipBad names the file and line too.
    const only = manifest([{ id: 'bad', source: 's', segments: [{ text: 'x' }, { audio: 'broken2.wav' }] }], 'q.jsonl');
    await expect(loader(only).next()).rejects.toThrow('q.jsonl:1: sample "bad": segments[1] (audio broken2.wav): cannot decode broken2.wav');
    // All bad: a clear error instead of an endless loop.
    await expect(loader([samples[1]], { tokensPerBatch: 20, skipBad: true, onWarning: () => {} }).next()).rejects.toThrow(/every sample was skipped/);
    // tokenCount must return a positive integer.
    await expect(loader(samples.slice(1, 2), { tokenCount: () => 0 }).next()).rejects.toThrow(/set\/m\.jsonl:2: .*tokenCount returned 0/);
  });
});
