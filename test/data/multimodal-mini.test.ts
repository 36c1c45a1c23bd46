// End to end on the committed data/omni-fashion-mini: manifests, real PNG/WAV decoding,
// a BPE tokenizer trained on the manifest texts, a full epoch of packed batches.
import { describe, expect, it } from 'vitest';
import { MultimodalLoader, type ManifestSample, type MultimodalBatch } from '../../src/data/multimodal/index.ts';
import { createNodeMediaLoader, loadOmniDataset, omniFashionMiniDir } from '../../src/data/multimodal/node.ts';
import { SPECIAL_IDS } from '../../src/data/tokenizer/special.ts';
import { trainBpe } from '../../src/data/tokenizer/train.ts';

const texts = (s: ManifestSample[]) => s.flatMap((x) => x.segments.flatMap((g) => (g.type === 'text' ? [g.text] : [])));
const bySource = (s: ManifestSample[]) => s.reduce<Record<string, number>>((a, x) => ((a[x.source] = (a[x.source] ?? 0) + 1), a), {});

describe('omni-fashion-mini', () => {
  const { train, val } = loadOmniDataset(); // checks every media file exists

  it('has the documented counts and held-out splits', () => {
    expect(bySource(train)).toEqual({ 'fashion-caption': 1000, speech: 200, 'brown-text': 300 });
    expect(bySource(val)).toEqual({ 'fashion-caption': 200, speech: 50, 'brown-text': 30 });
    const labels = (s: ManifestSample[], src: string) => s.filter((x) => x.source === src).map((x) => x.meta!.label as number);
    for (let c = 0; c < 10; c++) {
      expect(labels(train, 'fashion-caption').filter((l) => l === c)).toHaveLength(100);
      expect(labels(val, 'speech').filter((l) => l === c)).toHaveLength(5);
    }
    // Val images come from the Fashion-MNIST test set, val voices are unseen in training.
    expect(val.filter((x) => x.source === 'fashion-caption').every((x) => String(x.meta!.fmnist).startsWith('test['))).toBe(true);
    expect(train.filter((x) => x.source === 'fashion-caption').every((x) => String(x.meta!.fmnist).startsWith('train['))).toBe(true);
    const voices = (s: ManifestSample[]) => new Set(s.filter((x) => x.source === 'speech').map((x) => x.meta!.voice as string));
    const tv = voices(train);
    for (const v of voices(val)) expect(tv.has(v)).toBe(false);
    const combos = (s: ManifestSample[]) => new Set(s.filter((x) => x.source === 'speech').map((x) => `${x.meta!.speed}/${x.meta!.pitch}`));
    const tc = combos(train);
    for (const c of combos(val)) expect(tc.has(c)).toBe(false);
    const brownDocs = (s: ManifestSample[]) => new Set(s.filter((x) => x.source === 'brown-text').map((x) => x.meta!.doc as string));
    const td = brownDocs(train);
    for (const d of brownDocs(val)) expect(td.has(d)).toBe(false);
  });

  it('loads a full epoch through the collator (real PNG/WAV decoding)', async () => {
    const { tokenizer } = trainBpe([...texts(train), ...texts(val)], { vocabSize: 600 });
    const T = 2048;
    const media = createNodeMediaLoader({ image: { size: 28, mean: 0.2862, std: 0.3526 }, audio: { sampleRate: 16000 } });
    // A 7×7-patch ViT gives 16 tokens per 28×28 image; an audio encoder with 40 ms frames 25/s.
    const tokenCount = (m: string, x: { kind: string; height?: number; width?: number; samples?: Float32Array }) =>
      m === 'image' ? (x.height! / 7) * (x.width! / 7) : Math.ceil(x.samples!.length / 640);
    const L = new MultimodalLoader(train, { tokenizer, media, tokenCount, tokensPerBatch: T, seed: 1 });
    const samples: Record<string, number> = {};
    const loss: Record<string, number> = {};
    let batches = 0;
    let images = 0;
    let audio = 0;
    let first: MultimodalBatch | null = null;
    for await (const b of L.epochBatches()) {
      first ??= b;
      batches++;
      expect(b.numTokens).toBeLessThanOrEqual(T);
      for (const s of b.samples) samples[s.source] = (samples[s.source] ?? 0) + 1;
      for (const [k, v] of Object.entries(b.lossTokensBySource)) loss[k] = (loss[k] ?? 0) + v;
      for (const m of b.images) {
        images++;
        expect(m.length).toBe(16);
        if (m.input.kind !== 'image') throw new Error('not an image');
        expect([m.input.channels, m.input.height, m.input.width]).toEqual([1, 28, 28]);
        // Normalised: 0 → −0.2862/0.3526, 255 → (1 − 0.2862)/0.3526.
        const min = Math.min(...m.input.data);
        expect(min).toBeCloseTo(-0.2862 / 0.3526, 5);
        expect(Math.max(...m.input.data)).toBeLessThanOrEqual((1 - 0.2862) / 0.3526 + 1e-5);
      }
      for (const m of b.audio) {
        audio++;
        if (m.input.kind !== 'audio') throw new Error('not audio');
        expect(m.input.sampleRate).toBe(16000);
        expect(m.input.sourceSampleRate).toBe(16000);
        expect(m.input.seconds).toBeGreaterThan(0.2);
        expect(m.input.seconds).toBeLessThan(3);
        expect(m.length).toBe(Math.ceil(m.input.samples.length / 640));
        expect(Math.max(...m.input.samples.map(Math.abs))).toBeGreaterThan(0.05); // speech, not silence
        for (let i = m.start; i < m.start + m.length; i++) expect(b.ids[i]).toBe(SPECIAL_IDS.audio);
      }
    }
    expect(samples).toEqual({ 'fashion-caption': 1000, speech: 200, 'brown-text': 300 });
    expect(images).toBe(1000);
    expect(audio).toBe(200);
    // Loss tokens per source = tokens of the target text + EOS, less one for text-only
    // samples (without BOS their first token has no position that predicts it).
    const expectLoss = (src: string) =>
      train
        .filter((s) => s.source === src)
        .reduce((a, s) => {
          const t = s.segments.find((g) => g.type === 'text');
          if (t?.type !== 'text') throw new Error('no text');
          return a + tokenizer.encode(t.text).length + 1 - (s.segments.length === 1 ? 1 : 0);
        }, 0);
    expect(loss).toEqual({ 'brown-text': expectLoss('brown-text'), 'fashion-caption': expectLoss('fashion-caption'), speech: expectLoss('speech') });
    expect(batches).toBeGreaterThan(10);
    expect(first!.sourceNames).toEqual(['brown-text', 'fashion-caption', 'speech']);
    // The caption decodes back to its manifest text.
    const b = first!;
    const q = b.samples.findIndex((s) => s.source === 'fashion-caption');
    const seq = [...b.ids.subarray(b.cuSeqlens[q], b.cuSeqlens[q + 1])];
    const sample = train.find((s) => s.id === b.samples[q].id)!;
    const caption = (sample.segments[1] as { text: string }).text;
    expect(tokenizer.decode(seq.slice(18, -1))).toBe(caption);
    expect(omniFashionMiniDir()).toMatch(/data[/\\]omni-fashion-mini$/);
  });
});
