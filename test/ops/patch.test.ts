import { describe, expect, it } from 'vitest';
import * as W from '../../src/node.ts';
import { patchify as refPatchify, conv2dPatch } from '../reference/conv.ts';
import { ND } from '../reference/nd.ts';
import { checkOp, expectClose, randomData, rng } from '../helpers/check.ts';
import { useDevice } from '../helpers/device.ts';

useDevice();

describe('patchify', () => {
  it('forward + backward vs float64 reference and finite differences', async () => {
    await checkOp({ name: 'patchify p4', inputs: [{ shape: [2, 3, 8, 12] }], gpu: (x) => W.patchify(x, 4), ref: (x) => refPatchify(x, 4) });
    await checkOp({ name: 'patchify p3 odd', inputs: [{ shape: [1, 2, 6, 9] }], gpu: (x) => W.patchify(x, 3), ref: (x) => refPatchify(x, 3) });
    await checkOp({ name: 'patchify p1', inputs: [{ shape: [2, 2, 3, 5] }], gpu: (x) => W.patchify(x, 1), ref: (x) => refPatchify(x, 1) });
    await checkOp({ name: 'patchify whole', inputs: [{ shape: [3, 1, 4, 4] }], gpu: (x) => W.patchify(x, 4), ref: (x) => refPatchify(x, 4) });
  });

  it('strided (non-contiguous) input: transposed H/W and a channels-last view', async () => {
    await checkOp({
      name: 'patchify transposed',
      inputs: [{ shape: [2, 3, 6, 4], transposed: true }],
      gpu: (x) => W.patchify(x, 2),
      ref: (x) => refPatchify(x, 2),
    });
    // [N, H, W, C] storage viewed as [N, C, H, W] (how the 2×2 token merge uses it).
    const r = rng(3);
    const [n, h, w, c] = [2, 4, 6, 5];
    const data = randomData(n * h * w * c, r);
    const nhwc = W.tensor(data, [n, h, w, c]);
    const y = await W.patchify(W.permute(nhwc, [0, 3, 1, 2]), 2).toArray();
    const nchw = new Float64Array(n * c * h * w);
    for (let b = 0; b < n; b++)
      for (let yy = 0; yy < h; yy++)
        for (let xx = 0; xx < w; xx++) for (let ch = 0; ch < c; ch++) nchw[((b * c + ch) * h + yy) * w + xx] = data[((b * h + yy) * w + xx) * c + ch];
    expect(Array.from(y)).toEqual(Array.from(Float32Array.from(refPatchify(new ND([n, c, h, w], nchw), 2).data)));
  });

  it('backward is an exact gather (no accumulation): grad of Σ w·patchify(x) is w put back', async () => {
    const r = rng(5);
    const x = W.tensor(randomData(2 * 3 * 6 * 6, r), [2, 3, 6, 6]);
    x.requiresGrad = true;
    const y = W.patchify(x, 3);
    const wdata = randomData(y.size, r);
    W.backward(y, W.tensor(wdata, y.shape));
    const g = await x.grad!.toArray();
    // Every pixel's gradient is exactly one w entry, bit for bit.
    const idx = refPatchify(ND.from(Array.from({ length: x.size }, (_, i) => i), [2, 3, 6, 6]), 3).data;
    const expected = new Float32Array(x.size);
    idx.forEach((pix, j) => (expected[pix] = wdata[j]));
    expect(Array.from(g)).toEqual(Array.from(expected));
  });

  it('patchify + matmul equals a stride-p Conv2d (patch embedding)', async () => {
    const r = rng(8);
    const [n, c, h, w, p, cout] = [2, 3, 8, 8, 4, 5];
    const xd = randomData(n * c * h * w, r);
    const wd = randomData(cout * c * p * p, r);
    const bd = randomData(cout, r);
    const rows = W.patchify(W.tensor(xd, [n, c, h, w]), p);
    const y = W.add(W.matmul(rows, W.transpose(W.tensor(wd, [cout, c * p * p]))), W.tensor(bd, [cout]));
    const got = await y.toArray(); // [n·gh·gw, cout]
    const ref = conv2dPatch(ND.from(xd, [n, c, h, w]), ND.from(wd, [cout, c, p, p]), ND.from(bd, [cout]), p); // [n, cout, gh, gw]
    const expected = new Float64Array(got.length);
    const g = (h / p) * (w / p);
    for (let b = 0; b < n; b++) for (let o = 0; o < cout; o++) for (let k = 0; k < g; k++) expected[(b * g + k) * cout + o] = ref.data[(b * cout + o) * g + k];
    expectClose(got, expected, 1e-5, 1e-4, 'patch embedding vs conv2d');
  });

  it('f16 tensors (shader-f16): forward and backward in half precision', async () => {
    await checkOp({
      name: 'patchify f16',
      dtype: 'f16',
      inputs: [{ shape: [2, 2, 4, 6] }],
      gpu: (x) => W.patchify(x, 2),
      ref: (x) => refPatchify(x, 2),
      atol: 1e-3,
      rtol: 1e-3,
      gradTol: 1e-2,
      fdTol: 0,
    });
  });

  it('bad inputs name the problem', () => {
    expect(() => W.patchify(W.zeros([1, 3, 10, 8]), 4)).toThrow(/patchify: image height 10 and width 8 must be multiples of the patch size 4/);
    expect(() => W.patchify(W.zeros([3, 8, 8]), 4)).toThrow(/patchify: expects images \[N, C, H, W\], got rank 3/);
    expect(() => W.patchify(W.zeros([1, 1, 8, 8]), 0)).toThrow(/patch size must be a positive integer/);
    expect(() => W.patchify(W.zeros([1, 1, 8, 8], 'i32'), 2)).toThrow(/patchify: dtype i32 is not supported/);
  });
});
