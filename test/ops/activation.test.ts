import { describe, expect, it } from 'vitest';
import * as W from '../../src/node.ts';
import { swiglu as refSwiglu } from '../reference/transformer.ts';
import { ND } from '../reference/nd.ts';
import { checkOp, expectClose, randomData, rng } from '../helpers/check.ts';
import { useDevice } from '../helpers/device.ts';

useDevice();

describe('swiglu', () => {
  it('forward + fused backward (both grads) vs float64, odd sizes', async () => {
    for (const shape of [[7], [3, 37], [2, 5, 9]]) {
      await checkOp({ name: `swiglu ${shape}`, inputs: [{ shape, lo: -4, hi: 4 }, { shape, lo: -2, hi: 2 }], gpu: W.swiglu, ref: refSwiglu });
    }
  });
  it('large |gate| does not overflow; transposed inputs are compacted', async () => {
    await checkOp({ name: 'swiglu big', inputs: [{ shape: [4, 5], lo: -90, hi: 90 }, { shape: [4, 5] }], gpu: W.swiglu, ref: refSwiglu, fdTol: 0 });
    await checkOp({ name: 'swiglu T', inputs: [{ shape: [6, 5], transposed: true }, { shape: [6, 5] }], gpu: W.swiglu, ref: refSwiglu });
  });
  it('reads the two halves of a fused gate/up projection without copies; gradients land in the halves', async () => {
    const r = rng(11);
    const [T, F] = [5, 7];
    const data = randomData(T * 2 * F, r, -3, 3);
    const h = W.tensor(data, [T, 2 * F]);
    h.requiresGrad = true;
    const [g, u] = W.split(h, [F, F], 1);
    const y = W.swiglu(g, u);
    const gs = Array.from({ length: T * F }, (_, i) => data[Math.floor(i / F) * 2 * F + (i % F)]);
    const us = Array.from({ length: T * F }, (_, i) => data[Math.floor(i / F) * 2 * F + F + (i % F)]);
    expectClose(await y.toArray(), refSwiglu(ND.from(gs, [T, F]), ND.from(us, [T, F])).data, 1e-5, 1e-4, 'swiglu halves');
    W.backward(W.sum(y));
    const gh = await h.grad!.toArray();
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    for (let t = 0; t < T; t++)
      for (let c = 0; c < F; c++) {
        const gv = gs[t * F + c];
        const uv = us[t * F + c];
        const s = sig(gv);
        expectClose([gh[t * 2 * F + c], gh[t * 2 * F + F + c]], [uv * s * (1 + gv * (1 - s)), gv * s], 1e-5, 1e-4, `grad ${t},${c}`);
      }
  });
  it('shape and dtype errors name the op', () => {
    expect(() => W.swiglu(W.zeros([3, 4]), W.zeros([3, 5]))).toThrow(/swiglu: gate \[3, 4\] and up \[3, 5\] must have the same shape/);
    expect(() => W.swiglu(W.zeros([3, 4]), W.zeros([3, 4], 'i32'))).toThrow(/swiglu: dtype i32 is not supported/);
  });
});
