// Parity with PyTorch for a tiny decoder LM (2 layers, GQA, SwiGLU, RMSNorm, RoPE, packed
// documents): the same initial weights (exchanged through safetensors) and the same batch
// give the same loss and gradients, and the same weights after 3 AdamW steps.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as W from '../../src/node.ts';
import { DecoderLM, DEFAULT_DECODER, type DecoderConfig } from '../../src/models/index.ts';
import { expectClose } from '../helpers/check.ts';
import { useDevice } from '../helpers/device.ts';

useDevice();

const PYTHON = '/usr/bin/python3';

function torchAvailable(): boolean {
  try {
    execFileSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('PyTorch parity: tiny decoder LM', () => {
  it('loss, every gradient, and weights after 3 AdamW steps match', async () => {
    if (!torchAvailable()) {
      throw new Error("PyTorch is not installed: run 'npm test' (its set-up installs Debian's python3-torch) or apt-get install python3-torch");
    }
    const config: DecoderConfig = { ...DEFAULT_DECODER, vocabSize: 97, dim: 64, layers: 2, heads: 4, kvHeads: 2, ffnDim: 96, seed: 5, initStd: 0.05 };
    const model = new DecoderLM(config);
    // Three packed documents of lengths 7, 12, 5.
    const lens = [7, 12, 5];
    const T = lens.reduce((a, b) => a + b, 0);
    const cu = [0];
    for (const l of lens) cu.push(cu[cu.length - 1] + l);
    let s = 17;
    const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) % config.vocabSize);
    const ids = Array.from({ length: T }, rnd);
    const positions: number[] = [];
    const targets: number[] = [];
    lens.forEach((l, d) => {
      for (let i = 0; i < l; i++) {
        positions.push(i);
        targets.push(i === l - 1 ? -100 : ids[cu[d] + i + 1]);
      }
    });
    targets[3] = -100; // an ignored position inside a document
    const adam = { lr: 1e-2, betas: [0.9, 0.95] as [number, number], eps: 1e-8, weight_decay: 0.1, steps: 3 };

    const dir = mkdtempSync(join(tmpdir(), 'webomni-parity-'));
    const weights = join(dir, 'init.safetensors');
    await W.saveSafeTensors(weights, model.namedParameters());
    const spec = {
      model: { vocab: config.vocabSize, dim: config.dim, layers: config.layers, heads: config.heads, kv_heads: config.kvHeads, norm: 'rmsnorm', mlp: 'swiglu', norm_eps: config.normEps, rope_theta: config.ropeTheta, tie_embeddings: false },
      batch: { ids, positions, targets, cu_seqlens: cu },
      adamw: adam,
    };
    writeFileSync(join(dir, 'spec.json'), JSON.stringify(spec));
    const out = join(dir, 'torch.safetensors');
    execFileSync(PYTHON, [join(import.meta.dirname, 'torch_reference.py'), join(dir, 'spec.json'), weights, out], { stdio: 'inherit' });
    expect(existsSync(out)).toBe(true);
    const ref = await W.loadSafeTensors(out);
    const torchLosses = JSON.parse(ref.metadata.losses) as number[];

    const batch = {
      ids: W.keep(W.tensor(ids, [T], 'i32')),
      targets: W.keep(W.tensor(targets, [T], 'i32')),
      positions: W.keep(W.tensor(positions, [T], 'i32')),
      cuSeqlens: cu,
    };
    const params = model.namedParameters();
    const opt = new W.AdamW(params.map(([, p]) => p), { lr: adam.lr, betas: adam.betas, eps: adam.eps, weightDecay: adam.weight_decay });
    const losses: number[] = [];
    for (let step = 0; step < adam.steps; step++) {
      const loss = W.scope(() => {
        const l = model.loss(batch);
        W.backward(l);
        return l;
      });
      losses.push(await loss.item());
      loss.release();
      if (step === 0) {
        for (const [name, p] of params) {
          const g = await p.grad!.toArray();
          const tg = await ref.tensors.get(`grad.${name}`)!.toArray();
          expectClose(g, tg, 2e-5, 2e-3, `gradient of ${name}`);
        }
      }
      opt.step();
      opt.zeroGrad();
    }
    expectClose(losses, torchLosses, 1e-5, 1e-4, 'losses over 3 steps');
    for (const [name, p] of params) {
      expectClose(await p.toArray(), await ref.tensors.get(`after.${name}`)!.toArray(), 1e-5, 1e-3, `${name} after 3 AdamW steps`);
    }
  });
});
