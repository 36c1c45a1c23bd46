// Parity with PyTorch for one MoE layer (router, top-k, experts as a Hugging Face-style loop
// with index_add_, shared expert): the same weights and input (exchanged through
// safetensors) give the same output, routing, aux and z losses, and gradients of
// L = Σ G·y + a·aux + b·z for the input and every parameter.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as W from '../../src/node.ts';
import { MoE, type MoEOptions } from '../../src/nn/moe.ts';
import { expectClose, randomData, rng } from '../helpers/check.ts';
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

async function parity(opts: Omit<MoEOptions, 'generator'>, T: number, seed: number): Promise<void> {
  if (!torchAvailable()) {
    throw new Error("PyTorch is not installed: run 'npm test' (its set-up installs Debian's python3-torch) or apt-get install python3-torch");
  }
  const layer = new MoE({ ...opts, generator: new W.Generator(seed), initStd: 0.2 });
  const r = rng(seed);
  const x = W.keep(W.tensor(randomData(T * opts.dim, r), [T, opts.dim]));
  const G = W.keep(W.tensor(randomData(T * opts.dim, r), [T, opts.dim]));
  x.requiresGrad = true;
  const auxWeight = 0.7;
  const zWeight = 0.3;
  const dir = mkdtempSync(join(tmpdir(), 'webomni-moe-parity-'));
  const weights = join(dir, 'weights.safetensors');
  await W.saveSafeTensors(weights, [['x', x], ['G', G], ...layer.namedParameters()]);
  writeFileSync(join(dir, 'spec.json'), JSON.stringify({ topK: opts.topK, scoring: opts.scoring ?? 'softmax', renormalize: opts.renormalize ?? true, auxWeight, zWeight }));
  const out = join(dir, 'out.safetensors');
  execFileSync(PYTHON, [join(import.meta.dirname, 'moe_torch.py'), join(dir, 'spec.json'), weights, out], { stdio: 'inherit' });
  expect(existsSync(out)).toBe(true);
  const ref = (await W.loadSafeTensors(out)).tensors;
  const get = async (n: string) => {
    const t = ref.get(n);
    expect(t, n).toBeTruthy();
    return t!.toArray();
  };

  const res = W.scope(() => {
    const o = layer.run(x);
    const loss = W.add(W.add(W.sum(W.mul(o.out, G)), W.mulScalar(o.auxLoss, auxWeight)), W.mulScalar(o.zLoss, zWeight));
    W.backward(loss);
    return { y: o.out, aux: o.auxLoss, z: o.zLoss, idx: o.indices, counts: o.plan.tokensPerExpert };
  });
  // Routing is identical (same experts chosen, in descending-score order).
  expect(Array.from(await res.idx.toArray())).toEqual(Array.from(await get('idx')));
  expect(Array.from(await res.counts.toArray())).toEqual(Array.from(await get('counts')));
  expectClose(await res.y.toArray(), await get('y'), 1e-5, 1e-4, 'output');
  expectClose([await res.aux.item()], await get('aux'), 1e-6, 1e-5, 'aux loss');
  expectClose([await res.z.item()], await get('z'), 1e-6, 1e-5, 'z-loss');
  expectClose(await x.grad!.toArray(), await get('grad.x'), 1e-5, 1e-3, 'gradient of x');
  const names: string[] = [];
  for (const [name, p] of layer.namedParameters()) {
    names.push(name);
    expectClose(await p.grad!.toArray(), await get(`grad.${name}`), 1e-5, 1e-3, `gradient of ${name}`);
  }
  expect(names).toContain('experts.gate_up_proj');
  expect(names).toContain('experts.down_proj');
  expect(names).toContain('gate.weight');
  for (const t of [res.y, res.aux, res.z, res.idx, res.counts, x, G]) t.release();
  x.grad?.release();
  for (const t of ref.values()) t.release();
  layer.dispose();
}

describe('PyTorch parity: MoE layer', () => {
  it('8 experts, top-2 softmax, renormalised, one shared expert', async () => {
    await parity({ dim: 32, experts: 8, topK: 2, ffnDim: 24, sharedExperts: 1, sharedFfnDim: 40 }, 45, 3);
  });

  it('6 experts, top-3 sigmoid, not renormalised', async () => {
    await parity({ dim: 24, experts: 6, topK: 3, ffnDim: 16, scoring: 'sigmoid', renormalize: false }, 33, 8);
  });
});
