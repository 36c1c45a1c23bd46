import { describe, expect, it } from 'vitest';
import * as W from '../../src/node.ts';
import { expectClose, randomData, rng } from '../helpers/check.ts';
import { useDevice } from '../helpers/device.ts';

useDevice();

/** PyTorch's AdamW step in float64. */
function adamwRef(p: number[], grads: number[][], lr: number, b1: number, b2: number, eps: number, wd: number): number[] {
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  const x = [...p];
  grads.forEach((g, k) => {
    const t = k + 1;
    for (let i = 0; i < x.length; i++) {
      x[i] *= 1 - lr * wd;
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const mh = m[i] / (1 - b1 ** t);
      const vh = v[i] / (1 - b2 ** t);
      x[i] -= (lr * mh) / (Math.sqrt(vh) + eps);
    }
  });
  return x;
}

function sgdRef(p: number[], grads: number[][], lr: number, mom: number, damp: number, wd: number, nesterov: boolean): number[] {
  const x = [...p];
  let buf: number[] | null = null;
  for (const g0 of grads) {
    const g = g0.map((v, i) => v + wd * x[i]);
    if (mom !== 0) {
      buf = buf ? buf.map((b, i) => mom * b + (1 - damp) * g[i]) : [...g];
      const b = buf;
      for (let i = 0; i < x.length; i++) x[i] -= lr * (nesterov ? g[i] + mom * b[i] : b[i]);
    } else for (let i = 0; i < x.length; i++) x[i] -= lr * g[i];
  }
  return x;
}

async function runSteps(make: (ps: W.Tensor[]) => W.Optimizer, p0: number[], grads: number[][]): Promise<number[]> {
  const p = W.keep(W.tensor(p0, [p0.length]));
  p.requiresGrad = true;
  const opt = make([p]);
  for (const g of grads) {
    p.grad = W.keep(W.tensor(g, [g.length]));
    opt.step();
    opt.zeroGrad();
  }
  const out = Array.from(await p.toArray());
  opt.dispose();
  p.dispose();
  return out;
}

describe('optimizers', () => {
  const r = rng(99);
  const p0 = randomData(37, r);
  const grads = [0, 1, 2, 3, 4].map(() => randomData(37, r, -2, 2));

  it('AdamW matches the reference over 5 steps', async () => {
    const got = await runSteps((ps) => new W.AdamW(ps, { lr: 0.01, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1 }), p0, grads);
    expectClose(got, adamwRef(p0, grads, 0.01, 0.9, 0.95, 1e-8, 0.1), 1e-6, 1e-5, 'adamw');
  });
  it('SGD with momentum, dampening, weight decay, Nesterov matches the reference', async () => {
    for (const [mom, damp, wd, nest] of [[0, 0, 0, false], [0.9, 0, 0.01, false], [0.9, 0.1, 0, false], [0.8, 0, 0.05, true]] as const) {
      const got = await runSteps((ps) => new W.SGD(ps, { lr: 0.05, momentum: mom, dampening: damp, weightDecay: wd, nesterov: nest }), p0, grads);
      expectClose(got, sgdRef(p0, grads, 0.05, mom, damp, wd, nest), 1e-6, 1e-5, `sgd ${mom}/${damp}/${wd}/${nest}`);
    }
  });
  it('bad settings and parameters are clear errors', () => {
    const p = W.tensor([1, 2], [2]);
    expect(() => new W.AdamW([p], { betas: [1.2, 0.9] })).toThrow(/AdamW: betas must be in \[0, 1\)/);
    expect(() => new W.SGD([p], { lr: 0.1, nesterov: true })).toThrow(/Nesterov momentum needs momentum > 0/);
    expect(() => new W.SGD([W.transpose(W.zeros([2, 3]))], { lr: 0.1 })).toThrow(/must be a contiguous tensor/);
  });
  it('a Linear+MLP trains end to end (loss falls) on the spiral problem', async () => {
    const { trainSpirals } = await import('../../src/train/spiral-demo.ts');
    const res = await trainSpirals(W.getDevice(), { steps: 150, hidden: 32, pointsPerClass: 60, lr: 0.02, seed: 1, log: () => {} });
    expect(res.loss).toBeLessThan(0.3);
    expect(res.accuracy).toBeGreaterThan(0.9);
  });
});
