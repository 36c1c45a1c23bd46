import { describe, expect, it } from 'vitest';
import * as W from '../../src/node.ts';
import { clipGradNorm as refClip } from '../reference/transformer.ts';
import { expectClose, randomData, rng } from '../helpers/check.ts';
import { useDevice } from '../helpers/device.ts';

useDevice();

const SIZES = [1, 37, 9000, 21]; // 9000 > one partial-sum chunk (4096)

function makeParams(seed: number, scale = 1): { params: W.Tensor[]; grads: number[][] } {
  const r = rng(seed);
  const grads = SIZES.map((n) => randomData(n, r, -scale, scale));
  const params = SIZES.map((n, i) => {
    const p = W.keep(W.tensor(randomData(n, r), [n]));
    p.requiresGrad = true;
    p.grad = W.keep(W.tensor(grads[i], [n]));
    return p;
  });
  return { params, grads };
}

function dispose(params: W.Tensor[]): void {
  for (const p of params) {
    p.grad?.dispose();
    p.dispose();
  }
}

describe('clipGradNorm', () => {
  it('clips in place to maxNorm and returns the norm before clipping, without a submit', async () => {
    const { params, grads } = makeParams(1);
    const ref = refClip(grads, 2.5);
    expect(ref.norm).toBeGreaterThan(2.5);
    const dev = W.getDevice();
    dev.flush();
    const before = dev.submitCount;
    const norm = W.clipGradNorm(params, 2.5);
    expect(dev.submitCount).toBe(before); // recorded only: nothing waited on or submitted
    expect(norm.shape).toEqual([]);
    expect(await norm.item()).toBeCloseTo(ref.norm, 3);
    for (let i = 0; i < params.length; i++) {
      expectClose(await params[i].grad!.toArray(), ref.clipped[i], 1e-6, 1e-5, `clipped grad ${i}`);
    }
    dispose(params);
  });
  it('leaves gradients untouched when the norm is below maxNorm; skips params without grads', async () => {
    const { params, grads } = makeParams(2, 0.01);
    const extra = W.keep(W.zeros([5]));
    const norm = await W.clipGradNorm([...params, extra], 100).item();
    expect(norm).toBeCloseTo(refClip(grads, 100).norm, 5);
    for (let i = 0; i < params.length; i++) expect(Array.from(await params[i].grad!.toArray())).toEqual(Array.from(Float32Array.from(grads[i])));
    dispose(params);
    extra.dispose();
    expect(await W.clipGradNorm([W.zeros([3])], 1).item()).toBe(0);
  });
  it('hands the scale to SGD and AdamW instead (gradients unscaled; scale used for one step)', async () => {
    const { params, grads } = makeParams(3);
    const p0 = await Promise.all(params.map(async (p) => Array.from(await p.toArray())));
    const opt = new W.SGD(params, { lr: 0.5 });
    const norm = W.clipGradNorm(params, 1, { optimizer: opt });
    expect(opt.gradScale).not.toBeNull();
    opt.step();
    expect(opt.gradScale).toBeNull();
    const ref = refClip(grads, 1);
    expect(await norm.item()).toBeCloseTo(ref.norm, 3);
    for (let i = 0; i < params.length; i++) {
      expectClose(await params[i].toArray(), p0[i].map((v, j) => v - 0.5 * ref.clipped[i][j]), 1e-6, 1e-5, `sgd param ${i}`);
      expect(Array.from(await params[i].grad!.toArray())).toEqual(Array.from(Float32Array.from(grads[i])));
    }
    // The next step without clipping uses scale 1.
    opt.step();
    for (let i = 0; i < params.length; i++) {
      expectClose(await params[i].toArray(), p0[i].map((v, j) => v - 0.5 * ref.clipped[i][j] - 0.5 * grads[i][j]), 1e-6, 1e-5, `sgd param ${i} step 2`);
    }
    opt.dispose();

    // AdamW's first step with clipped grads: m̂ = g', v̂ = g'², update = lr·g'/(|g'| + eps).
    const adam = new W.AdamW(params, { lr: 0.01, weightDecay: 0, eps: 1e-3 });
    const q0 = await Promise.all(params.map(async (p) => Array.from(await p.toArray())));
    W.clipGradNorm(params, 1, { optimizer: adam });
    adam.step();
    for (let i = 0; i < params.length; i++) {
      const want = q0[i].map((v, j) => {
        const g = ref.clipped[i][j];
        return v - (0.01 * g) / (Math.abs(g) + 1e-3);
      });
      expectClose(await params[i].toArray(), want, 1e-6, 1e-4, `adamw param ${i}`);
    }
    adam.dispose();
    dispose(params);
  });
  it('bad arguments are clear errors', () => {
    expect(() => W.clipGradNorm([], 0)).toThrow(/clipGradNorm: maxNorm must be a positive number, got 0/);
  });
});
