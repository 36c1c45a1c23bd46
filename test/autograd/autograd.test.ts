import { describe, expect, it } from 'vitest';
import * as W from '../../src/node.ts';
import { expectClose } from '../helpers/check.ts';
import { useDevice } from '../helpers/device.ts';

useDevice();

const arr = async (t: W.Tensor | null) => Array.from(await t!.toArray());

describe('autograd', () => {
  it('diamond graph: a shared subexpression is visited once and gradients add', async () => {
    // y = (x·2) · (x·2 + 1) summed; dy/dx = 2·(2x+1) + 2·2x = 8x + 2
    const x = W.tensor([0.5, -1, 2], [3]);
    x.requiresGrad = true;
    const a = W.mulScalar(x, 2);
    const y = W.sum(W.mul(a, W.addScalar(a, 1)));
    W.backward(y);
    expectClose(await arr(x.grad), [6, -6, 18], 1e-5, 1e-5, 'diamond');
  });

  it('a tensor used twice in one op (x·x)', async () => {
    const x = W.tensor([3, -2], [2]);
    x.requiresGrad = true;
    W.backward(W.sum(W.mul(x, x)));
    expect(await arr(x.grad)).toEqual([6, -4]);
  });

  it('gradients accumulate over two backward calls until zeroed', async () => {
    const x = W.tensor([1, 2], [2]);
    x.requiresGrad = true;
    W.backward(W.sum(W.mulScalar(x, 3)));
    W.backward(W.sum(W.mulScalar(x, 3)));
    expect(await arr(x.grad)).toEqual([6, 6]);
    x.grad!.release();
    x.grad = null;
    W.backward(W.sum(W.square(x)));
    expect(await arr(x.grad)).toEqual([2, 4]);
  });

  it('noGrad records nothing', () => {
    const x = W.tensor([1, 2], [2]);
    x.requiresGrad = true;
    const y = W.noGrad(() => W.exp(x));
    expect(y.requiresGrad).toBe(false);
    expect(y.node).toBeNull();
    expect(() => W.backward(W.sum(y))).toThrow(/does not require grad/);
  });

  it('backward twice through a freed graph is a clear error', () => {
    const x = W.tensor([1, 2], [2]);
    x.requiresGrad = true;
    const e = W.exp(x);
    const y1 = W.sum(e);
    const y2 = W.sum(W.mul(e, e));
    W.backward(y1);
    // y2 shares exp's node, which y1's backward already freed.
    expect(() => W.backward(y2)).toThrow(/backward through 'exp'.*already freed/);
  });

  it('non-scalar backward needs an explicit gradient of the right shape', () => {
    const x = W.tensor([1, 2], [2]);
    x.requiresGrad = true;
    const y = W.exp(x);
    expect(() => W.backward(y)).toThrow(/gradient must be given for a non-scalar output of shape \[2\]/);
    expect(() => W.backward(y, W.zeros([3]))).toThrow(/gradient shape \[3\] does not match output shape \[2\]/);
  });

  it('checkpoint (recompute) gives gradients identical to no recompute', async () => {
    const gen = new W.Generator(7);
    const w1 = gen.normal([8, 16], 0, 0.3);
    const w2 = gen.normal([16, 4], 0, 0.3);
    const x = gen.normal([5, 8]);
    for (const t of [w1, w2, x]) t.requiresGrad = true;
    const block = (h: W.Tensor) => W.matmul(W.gelu(W.matmul(h, w1)), w2);
    const run = async (useCheckpoint: boolean) => {
      const y = useCheckpoint ? W.checkpoint(block, x) : block(x);
      W.backward(W.sum(W.square(y)));
      const out = await Promise.all([x, w1, w2].map((t) => t.grad!.toArray()));
      for (const t of [x, w1, w2]) {
        t.grad!.release();
        t.grad = null;
      }
      return out.map((a) => Array.from(a));
    };
    const plain = await run(false);
    const recomputed = await run(true);
    expect(recomputed).toEqual(plain); // bit-identical: same kernels, same order
  });

  it('checkpoint keeps fewer intermediates alive during forward', async () => {
    const dev = W.getDevice();
    const gen = new W.Generator(3);
    const w = gen.normal([64, 64], 0, 0.1);
    w.requiresGrad = true;
    const x = gen.normal([64, 64]);
    const deep = (h: W.Tensor) => {
      for (let i = 0; i < 6; i++) h = W.tanh(W.matmul(h, w));
      return h;
    };
    const measure = (ck: boolean) =>
      W.scope(() => {
        const base = dev.pool.snapshot.liveBytes;
        const y = ck ? W.checkpoint(deep, x) : deep(x);
        const held = dev.pool.snapshot.liveBytes - base;
        void y;
        return held;
      });
    const plainBytes = measure(false);
    const ckBytes = measure(true);
    expect(ckBytes).toBeLessThan(plainBytes / 3);
  });
});

describe('memory ownership', () => {
  it('live bytes return to the same value after 100 forward+backward steps', async () => {
    const dev = W.getDevice();
    const gen = new W.Generator(11);
    const w1 = gen.normal([16, 32], 0, 0.2);
    const b1 = W.zeros([32]);
    const w2 = gen.normal([32, 4], 0, 0.2);
    const params = [w1, b1, w2];
    for (const p of params) p.requiresGrad = true;
    const x = gen.normal([10, 16]);
    const step = () =>
      W.scope(() => {
        const h = W.silu(W.add(W.matmul(x, params[0]), params[1]));
        const logits = W.matmul(h, params[2]);
        const loss = W.mean(W.neg(W.logSoftmax(logits)));
        W.backward(loss);
        // SGD update, in place of the parameters' values.
        W.noGrad(() => {
          params.forEach((p, i) => {
            const next = W.sub(p, W.mulScalar(p.grad!, 0.1));
            p.grad!.release();
            p.grad = null;
            // Move the new values into a kept tensor that replaces the parameter.
            params[i] = W.keep(next);
            params[i].requiresGrad = true;
            p.dispose();
          });
        });
        return loss;
      });
    // Warm up (pool fills, pipelines compile), then measure.
    let loss = step();
    await loss.item();
    loss.release();
    await dev.sync();
    const before = dev.pool.snapshot.liveBytes;
    let first = 0;
    let last = 0;
    for (let i = 0; i < 100; i++) {
      loss = step();
      if (i === 0) first = await loss.item();
      if (i === 99) last = await loss.item();
      loss.release();
    }
    await dev.sync();
    expect(dev.pool.snapshot.liveBytes).toBe(before);
    expect(last).toBeLessThan(first); // it really trained
  });

  it('use of a released tensor is an error naming the op and the tensor', () => {
    const x = W.zeros([2, 2]);
    x.release();
    expect(() => W.exp(x)).toThrow(/exp: tensor #\d+ \[2, 2\] was used after it was released/);
    const y = W.scope(() => W.zeros([3]));
    expect(y.released).toBe(false);
    let inner: W.Tensor | null = null;
    W.scope(() => {
      inner = W.ones([4]);
    });
    expect(() => W.neg(inner!)).toThrow(/neg: .*\[4\].*scope 'scope' closed/);
  });
});

describe('device errors', () => {
  it('a WGSL compile error names the kernel', () => {
    const dev = W.getDevice();
    expect(() => dev.compileSource('broken_kernel', 'fn main( {')).toThrow(/broken_kernel[\s\S]*expected/);
  });
  it('wrong dtypes name the op', () => {
    const a = W.tensor([1, 2], [2], 'i32');
    const b = W.tensor([1, 2], [2]);
    expect(() => W.exp(a)).toThrow(/exp: dtype i32 is not supported/);
    expect(() => W.add(a, b)).toThrow(/add: dtype i32 is not supported/);
    expect(() => W.tensor([1, 2, 3], [2])).toThrow(/3 values do not fill shape \[2\]/);
  });
});
