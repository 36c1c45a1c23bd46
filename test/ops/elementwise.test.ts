import { describe, it } from 'vitest';
import * as W from '../../src/node.ts';
import { map, zip, where as refWhere, erf, sigmoid, gelu, geluTanh } from '../reference/nd.ts';
import { checkOp } from '../helpers/check.ts';
import { useDevice } from '../helpers/device.ts';

useDevice();

const unary: Array<[string, (x: W.Tensor) => W.Tensor, (v: number) => number, number, number]> = [
  ['neg', W.neg, (v) => -v, -2, 2],
  ['exp', W.exp, Math.exp, -2, 2],
  ['log', W.log, Math.log, 0.2, 3],
  ['sqrt', W.sqrt, Math.sqrt, 0.2, 3],
  ['rsqrt', W.rsqrt, (v) => 1 / Math.sqrt(v), 0.3, 3],
  ['tanh', W.tanh, Math.tanh, -3, 3],
  ['sigmoid', W.sigmoid, sigmoid, -5, 5],
  ['silu', W.silu, (v) => v * sigmoid(v), -4, 4],
  ['gelu', W.gelu, gelu, -4, 4],
  ['gelu_tanh', W.geluTanh, geluTanh, -4, 4],
  ['relu', W.relu, (v) => Math.max(v, 0), -2, 2],
  ['abs', W.abs, Math.abs, -2, 2],
  ['square', W.square, (v) => v * v, -2, 2],
];

describe('unary ops', () => {
  for (const [name, fn, ref, lo, hi] of unary) {
    it(`${name}: odd shape, forward + backward`, async () => {
      await checkOp({ name, inputs: [{ shape: [3, 37], lo, hi }], gpu: fn, ref: (x) => map(x, ref) });
    });
  }
  it('non-contiguous (transposed) input', async () => {
    await checkOp({ name: 'exp(transposed)', inputs: [{ shape: [5, 7], transposed: true }], gpu: W.exp, ref: (x) => map(x, Math.exp) });
  });
  it('size-1 and empty edges', async () => {
    await checkOp({ name: 'tanh 1', inputs: [{ shape: [1] }], gpu: W.tanh, ref: (x) => map(x, Math.tanh) });
    await checkOp({ name: 'tanh empty', inputs: [{ shape: [0, 3] }], gpu: W.tanh, ref: (x) => map(x, Math.tanh) });
  });
  it('scalar-parameter ops: affine, powScalar, clamp', async () => {
    await checkOp({ name: 'affine', inputs: [{ shape: [4, 9] }], gpu: (x) => W.affine(x, 2.5, -1), ref: (x) => map(x, (v) => 2.5 * v - 1) });
    await checkOp({ name: 'pow3', inputs: [{ shape: [4, 9], lo: -2, hi: 2 }], gpu: (x) => W.powScalar(x, 3), ref: (x) => map(x, (v) => v ** 3) });
    await checkOp({ name: 'pow1.5', inputs: [{ shape: [4, 9], lo: 0.2, hi: 2 }], gpu: (x) => W.powScalar(x, 1.5), ref: (x) => map(x, (v) => v ** 1.5) });
    await checkOp({ name: 'clamp', inputs: [{ shape: [50], lo: -2, hi: 2 }], gpu: (x) => W.clamp(x, -0.5, 0.7), ref: (x) => map(x, (v) => Math.min(0.7, Math.max(-0.5, v))) });
  });
  it('erf reference is accurate (sanity of the reference itself)', () => {
    const cases: Array<[number, number]> = [[0.5, 0.5204998778130465], [1, 0.8427007929497149], [2.5, 0.9995930479825550], [-1.3, -0.9340079449406524]];
    for (const [x, e] of cases) if (Math.abs(erf(x) - e) > 1e-12) throw new Error(`erf(${x}) = ${erf(x)}`);
  });
});

describe('binary ops with broadcasting', () => {
  const bin: Array<[string, (a: W.Tensor, b: W.Tensor) => W.Tensor, (x: number, y: number) => number, number, number]> = [
    ['add', W.add, (x, y) => x + y, -2, 2],
    ['sub', W.sub, (x, y) => x - y, -2, 2],
    ['mul', W.mul, (x, y) => x * y, -2, 2],
    ['div', W.div, (x, y) => x / y, 0.5, 2],
    ['pow', W.pow, (x, y) => x ** y, 0.5, 2],
    ['maximum', W.maximum, Math.max, -2, 2],
    ['minimum', W.minimum, Math.min, -2, 2],
  ];
  for (const [name, fn, ref, lo, hi] of bin) {
    it(`${name}: same shape, row and column broadcast, leading dims`, async () => {
      await checkOp({ name, inputs: [{ shape: [3, 5], lo, hi }, { shape: [3, 5], lo, hi }], gpu: fn, ref: (a, b) => zip(a, b, ref) });
      await checkOp({ name: `${name} bcast`, inputs: [{ shape: [4, 1, 6], lo, hi }, { shape: [3, 1], lo, hi }], gpu: fn, ref: (a, b) => zip(a, b, ref) });
      await checkOp({ name: `${name} lead`, inputs: [{ shape: [7], lo, hi }, { shape: [2, 3, 7], lo, hi, transposed: true }], gpu: fn, ref: (a, b) => zip(a, b, ref) });
    });
  }
  it('maximum splits the gradient on ties', async () => {
    await checkOp({
      name: 'maximum ties',
      inputs: [{ shape: [4], data: [1, 2, 3, 4] }, { shape: [4], data: [1, 0, 3, 5] }],
      gpu: W.maximum,
      ref: (a, b) => zip(a, b, Math.max),
      fdTol: 0, // finite differences are undefined at ties
      gradTol: 0.6, // reference FD at a tie gives ½ as well; keep loose only for the tie elements
    });
  });
  it('comparisons return 0/1 masks and where() selects with gradients', async () => {
    await checkOp({ name: 'gt', inputs: [{ shape: [3, 4], grad: false }, { shape: [4], grad: false }], gpu: W.gt, ref: (a, b) => zip(a, b, (x, y) => (x > y ? 1 : 0)) });
    await checkOp({
      name: 'where',
      inputs: [{ shape: [3, 1], data: [1, 0, 1], grad: false }, { shape: [3, 4] }, { shape: [4] }],
      gpu: W.where,
      ref: refWhere,
    });
  });
});
