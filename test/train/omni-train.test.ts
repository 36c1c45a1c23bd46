// The omnimodal workflow end to end on the committed mini dataset with a tiny model:
// loss falls for every data source; batches with only text, only images or only audio
// work (absent encoders run their zero-cost dummy path); summary.json and report.html.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as W from '../../src/node.ts';
import { OmniRunSchema, runOmni, buildOmniRun, type OmniHostBatch } from '../../src/train/omni.ts';
import { validateConfig } from '../../src/train/config-io.ts';
import { MultimodalLoader } from '../../src/data/multimodal/collate.ts';
import { createNodeMediaLoader } from '../../src/data/multimodal/node.ts';
import { useDevice } from '../helpers/device.ts';

useDevice();

function tinyOmni(runsDir: string, train: Record<string, unknown> = {}) {
  return validateConfig(
    OmniRunSchema,
    {
      name: 'omni-tiny',
      runsDir,
      seed: 1,
      model: {
        llm: { dim: 48, layers: 1, heads: 2, kvHeads: 1, ffnDim: 96, maxSeqLen: 256, moe: { experts: 2, topK: 1, ffnDim: 48 } },
        encoders: {
          image: { imageSize: 28, patchSize: 7, channels: 1, dim: 32, layers: 1, heads: 2 },
          audio: { nMels: 32, dim: 32, layers: 1, heads: 2 },
        },
      },
      tokenizer: { vocabSize: 400 },
      data: { dir: 'data/omni-fashion-mini', tokensPerBatch: 768, image: { mean: 0.286, std: 0.353 } },
      train: { steps: 25, lr: 5e-3, warmupSteps: 3, evalEvery: 0, checkpointEvery: 0, logEvery: 5, ...train },
      eval: { maxSamples: 4, maxNewTokens: 4 },
    },
    'tiny omni config',
  );
}

describe('omnimodal training', () => {
  it('trains on the mini dataset: loss falls for every source; writes summary.json and report.html', async () => {
    const runsDir = mkdtempSync(join(tmpdir(), 'wo-omni-'));
    const { result, summary, run } = await runOmni(W.getDevice(), tinyOmni(runsDir), { log: () => {} });
    const metrics = readFileSync(join(run.runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const bySource = metrics.filter((m) => m.event === 'train' && m.lossBySource).map((m) => m.lossBySource as Record<string, number>);
    expect(bySource.length).toBeGreaterThanOrEqual(4);
    for (const src of ['fashion-caption', 'speech', 'brown-text']) {
      const series = bySource.map((b) => b[src]).filter((v) => typeof v === 'number');
      expect(series.length, `loss series of ${src}`).toBeGreaterThanOrEqual(3);
      expect(series[series.length - 1], `${src} loss falls`).toBeLessThan(series[0]);
    }
    expect(result.losses[result.losses.length - 1].loss).toBeLessThan(result.losses[0].loss - 1);
    const saved = JSON.parse(readFileSync(join(run.runDir, 'summary.json'), 'utf8'));
    for (const k of ['captionAccuracy', 'speechAccuracy', 'textValLoss', 'tokensPerSecond', 'wallSeconds']) expect(saved).toHaveProperty(k);
    expect(saved.tokensPerSecond).toBeGreaterThan(0);
    expect(summary.textValLoss).toBeGreaterThan(0);
    const html = readFileSync(join(run.runDir, 'report.html'), 'utf8');
    expect(html).toContain('uPlot');
    expect(html).toContain('fashion-caption');
    expect(existsSync(join(run.runDir, 'checkpoints'))).toBe(true);
    run.trainer.dispose();
    run.model.dispose();
  }, 300_000);

  it('batches with only text, only images or only audio train; absent encoders get zero gradients', async () => {
    const run = buildOmniRun(W.getDevice(), tinyOmni(mkdtempSync(join(tmpdir(), 'wo-omni-'))), () => {});
    const { model, tokenizer } = run;
    const all = run.val;
    const bySource = (src: string) => all.filter((s) => s.source === src).slice(0, 3);
    for (const [src, present] of [
      ['brown-text', null],
      ['fashion-caption', 'image'],
      ['speech', 'audio'],
    ] as const) {
      const loader = new MultimodalLoader(bySource(src), {
        tokenizer,
        media: createNodeMediaLoader({ image: run.config.data.image, audio: run.config.data.audio }),
        tokenCount: (m, x) => model.tokenCount(m, x),
        tokensPerBatch: 2048,
        bos: true,
        shuffle: false,
      });
      const host = await loader.next();
      const b: OmniHostBatch = { host, tokens: host.numTokens, lossTokens: host.numTargets };
      const loss = W.scope(() => {
        const l = model.lossOn(b, Math.max(1, host.numTargets));
        W.backward(l);
        return l;
      });
      expect(Number.isFinite(await loss.item()), `${src} loss`).toBe(true);
      loss.release();
      for (const m of ['image', 'audio']) {
        const g = await model.namedParameters().find(([n]) => n.startsWith(`encoders.${m}.`))![1].grad!.toArray();
        const zero = g.every((v) => v === 0);
        expect(zero, `${m} encoder gradient on a ${src} batch`).toBe(m !== present);
      }
      for (const p of model.parameters()) {
        p.grad?.release();
        p.grad = null;
      }
      await model.stepMetrics(); // drain the per-source window
    }
    run.trainer.dispose();
    run.model.dispose();
  }, 300_000);

  it('config errors name the key; a missing manifest names the file', async () => {
    expect(() => validateConfig(OmniRunSchema, { ...tinyOmni('/tmp'), modell: 1 }, 'x.yaml')).toThrow(/unknown key 'modell'/);
    const cfg = tinyOmni(mkdtempSync(join(tmpdir(), 'wo-omni-')));
    cfg.data.dir = '/nonexistent/data';
    expect(() => buildOmniRun(W.getDevice(), cfg, () => {})).toThrow(/data\.dir: manifest not found: \/nonexistent\/data\/manifest\.train\.jsonl/);
    const bad = tinyOmni(mkdtempSync(join(tmpdir(), 'wo-omni-')));
    (bad.model.encoders as Record<string, unknown>).video = {};
    expect(() => buildOmniRun(W.getDevice(), bad, () => {})).toThrow(/no encoder registered for modality 'video'/);
  }, 120_000);
});
