// The worked example of docs/adding-a-modality.md: a sensor time-series encoder in one
// file (examples/sensor/sensor-encoder.ts) with one registration line, used by the omni
// composition, the manifest parser, the media loader and the collator without edits.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as W from '../../src/node.ts';
import { OmniModel } from '../../src/models/omni.ts';
import { DEFAULT_DECODER } from '../../src/models/decoder.ts';
import { MultimodalLoader } from '../../src/data/multimodal/collate.ts';
import { createNodeMediaLoader, loadManifest } from '../../src/data/multimodal/node.ts';
import { trainBpe } from '../../src/data/tokenizer/train.ts';
import { withModalityTokens, loadPlugins } from '../../src/train/omni.ts';
import { useDevice } from '../helpers/device.ts';

useDevice();

describe('adding a modality', () => {
  it('a sensor encoder registered from its own file trains inside the omni model', async () => {
    await loadPlugins(['examples/sensor/sensor-encoder.ts']);
    // A tiny dataset: rising vs falling 2-channel series, labelled in text.
    const dir = mkdtempSync(join(tmpdir(), 'wo-sensor-'));
    mkdirSync(join(dir, 'sensor'));
    const lines: string[] = [];
    for (let i = 0; i < 8; i++) {
      const rising = i % 2 === 0;
      const rows = Array.from({ length: 12 }, (_, t) => `${rising ? t / 12 : 1 - t / 12},${Math.sin(t + i)}`);
      writeFileSync(join(dir, 'sensor', `s${i}.csv`), rows.join('\n'));
      lines.push(JSON.stringify({ id: `s${i}`, source: 'sensor', segments: [{ sensor: `sensor/s${i}.csv` }, { text: rising ? 'rising' : 'falling', target: true }] }));
    }
    lines.push(JSON.stringify({ id: 't0', source: 'text', segments: [{ text: 'plain text keeps the image encoder idle', target: true }] }));
    writeFileSync(join(dir, 'manifest.jsonl'), lines.join('\n') + '\n');

    const samples = loadManifest(join(dir, 'manifest.jsonl'));
    expect(samples[0].segments[0]).toMatchObject({ type: 'extra', modality: 'sensor' });
    const tokenizer = withModalityTokens(trainBpe(['rising falling plain text keeps the image encoder idle'], { vocabSize: 300 }).tokenizer, ['image', 'sensor']);
    const model = new OmniModel({
      llm: { ...DEFAULT_DECODER, vocabSize: tokenizer.vocabSize, dim: 32, layers: 1, heads: 2, kvHeads: 1, ffnDim: 64, maxSeqLen: 64, seed: 1 },
      encoders: {
        image: { imageSize: 8, patchSize: 4, channels: 1, dim: 16, layers: 1, heads: 2 },
        sensor: { channels: 2, patch: 4, dim: 24, maxTokens: 8 },
      },
    });
    expect(model.modalities()).toEqual(['image', 'sensor']);
    const loader = new MultimodalLoader(samples, {
      tokenizer,
      media: createNodeMediaLoader({}),
      tokenCount: (m, x) => model.tokenCount(m, x),
      tokensPerBatch: 512,
      shuffle: false,
    });
    const batch = await loader.next();
    expect(batch.media.filter((m) => m.modality === 'sensor').length).toBe(8);
    expect(batch.media.every((m) => m.length === 3)).toBe(true); // 12 steps / patch 4
    const ids = Array.from(batch.ids);
    expect(ids[batch.media[0].start - 1]).toBe(tokenizer.tokenToId('<|sensor_start|>'));
    expect(ids[batch.media[0].start]).toBe(tokenizer.tokenToId('<sensor>'));

    const opt = new W.AdamW(model.trainableParameters(), { lr: 5e-3, weightDecay: 0 });
    const losses: number[] = [];
    for (let step = 0; step < 12; step++) {
      const loss = W.scope(() => {
        const { loss } = model.loss(batch, Math.max(1, batch.numTargets));
        W.backward(loss);
        return loss;
      });
      losses.push(await loss.item());
      loss.release();
      if (step === 0) {
        // The sensor encoder learns; the image encoder (no images in the batch) ran its
        // dummy input and got gradients that are exactly zero.
        const named = new Map(model.namedParameters());
        const g = await named.get('encoders.sensor.fc1.weight')!.grad!.toArray();
        expect(g.some((v) => v !== 0)).toBe(true);
        for (const [name, p] of named) {
          if (!name.startsWith('encoders.image.')) continue;
          expect(p.grad, `${name} has a gradient`).toBeTruthy();
          expect((await p.grad!.toArray()).every((v) => v === 0), `${name} gradient is zero`).toBe(true);
        }
      }
      opt.step();
      opt.zeroGrad();
    }
    expect(losses[losses.length - 1]).toBeLessThan(losses[0] * 0.7);
    opt.dispose();
    model.dispose();
  }, 120_000);
});
