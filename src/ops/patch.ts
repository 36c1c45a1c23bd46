// Patchify: non-overlapping p×p patches of images as rows, the first half of a ViT patch
// embedding (patchify + Linear = Conv2d with kernel = stride = p) and the 2×2 token merge
// of vision encoders (patchify with p = 2 on a [N, D, gh, gw] view of the tokens).
//
//   patchify(x [N, C, H, W], p) → [N·(H/p)·(W/p), C·p·p]
//
// Rows run over images, then patch rows, then patch columns; the columns of a row are
// (channel, dy, dx) in that order — a Conv2d weight [out, C, p, p] flattened. The
// backward is the inverse gather (each pixel belongs to exactly one patch).

import { Tensor, fmtShape } from '../tensor/tensor.ts';
import { defineOp, opError } from './registry.ts';
import { floatKernelType } from './kernels.ts';
import { grid1d } from './launch.ts';

const OP = 'patchify';

interface PatchGeom {
  n: number;
  c: number;
  h: number;
  w: number;
  p: number;
}

function patchifyK(x: Tensor, g: PatchGeom): Tensor {
  const dtype = floatKernelType(OP, x);
  const gh = g.h / g.p;
  const gw = g.w / g.p;
  const y = Tensor.empty([g.n * gh * gw, g.c * g.p * g.p], x.dtype, x.device);
  if (y.size === 0) return y;
  const [s0, s1, s2, s3] = x.strides;
  x.device.dispatch({
    kernel: 'patch',
    entry: 'patchify',
    dtype,
    uniforms: new Uint32Array([g.n, g.c, g.h, g.w, g.p, gh, gw, y.size, s0, s1, s2, s3, x.offset, 0, 0, 0]),
    buffers: [x.storage.buffer, y.storage.buffer],
    workgroups: grid1d(y.size),
    label: OP,
  });
  return y;
}

function unpatchifyK(gy: Tensor, g: PatchGeom): Tensor {
  const dtype = floatKernelType(`${OP}.backward`, gy);
  const dx = Tensor.empty([g.n, g.c, g.h, g.w], gy.dtype, gy.device);
  if (dx.size === 0) return dx;
  const gh = g.h / g.p;
  const gw = g.w / g.p;
  gy.device.dispatch({
    kernel: 'patch',
    entry: 'unpatchify',
    dtype,
    uniforms: new Uint32Array([g.n, g.c, g.h, g.w, g.p, gh, gw, dx.size, gy.strides[0], gy.strides[1], 0, 0, gy.offset, 0, 0, 0]),
    buffers: [gy.storage.buffer, dx.storage.buffer],
    workgroups: grid1d(dx.size),
    label: `${OP}.backward`,
  });
  return dx;
}

/**
 * Split images x [N, C, H, W] (float, any strides) into non-overlapping p×p patches:
 * [N·(H/p)·(W/p), C·p·p], rows in (image, patch row, patch column) order, columns in
 * (channel, dy, dx) order. H and W must be multiples of p.
 */
export const patchify: (x: Tensor, patch: number) => Tensor = defineOp({
  name: OP,
  forward(ctx, x: Tensor, patch: number) {
    floatKernelType(OP, x);
    if (x.rank !== 4) throw opError(OP, `expects images [N, C, H, W], got rank ${x.rank} ${fmtShape(x.shape)}`, x);
    if (!Number.isInteger(patch) || patch < 1) throw opError(OP, `patch size must be a positive integer, got ${patch}`, x);
    const [n, c, h, w] = x.shape;
    if (h % patch !== 0 || w % patch !== 0) {
      throw opError(OP, `image height ${h} and width ${w} must be multiples of the patch size ${patch}`, x);
    }
    const g: PatchGeom = { n, c, h, w, p: patch };
    ctx.attrs.g = g;
    return patchifyK(x, g);
  },
  backward: (ctx, gy) => [unpatchifyK(gy, ctx.attrs.g as PatchGeom)],
});
