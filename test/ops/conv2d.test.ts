// conv2d over packed sequences of [F, C_in] frames (the audio encoder's 2-D stem): forward
// and backward (x, weight, bias) against a direct float64 loop and finite differences.
import { describe, expect, it } from 'vitest';
import * as W from '../../src/node.ts';
import { conv2d as refConv2d } from '../reference/conv.ts';
import { checkOp } from '../helpers/check.ts';
import { useDevice } from '../helpers/device.ts';

useDevice();

function check(name: string, cu: number[], F: number, cin: number, cout: number, k: [number, number], stride: [number, number], padding: [number, number], bias = true) {
  const T = cu[cu.length - 1];
  return checkOp({
    name,
    inputs: [{ shape: [T, F * cin] }, { shape: [cout, cin, k[0], k[1]] }, ...(bias ? [{ shape: [cout] }] : [])],
    gpu: (x, w, b) => W.conv2d(x, w, b ?? null, { freq: F, stride, padding, cuSeqlens: cu }),
    ref: (x, w, b) => refConv2d(x, w, b ?? null, F, stride, padding, cu),
    fdSamples: 3,
  });
}

describe('conv2d over packed sequences', () => {
  it('3×3, stride 1, padding 1, one channel in, one sequence', async () => {
    await check('conv2d 3x3 s1 p1', [0, 7], 6, 1, 3, [3, 3], [1, 1], [1, 1]);
  });
  it('stride (2, 2), padding 1, two channels, three sequences (lengths 5, 1, 6): no leakage', async () => {
    await check('conv2d s2 packed', [0, 5, 6, 12], 9, 2, 4, [3, 3], [2, 2], [1, 1]);
  });
  it('stride (1, 2), non-square kernel, no bias; no padding', async () => {
    await check('conv2d 2x4 s(1,2)', [0, 6, 10], 8, 3, 2, [2, 4], [1, 2], [0, 1], false);
    await check('conv2d 3x3 p0', [0, 5], 5, 1, 2, [3, 3], [1, 1], [0, 0]);
  });
  it('stacks: the output row layout is the next input layout (Conformer-style stem)', async () => {
    const cu = [0, 9, 14];
    const x = W.randn([14, 12]);
    const w1 = W.randn([4, 1, 3, 3]);
    const w2 = W.randn([5, 4, 3, 3]);
    const h = W.conv2d(x, w1, null, { freq: 12, stride: [1, 2], padding: [1, 1], cuSeqlens: cu });
    expect(h.shape).toEqual([14, 6 * 4]);
    const y = W.conv2d(h, w2, null, { freq: 6, stride: [2, 2], padding: [1, 1], cuSeqlens: cu });
    expect(y.shape).toEqual([W.conv2dCuSeqlens(cu, 3, 2, 1)[2], 3 * 5]);
    expect(W.conv2dOutputFreq(40, 3, 2, 1)).toBe(20);
  });
  it('bad input names the problem', () => {
    const x = W.zeros([4, 10]);
    expect(() => W.conv2d(x, W.zeros([2, 1, 3, 3]), null, { freq: 4 })).toThrow(/rows have 10 values but freq 4 × 1 input channels needs 4/);
    expect(() => W.conv2d(x, W.zeros([2, 3, 3]), null, { freq: 10 })).toThrow(/weight must be \[C_out, C_in, Kt, Kf\]/);
    expect(() => W.conv2d(x, W.zeros([2, 1, 3, 3]), W.zeros([3]), { freq: 10 })).toThrow(/bias must be \[2\]/);
    expect(() => W.conv2d(W.zeros([4, 2]), W.zeros([2, 1, 3, 3]), null, { freq: 2 })).toThrow(/freq 2 is too small for kernel 3/);
  });
});
