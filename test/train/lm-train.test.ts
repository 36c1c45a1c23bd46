// The training workflow end to end on the real Brown corpus with a very small model:
// exact resume, loss falling, config errors, corrupted checkpoints.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as W from '../../src/node.ts';
import { runLm } from '../../src/train/lm.ts';
import { loadRunConfig, collectOverrides } from '../../src/cli/commands/train.ts';
import { RunSchema } from '../../src/train/schema.ts';
import { validateConfig } from '../../src/train/config-io.ts';
import { useDevice } from '../helpers/device.ts';

useDevice();

const cacheDir = join(tmpdir(), 'webomni-test-cache');

function tinyConfig(runsDir: string, overrides: Record<string, unknown> = {}) {
  return validateConfig(
    RunSchema,
    {
      name: 'tiny',
      runsDir,
      seed: 3,
      model: { dim: 32, layers: 2, heads: 2, kvHeads: 1, ffnDim: 64, maxSeqLen: 64 },
      tokenizer: { vocabSize: 512 },
      data: { tokensPerBatch: 256, cacheDir },
      train: { steps: 6, lr: 3e-3, warmupSteps: 2, evalEvery: 0, checkpointEvery: 3, keepLast: 5, microBatches: 2, ...overrides },
    },
    'test config',
  );
}

const quiet = () => {};

describe('training workflow', () => {
  it('run 2k steps vs run k, stop, resume, run k more: identical losses bit for bit', async () => {
    const dev = W.getDevice();
    const straight = await runLm(dev, tinyConfig(mkdtempSync(join(tmpdir(), 'wo-a-'))), { log: quiet });
    straight.run.trainer.dispose();
    straight.run.model.dispose();
    const dir = mkdtempSync(join(tmpdir(), 'wo-b-'));
    const first = await runLm(dev, tinyConfig(dir, { checkpointEvery: 0 }), { stopAtStep: 3, log: quiet });
    first.run.trainer.dispose();
    first.run.model.dispose();
    const second = await runLm(dev, tinyConfig(dir, { checkpointEvery: 0 }), { resume: true, log: quiet });
    second.run.trainer.dispose();
    second.run.model.dispose();
    expect(first.losses.map((l) => l.step)).toEqual([1, 2, 3]);
    expect(second.losses.map((l) => l.step)).toEqual([4, 5, 6]);
    expect([...first.losses, ...second.losses].map((l) => l.loss)).toEqual(straight.losses.map((l) => l.loss));
  }, 300_000);

  it('resume is exact when the interrupted run had the same config', async () => {
    const dev = W.getDevice();
    const dirA = mkdtempSync(join(tmpdir(), 'wo-c-'));
    const straight = await runLm(dev, tinyConfig(dirA), { log: quiet });
    straight.run.trainer.dispose();
    straight.run.model.dispose();
    // Interrupt after 3 steps (maxSeconds is wall-clock, so stop by steps via a fresh run whose
    // checkpoint at step 3 is then resumed): train 6 steps, keep checkpoint 3, resume from it.
    const dirB = mkdtempSync(join(tmpdir(), 'wo-d-'));
    const full = await runLm(dev, tinyConfig(dirB), { log: quiet });
    full.run.trainer.dispose();
    full.run.model.dispose();
    const resumed = await runLm(dev, tinyConfig(dirB), { resume: join(dirB, 'tiny', 'checkpoints', 'step-00000003'), log: quiet });
    resumed.run.trainer.dispose();
    resumed.run.model.dispose();
    expect(resumed.losses.map((l) => l.step)).toEqual([4, 5, 6]);
    expect(resumed.losses.map((l) => l.loss)).toEqual(straight.losses.slice(3).map((l) => l.loss));
    expect(full.losses.map((l) => l.loss)).toEqual(straight.losses.map((l) => l.loss));
    // Metrics were appended as JSON lines.
    const lines = readFileSync(join(dirB, 'tiny', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.event === 'train').length).toBe(9);
  }, 300_000);

  it('the loss falls', async () => {
    const r = await runLm(W.getDevice(), tinyConfig(mkdtempSync(join(tmpdir(), 'wo-e-')), { steps: 30, lr: 1e-2, checkpointEvery: 0, evalEvery: 30, microBatches: 1 }), { log: quiet });
    r.run.trainer.dispose();
    r.run.model.dispose();
    const first = r.losses[0].loss;
    const last = r.losses[r.losses.length - 1].loss;
    expect(first).toBeGreaterThan(5.5); // ≈ ln(512) at init
    expect(last).toBeLessThan(first - 0.8);
    expect(r.valLoss).not.toBeNull();
    expect(r.valLoss!).toBeLessThan(first - 0.5);
  }, 300_000);

  it('a corrupted checkpoint is a clear error and is not overwritten', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wo-f-'));
    const r = await runLm(W.getDevice(), tinyConfig(dir, { steps: 3 }), { log: quiet });
    r.run.trainer.dispose();
    r.run.model.dispose();
    const ck = join(dir, 'tiny', 'checkpoints', 'step-00000003');
    const f = join(ck, 'model.safetensors');
    const bytes = readFileSync(f);
    bytes[100] ^= 0x55;
    writeFileSync(f, bytes);
    await expect(runLm(W.getDevice(), tinyConfig(dir, { steps: 6 }), { resume: true, log: quiet })).rejects.toThrow(/model\.safetensors: corrupted/);
    expect(readFileSync(f)).toEqual(bytes);
  }, 300_000);
});

describe('config errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wo-cfg-'));
  const write = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const base = 'name: x\nmodel: {dim: 32, layers: 1, heads: 2, kvHeads: 1, ffnDim: 64}\ntrain: {steps: 1, lr: 0.001}\n';

  it('unknown keys, wrong types and bad values name the key, value and what is allowed', () => {
    expect(() => loadRunConfig(write('a.yaml', base + 'trian: {}\n'), [])).toThrow(/a\.yaml: invalid config:[\s\S]*unknown key 'trian'/);
    expect(() => loadRunConfig(write('b.yaml', base), [['train.lr', 'fast']])).toThrow(/'train\.lr': .*number.*\(got "fast"\)/);
    expect(() => loadRunConfig(write('c.yaml', base), [['model.mlp', 'relu']])).toThrow(/'model\.mlp': .*swiglu.*gelu.*\(got "relu"\)/);
    expect(() => loadRunConfig(write('d.yaml', base), [['model.dropout', '0.1']])).toThrow(/unknown key 'model\.dropout'/);
    expect(() => loadRunConfig(join(dir, 'missing.yaml'), [])).toThrow(/config file not found: .*missing\.yaml/);
    expect(() => loadRunConfig(write('e.yaml', 'name: [unclosed\n'), [])).toThrow(/e\.yaml: cannot parse/);
    expect(() => collectOverrides(['--train.lr'])).toThrow(/--train\.lr needs a value/);
    const ok = loadRunConfig(write('f.yaml', base), collectOverrides(['--train.lr', '3e-4', '--model.layers=2']));
    expect(ok.train.lr).toBe(3e-4);
    expect(ok.model.layers).toBe(2);
  });

  it('a missing tokenizer file and an over-long document are clear errors', async () => {
    const cfg = tinyConfig(dir);
    cfg.tokenizer.path = join(dir, 'nope.tokenizer.json');
    await expect(runLm(W.getDevice(), cfg, { log: quiet })).rejects.toThrow(/tokenizer\.path: file not found: .*nope\.tokenizer\.json/);
    const { DecoderLM, DEFAULT_DECODER } = await import('../../src/models/index.ts');
    const m = new DecoderLM({ ...DEFAULT_DECODER, vocabSize: 10, dim: 8, layers: 1, heads: 2, kvHeads: 1, ffnDim: 8, maxSeqLen: 4 });
    const T = 6;
    expect(() =>
      m.forward({ ids: W.zeros([T], 'i32'), targets: W.zeros([T], 'i32'), positions: W.zeros([T], 'i32'), cuSeqlens: [0, T] }),
    ).toThrow(/document 0 has 6 tokens, more than model\.maxSeqLen \(4\)/);
    m.dispose();
    expect(existsSync(join(dir, 'tiny', 'checkpoints'))).toBe(false);
  });
});
