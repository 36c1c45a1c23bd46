// Softmax and log-softmax along the last axis.

import { Tensor } from '../tensor/tensor.ts';
import { defineOp, opError } from './registry.ts';
import { contiguousK, floatKernelType } from './kernels.ts';
import { grid1d } from './launch.ts';

function rowsOf(x: Tensor): [number, number] {
  const len = x.shape[x.rank - 1];
  return [len === 0 ? 0 : x.size / len, len];
}

function softmaxForwardK(op: string, x: Tensor, log: boolean): Tensor {
  const dtype = floatKernelType(op, x);
  if (x.rank === 0) throw opError(op, 'needs at least one dimension', x);
  const src = x.isContiguous ? x : contiguousK(x);
  const y = Tensor.empty(x.shape, x.dtype, x.device);
  const [rows, len] = rowsOf(x);
  if (rows > 0 && len > 0) {
    const u = new Uint32Array([rows, len, 0, 0]);
    // The contiguous source may be a view at an offset: bind via a compacted copy in that case.
    const input = src.offset === 0 ? src : contiguousK(src);
    x.device.dispatch({
      kernel: 'softmax',
      entry: 'forward',
      constants: { LOG: log ? 1 : 0, WG: len >= 512 ? 256 : 64 },
      dtype,
      uniforms: u,
      buffers: [input.storage.buffer, y.storage.buffer],
      workgroups: grid1d(rows, 1),
      label: op,
    });
    if (input !== src) input.release();
  }
  if (src !== x) src.release();
  return y;
}

function softmaxBackwardK(op: string, y: Tensor, gy: Tensor, log: boolean): Tensor {
  const g = gy.isContiguous && gy.offset === 0 ? gy : contiguousK(gy);
  const gx = Tensor.empty(y.shape, y.dtype, y.device);
  const [rows, len] = rowsOf(y);
  if (rows > 0 && len > 0) {
    y.device.dispatch({
      kernel: 'softmax',
      entry: 'backward',
      constants: { LOG: log ? 1 : 0, WG: len >= 512 ? 256 : 64 },
      dtype: floatKernelType(op, y, gy),
      uniforms: new Uint32Array([rows, len, 0, 0]),
      buffers: [y.storage.buffer, g.storage.buffer, gx.storage.buffer],
      workgroups: grid1d(rows, 1),
      label: op,
    });
  }
  if (g !== gy) g.release();
  return gx;
}

export const softmax = defineOp({
  name: 'softmax',
  forward(ctx, x: Tensor) {
    const y = softmaxForwardK('softmax', x, false);
    ctx.save(y);
    return y;
  },
  backward: (ctx, gy) => [softmaxBackwardK('softmax.backward', ctx.saved[0], gy, false)],
});

export const logSoftmax = defineOp({
  name: 'log_softmax',
  forward(ctx, x: Tensor) {
    const y = softmaxForwardK('log_softmax', x, true);
    ctx.save(y);
    return y;
  },
  backward: (ctx, gy) => [softmaxBackwardK('log_softmax.backward', ctx.saved[0], gy, true)],
});
