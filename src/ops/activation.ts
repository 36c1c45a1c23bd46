// Fused gated activations (shaders/activation.wgsl). GELU lives in elementwise.ts.

import { Tensor, fmtShape } from '../tensor/tensor.ts';
import { defineOp, opError } from './registry.ts';
import { floatKernelType } from './kernels.ts';
import { grid1d } from './launch.ts';
import { asRows } from './rows.ts';

/**
 * SwiGLU: silu(gate) · up, elementwise over equal shapes (no broadcasting). Inputs may be
 * row views (e.g. the two halves of a fused gate/up projection) and are read without
 * copies; the backward produces both gradients in one kernel.
 */
export const swiglu: (gate: Tensor, up: Tensor) => Tensor = defineOp({
  name: 'swiglu',
  forward(ctx, gate: Tensor, up: Tensor) {
    const dtype = floatKernelType('swiglu', gate, up);
    if (gate.rank !== up.rank || gate.shape.some((d, i) => d !== up.shape[i])) {
      throw opError('swiglu', `gate ${fmtShape(gate.shape)} and up ${fmtShape(up.shape)} must have the same shape`, gate, up);
    }
    const y = Tensor.empty(gate.shape, gate.dtype, gate.device);
    const g = asRows(gate);
    const u = asRows(up);
    if (y.size > 0) {
      gate.device.dispatch({
        kernel: 'activation',
        entry: 'swiglu_forward',
        dtype,
        uniforms: new Uint32Array([y.size, g.layout.d, g.layout.offset, g.layout.stride, u.layout.offset, u.layout.stride, 0, 0]),
        buffers: [g.t.storage.buffer, u.t.storage.buffer, y.storage.buffer],
        workgroups: grid1d(y.size),
        label: 'swiglu',
      });
    }
    ctx.save(g.t, u.t);
    g.tmp?.release();
    u.tmp?.release();
    return y;
  },
  backward(ctx, gy) {
    const [gate, up] = ctx.saved;
    const dtype = floatKernelType('swiglu.backward', gate, gy);
    const g = asRows(gate).layout; // saved tensors already have a row layout
    const u = asRows(up).layout;
    const d = asRows(gy);
    const dgate = Tensor.empty(gate.shape, gate.dtype, gate.device);
    const dup = Tensor.empty(up.shape, up.dtype, up.device);
    if (dgate.size > 0) {
      gate.device.dispatch({
        kernel: 'activation',
        entry: 'swiglu_backward',
        dtype,
        uniforms: new Uint32Array([dgate.size, g.d, g.offset, g.stride, u.offset, u.stride, d.layout.offset, d.layout.stride]),
        buffers: [gate.storage.buffer, up.storage.buffer, d.t.storage.buffer, dgate.storage.buffer, dup.storage.buffer],
        workgroups: grid1d(dgate.size),
        label: 'swiglu.backward',
      });
    }
    d.tmp?.release();
    return [dgate, dup];
  },
});
