// Global L2-norm gradient clipping on the GPU, without a host round trip
// (shaders/clip.wgsl): per-gradient partial sums of squares → one deterministic total →
// norm and scale = min(1, maxNorm / (norm + 1e-6)) in 1-element GPU buffers → the scale
// applied to every gradient in place, or handed to a fused optimizer that multiplies its
// gradients by it while updating (no extra pass over the gradients).

import { Tensor, fmtShape } from '../tensor/tensor.ts';
import { keep } from '../tensor/scope.ts';
import type { Device } from '../device/index.ts';
import { fillK } from '../ops/kernels.ts';

const WG = 256;
const CHUNK = WG * 16; // elements per partial sum (PER_THREAD in clip.wgsl)

/** An optimizer whose fused update multiplies each gradient by a GPU-resident scale. */
export interface GradScaled {
  /** 1-element f32 tensor read by the next step() (then released), or null for 1. */
  gradScale: Tensor | null;
}

export interface ClipOptions {
  /**
   * Instead of scaling every gradient in place, hand the scale to this optimizer (AdamW,
   * SGD): its next step() multiplies the gradients by it inside the fused update. The
   * gradients themselves are left unscaled.
   */
  optimizer?: GradScaled;
}

function grid(groups: number): [number, number] {
  return groups <= 65535 ? [groups, 1] : [65535, Math.ceil(groups / 65535)];
}

/**
 * Clip the gradients of `params` (those with a `.grad`) to a global L2 norm of at most
 * `maxNorm`, like torch.nn.utils.clip_grad_norm_. Returns the total norm before clipping
 * as a scalar f32 tensor (read it whenever convenient; nothing here waits on the GPU).
 * A non-finite norm gives scale 0 (inf) or NaN (NaN) — as PyTorch without error_if_nonfinite.
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number, opts: ClipOptions = {}): Tensor {
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm)) throw new RangeError(`clipGradNorm: maxNorm must be a positive number, got ${maxNorm}`);
  const grads: Tensor[] = [];
  let device: Device | null = null;
  for (const p of params) {
    const g = p.grad;
    if (!g) continue;
    g.assertAlive('clipGradNorm');
    if (g.dtype !== 'f32') throw new TypeError(`clipGradNorm: gradient of '${p.name ?? p.id}' is ${g.dtype}; f32 gradients only`);
    if (!g.isContiguous) throw new TypeError(`clipGradNorm: gradient of '${p.name ?? p.id}' ${fmtShape(g.shape)} is not contiguous`);
    if (device && g.device !== device) throw new Error('clipGradNorm: gradients live on different devices');
    device = g.device;
    if (g.size > 0) grads.push(g);
  }
  if (!device) {
    const anyParam = [...params][0];
    return fillK([], 'f32', 0, 0, anyParam?.device);
  }
  const dev = device;
  let slots = 0;
  const slotOf = grads.map((g) => {
    const s = slots;
    slots += Math.ceil(g.size / CHUNK);
    return s;
  });
  const partials = Tensor.empty([Math.max(1, slots)], 'f32', dev);
  const norm = Tensor.empty([], 'f32', dev);
  const scale = Tensor.empty([1], 'f32', dev);
  grads.forEach((g, i) => {
    const u = new ArrayBuffer(16);
    new Uint32Array(u, 0, 3).set([g.size, slotOf[i], g.offset]);
    dev.dispatch({
      kernel: 'clip',
      entry: 'sumsq',
      uniforms: new Uint8Array(u),
      buffers: [g.storage.buffer, partials.storage.buffer],
      workgroups: grid(Math.ceil(g.size / CHUNK)),
      label: 'clip_grad_norm',
    });
  });
  const fu = new ArrayBuffer(16);
  new Uint32Array(fu, 0, 1)[0] = slots;
  new Float32Array(fu, 12, 1)[0] = maxNorm;
  dev.dispatch({
    kernel: 'clip',
    entry: 'finalize',
    uniforms: new Uint8Array(fu),
    buffers: [partials.storage.buffer, norm.storage.buffer, scale.storage.buffer],
    workgroups: [1],
    label: 'clip_grad_norm',
  });
  partials.release();
  if (opts.optimizer) {
    opts.optimizer.gradScale?.release();
    opts.optimizer.gradScale = keep(scale);
    return norm;
  }
  for (const g of grads) {
    const u = new ArrayBuffer(16);
    new Uint32Array(u, 0, 2).set([g.size, g.offset]);
    dev.dispatch({
      kernel: 'clip',
      entry: 'scale',
      uniforms: new Uint8Array(u),
      buffers: [scale.storage.buffer, g.storage.buffer],
      workgroups: grid(Math.ceil(g.size / WG)),
      label: 'clip_grad_norm',
    });
  }
  scale.release();
  return norm;
}

const unitScales = new WeakMap<Device, Tensor>();

/** A cached 1-element tensor holding 1.0: the gradient scale when none was set. */
export function unitGradScale(device: Device): Tensor {
  let t = unitScales.get(device);
  if (!t || t.released) {
    t = keep(fillK([1], 'f32', 1, 0, device));
    unitScales.set(device, t);
  }
  return t;
}
