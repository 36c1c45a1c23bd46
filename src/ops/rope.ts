// Rotary position embedding (RoPE), rotate-half convention as in Llama / Hugging Face:
//   y = x·cos(pos·f) + rotate_half(x)·sin(pos·f),  f_i = theta^(−2i/r), i < r/2
// on packed tokens x [T, H, D] with per-token integer positions (packed documents pass
// positions that restart at 0 for each document). The backward is the rotation by −angle.
// Angles are reduced modulo 2π exactly in f32 (see shaders/rope.wgsl), so positions up to
// 2^24 keep full accuracy.

import { Tensor, fmtShape } from '../tensor/tensor.ts';
import { keep } from '../tensor/scope.ts';
import type { Device } from '../device/index.ts';
import { defineOp, opError } from './registry.ts';
import { contiguousK, floatKernelType } from './kernels.ts';
import { grid1d } from './launch.ts';

export interface RopeOptions {
  /** Base of the frequencies (default 10000). */
  theta?: number;
  /** Leading dims of each head that rotate (even, ≤ D; default D). The rest pass through. */
  rotaryDim?: number;
}

/** Largest |position| the exact angle reduction supports. */
export const ROPE_MAX_POSITION = 2 ** 24 - 1;

/** v as four f32-exact pieces of ≤ 12 significant bits each, summing to v within 2^-48·|v|. */
function split12(v: number): [number, number, number, number] {
  const out: number[] = [];
  let r = v;
  for (let k = 0; k < 4; k++) {
    if (r === 0) {
      out.push(0);
      continue;
    }
    let e = Math.floor(Math.log2(Math.abs(r)));
    while (Math.abs(r) >= 2 ** (e + 1)) e++;
    while (Math.abs(r) < 2 ** e) e--;
    const q = 2 ** (e - 11);
    const piece = Math.round(r / q) * q;
    out.push(piece);
    r -= piece;
  }
  return out as [number, number, number, number];
}

const tables = new WeakMap<Device, Map<string, Tensor>>();

/** Per-frequency turns per position (f_i / 2π) as split pieces, cached per device. */
function turnTable(device: Device, theta: number, r: number): Tensor {
  let byKey = tables.get(device);
  if (!byKey) tables.set(device, (byKey = new Map()));
  const key = `${theta}|${r}`;
  let t = byKey.get(key);
  if (!t || t.released) {
    const half = r / 2;
    const data = new Float32Array(half * 4);
    for (let i = 0; i < half; i++) data.set(split12(theta ** (-(2 * i) / r) / (2 * Math.PI)), 4 * i);
    // Long-lived: never owned by a scope.
    t = keep(Tensor.fromArray(data, [half, 4], 'f32', device));
    byKey.set(key, t);
  }
  return t;
}

interface RopeArgs {
  theta: number;
  r: number;
}

function ropeK(op: string, x: Tensor, positions: Tensor, a: RopeArgs, sign: 1 | -1): Tensor {
  const dtype = floatKernelType(op, x);
  const [T, H, D] = x.shape;
  const y = Tensor.empty(x.shape, x.dtype, x.device);
  const half = a.r / 2;
  const perHead = D - half;
  const n = T * H * perHead;
  if (n === 0) return y;
  const pos = positions.strides[0] === 1 || T <= 1 ? positions : contiguousK(positions);
  const table = turnTable(x.device, a.theta, a.r);
  x.device.dispatch({
    kernel: 'rope',
    constants: { SIGN: sign },
    dtype,
    uniforms: new Uint32Array([T, H, D, half, x.strides[0], x.strides[1], x.strides[2], x.offset, perHead, pos.offset, 0, 0]),
    buffers: [x.storage.buffer, pos.storage.buffer, table.storage.buffer, y.storage.buffer],
    workgroups: grid1d(n),
    label: op,
  });
  if (pos !== positions) pos.release();
  return y;
}

/**
 * RoPE on x [T, H, D] (float, any strides; output contiguous) with positions: i32 [T].
 * rotaryDim (default D) must be even; frequencies theta^(−2i/rotaryDim) as in Hugging
 * Face's partial rotary. |positions| must stay below 2^24.
 */
export const rope: (x: Tensor, positions: Tensor, opts?: RopeOptions) => Tensor = defineOp({
  name: 'rope',
  forward(ctx, x: Tensor, positions: Tensor, opts: RopeOptions = {}) {
    floatKernelType('rope', x);
    if (x.rank !== 3) throw opError('rope', `x must be [tokens, heads, head_dim], got rank ${x.rank} ${fmtShape(x.shape)}`, x, positions);
    const [T, , D] = x.shape;
    if (positions.dtype !== 'i32') throw opError('rope', `positions must be an i32 tensor, got ${positions.dtype}`, x, positions);
    if (positions.rank !== 1 || positions.shape[0] !== T) {
      throw opError('rope', `positions must have shape [${T}] (one per token of x ${fmtShape(x.shape)}), got ${fmtShape(positions.shape)}`, x, positions);
    }
    const theta = opts.theta ?? 10000;
    if (!(theta > 0 && Number.isFinite(theta))) throw opError('rope', `theta must be a positive number, got ${theta}`, x, positions);
    const r = opts.rotaryDim ?? D;
    if (!Number.isInteger(r) || r <= 0 || r > D || r % 2 !== 0) {
      const what = opts.rotaryDim === undefined ? `head_dim ${D} (the rotary dim by default)` : `rotaryDim ${r}`;
      throw opError('rope', `${what} must be an even integer in [2, ${D}]`, x, positions);
    }
    const a: RopeArgs = { theta, r };
    ctx.save(positions);
    ctx.attrs.a = a;
    return ropeK('rope', x, positions, a, 1);
  },
  backward: (ctx, gy) => [ropeK('rope.backward', gy, ctx.saved[0], ctx.attrs.a as RopeArgs, -1), null],
});
