// The fused transformer kernels in f16 storage (f32 math inside): forward and backward
// match the f32 path of the same kernels within f16 rounding.
import { describe, expect, it } from 'vitest';
import * as W from '../../src/node.ts';
import { expectClose, randomData, rng } from '../helpers/check.ts';
import { useDevice } from '../helpers/device.ts';

const holder = useDevice();

interface Case {
  name: string;
  shapes: number[][];
  run: (...xs: W.Tensor[]) => W.Tensor;
  lo?: number;
  hi?: number;
}

/** Forward and every input's gradient in f16 vs f32 on the same (f16-representable) data. */
async function compare(c: Case): Promise<void> {
  const r = rng(21);
  const data = c.shapes.map((s) => {
    const n = s.reduce((a, b) => a * b, 1);
    // Round to f16 first so both paths see identical inputs.
    const t = W.tensor(randomData(n, r, c.lo ?? -2, c.hi ?? 2), s, 'f16');
    return t;
  });
  const host = await Promise.all(data.map((t) => t.toArray()));
  const results: Array<{ y: Float32Array; grads: Float32Array[] }> = [];
  for (const dtype of ['f32', 'f16'] as const) {
    const xs = host.map((h, i) => W.tensor(h, c.shapes[i], dtype));
    xs.forEach((x) => (x.requiresGrad = true));
    const y = c.run(...xs);
    const yv = (await y.toArray()) as Float32Array;
    const gy = W.tensor(randomData(y.size, rng(5), -1, 1), y.shape, y.dtype);
    W.backward(y, gy);
    results.push({ y: yv, grads: (await Promise.all(xs.map((x) => x.grad!.toArray()))) as Float32Array[] });
    expect(xs.every((x) => x.grad!.dtype === dtype)).toBe(true);
  }
  const [f32, f16] = results;
  expectClose(f16.y, f32.y, 2e-2, 2e-2, `${c.name} f16 forward`);
  f32.grads.forEach((g, i) => expectClose(f16.grads[i], g, 3e-2, 3e-2, `${c.name} f16 gradient ${i}`));
}

describe('fused kernels in f16', () => {
  it('rmsNorm, layerNorm, swiglu, rope, crossEntropy', async () => {
    if (!holder.device.hasF16) return expect(() => W.rmsNorm(W.tensor([1], [1], 'f16'), W.tensor([1], [1], 'f16'))).toThrow(/shader-f16/);
    await compare({ name: 'rms_norm', shapes: [[6, 40], [40]], run: (x, w) => W.rmsNorm(x, w, 1e-5) });
    await compare({ name: 'layer_norm', shapes: [[5, 33], [33], [33]], run: (x, w, b) => W.layerNorm(x, w, b, 1e-5) });
    await compare({ name: 'swiglu', shapes: [[4, 19], [4, 19]], run: W.swiglu });
    const pos = W.tensor([0, 1, 2, 0, 1000], [5], 'i32');
    await compare({ name: 'rope', shapes: [[5, 2, 8]], run: (x) => W.rope(x, pos) });
    const tg = W.tensor([3, -100, 40, 0], [4], 'i32');
    await compare({ name: 'cross_entropy', shapes: [[4, 50]], run: (x) => W.crossEntropy(x, tg, { zLoss: 1e-2 }), lo: -4, hi: 4 });
  });
});
