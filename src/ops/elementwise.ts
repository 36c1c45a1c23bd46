// Elementwise ops with broadcasting, each forward with its backward.

import type { Tensor } from '../tensor/tensor.ts';
import { defineOp, NON_DIFFERENTIABLE, opError } from './registry.ts';
import { BINARY, UNARY, binaryK, selectK, unaryK } from './kernels.ts';
import { sumToShape } from './reduce.ts';

// ------------------------------------------------------------------ unary

type UnaryName = keyof typeof UNARY;

/** A unary op whose derivative is computed by a fused backward kernel from the saved input or output. */
function unaryWithGradKernel(name: string, fwd: UnaryName, gradCode: number, from: 'input' | 'output') {
  return defineOp({
    name,
    forward(ctx, x: Tensor) {
      const y = unaryK(name, UNARY[fwd], x);
      ctx.save(from === 'input' ? x : y);
      return y;
    },
    backward(ctx, gy) {
      return [binaryK(`${name}.backward`, gradCode, ctx.saved[0], gy)];
    },
  });
}

export const neg = defineOp({
  name: 'neg',
  forward: (_ctx, x: Tensor) => unaryK('neg', UNARY.neg, x),
  backward: (_ctx, gy) => [unaryK('neg.backward', UNARY.neg, gy)],
});

export const exp = defineOp({
  name: 'exp',
  forward(ctx, x: Tensor) {
    const y = unaryK('exp', UNARY.exp, x);
    ctx.save(y);
    return y;
  },
  backward: (ctx, gy) => [binaryK('exp.backward', BINARY.mul, gy, ctx.saved[0])],
});

export const log = defineOp({
  name: 'log',
  forward(ctx, x: Tensor) {
    ctx.save(x);
    return unaryK('log', UNARY.log, x);
  },
  backward: (ctx, gy) => [binaryK('log.backward', BINARY.div, gy, ctx.saved[0])],
});

export const sqrt = defineOp({
  name: 'sqrt',
  forward(ctx, x: Tensor) {
    const y = unaryK('sqrt', UNARY.sqrt, x);
    ctx.save(y);
    return y;
  },
  // d sqrt(x) = 1 / (2 sqrt(x))
  backward: (ctx, gy) => [divScaled(gy, ctx.saved[0], 0.5)],
});

export const rsqrt = defineOp({
  name: 'rsqrt',
  forward(ctx, x: Tensor) {
    const y = unaryK('rsqrt', UNARY.rsqrt, x);
    ctx.save(x, y);
    return y;
  },
  // d x^-1/2 = -1/2 x^-3/2 = -0.5 · y / x
  backward(ctx, gy) {
    const [x, y] = ctx.saved;
    const t = binaryK('rsqrt.backward', BINARY.div, y, x);
    return [binaryK('rsqrt.backward', BINARY.mul, gy, unaryK('rsqrt.backward', UNARY.affine, t, -0.5, 0))];
  },
});

function divScaled(a: Tensor, b: Tensor, s: number): Tensor {
  return unaryK('scale', UNARY.affine, binaryK('div', BINARY.div, a, b), s, 0);
}

export const tanh = unaryWithGradKernel('tanh', 'tanh', BINARY.tanhGrad, 'output');
export const sigmoid = unaryWithGradKernel('sigmoid', 'sigmoid', BINARY.sigmoidGrad, 'output');
export const silu = unaryWithGradKernel('silu', 'silu', BINARY.siluGrad, 'input');
export const gelu = unaryWithGradKernel('gelu', 'gelu', BINARY.geluGrad, 'input');
export const geluTanh = unaryWithGradKernel('gelu_tanh', 'geluTanh', BINARY.geluTanhGrad, 'input');
export const relu = unaryWithGradKernel('relu', 'relu', BINARY.reluGrad, 'input');
export const abs = unaryWithGradKernel('abs', 'abs', BINARY.absGrad, 'input');

export const square = defineOp({
  name: 'square',
  forward(ctx, x: Tensor) {
    ctx.save(x);
    return unaryK('square', UNARY.square, x);
  },
  backward: (ctx, gy) => [mulScaled(gy, ctx.saved[0], 2)],
});

function mulScaled(a: Tensor, b: Tensor, s: number): Tensor {
  return unaryK('scale', UNARY.affine, binaryK('mul', BINARY.mul, a, b), s, 0);
}

/** x · scale + shift with scalar constants. */
export const affine = defineOp({
  name: 'affine',
  forward(ctx, x: Tensor, scale: number, shift: number = 0) {
    ctx.attrs.scale = scale;
    return unaryK('affine', UNARY.affine, x, scale, shift);
  },
  backward: (ctx, gy) => [unaryK('affine.backward', UNARY.affine, gy, ctx.attrs.scale as number, 0)],
});

export const mulScalar = (x: Tensor, s: number): Tensor => affine(x, s, 0);
export const addScalar = (x: Tensor, s: number): Tensor => affine(x, 1, s);

/** x ** p for a scalar exponent. */
export const powScalar = defineOp({
  name: 'pow_scalar',
  forward(ctx, x: Tensor, p: number) {
    ctx.save(x);
    ctx.attrs.p = p;
    return unaryK('pow_scalar', UNARY.powScalar, x, p);
  },
  backward(ctx, gy) {
    const p = ctx.attrs.p as number;
    const d = unaryK('pow_scalar.backward', UNARY.powScalar, ctx.saved[0], p - 1);
    return [mulScaled(gy, d, p)];
  },
});

export const clamp = defineOp({
  name: 'clamp',
  forward(ctx, x: Tensor, lo: number, hi: number) {
    if (!(lo <= hi)) throw opError('clamp', `lower bound ${lo} exceeds upper bound ${hi}`, x);
    ctx.save(x);
    ctx.attrs.lo = lo;
    ctx.attrs.hi = hi;
    return unaryK('clamp', UNARY.clamp, x, lo, hi);
  },
  backward: (ctx, gy) => [binaryK('clamp.backward', BINARY.clampGrad, ctx.saved[0], gy, ctx.attrs.lo as number, ctx.attrs.hi as number)],
});

export const sign = defineOp({
  name: 'sign',
  forward: (_ctx, x: Tensor) => unaryK('sign', UNARY.sign, x),
  backward: NON_DIFFERENTIABLE,
});

// ------------------------------------------------------------------ binary

export const add = defineOp({
  name: 'add',
  forward(ctx, a: Tensor, b: Tensor) {
    ctx.attrs.shapes = [a.shape, b.shape];
    return binaryK('add', BINARY.add, a, b);
  },
  backward(ctx, gy) {
    const [sa, sb] = ctx.attrs.shapes as [number[], number[]];
    return [sumToShape(gy, sa), sumToShape(gy, sb)];
  },
});

export const sub = defineOp({
  name: 'sub',
  forward(ctx, a: Tensor, b: Tensor) {
    ctx.attrs.shapes = [a.shape, b.shape];
    return binaryK('sub', BINARY.sub, a, b);
  },
  backward(ctx, gy) {
    const [sa, sb] = ctx.attrs.shapes as [number[], number[]];
    return [sumToShape(gy, sa), sumToShape(unaryK('sub.backward', UNARY.neg, gy), sb)];
  },
});

export const mul = defineOp({
  name: 'mul',
  forward(ctx, a: Tensor, b: Tensor) {
    ctx.save(a, b);
    return binaryK('mul', BINARY.mul, a, b);
  },
  backward(ctx, gy) {
    const [a, b] = ctx.saved;
    return [
      a.requiresGrad ? sumToShape(binaryK('mul.backward', BINARY.mul, gy, b), a.shape) : null,
      b.requiresGrad ? sumToShape(binaryK('mul.backward', BINARY.mul, gy, a), b.shape) : null,
    ];
  },
});

export const div = defineOp({
  name: 'div',
  forward(ctx, a: Tensor, b: Tensor) {
    ctx.save(a, b);
    return binaryK('div', BINARY.div, a, b);
  },
  backward(ctx, gy) {
    const [a, b] = ctx.saved;
    const ga = binaryK('div.backward', BINARY.div, gy, b);
    // d(a/b)/db = -a/b² = -(gy/b)·(a/b)
    const gb = b.requiresGrad
      ? sumToShape(unaryK('div.backward', UNARY.neg, binaryK('div.backward', BINARY.mul, ga, binaryK('div.backward', BINARY.div, a, b))), b.shape)
      : null;
    return [a.requiresGrad ? sumToShape(ga, a.shape) : null, gb];
  },
});

export const pow = defineOp({
  name: 'pow',
  forward(ctx, a: Tensor, b: Tensor) {
    const y = binaryK('pow', BINARY.pow, a, b);
    ctx.save(a, b, y);
    return y;
  },
  backward(ctx, gy) {
    const [a, b, y] = ctx.saved;
    // d/da = b·a^(b-1), d/db = a^b·ln(a)
    const bm1 = unaryK('pow.backward', UNARY.affine, b, 1, -1);
    const ga = binaryK('pow.backward', BINARY.mul, gy, binaryK('pow.backward', BINARY.mul, b, binaryK('pow.backward', BINARY.pow, a, bm1)));
    const gb = b.requiresGrad
      ? sumToShape(binaryK('pow.backward', BINARY.mul, gy, binaryK('pow.backward', BINARY.mul, y, unaryK('pow.backward', UNARY.log, a))), b.shape)
      : null;
    return [a.requiresGrad ? sumToShape(ga, a.shape) : null, gb];
  },
});

/**
 * Elementwise max/min. The gradient goes to the winning input; ties split it evenly
 * (as PyTorch's maximum/minimum do).
 */
function extremumPair(name: 'maximum' | 'minimum', op: number, wins: number) {
  const bw = `${name}.backward`;
  return defineOp({
    name,
    forward(ctx, a: Tensor, b: Tensor) {
      ctx.save(a, b);
      return binaryK(name, op, a, b);
    },
    backward(ctx, gy) {
      const [a, b] = ctx.saved;
      const win = binaryK(bw, wins, a, b);
      const eq = binaryK(bw, BINARY.eq, a, b);
      const wa = binaryK(bw, BINARY.axpby, win, eq, 1, 0.5); // 1 where a wins, ½ on ties
      const wb = unaryK(bw, UNARY.affine, binaryK(bw, BINARY.add, win, unaryK(bw, UNARY.affine, eq, 0.5, 0)), -1, 1);
      return [
        a.requiresGrad ? sumToShape(binaryK(bw, BINARY.mul, gy, wa), a.shape) : null,
        b.requiresGrad ? sumToShape(binaryK(bw, BINARY.mul, gy, wb), b.shape) : null,
      ];
    },
  });
}
export const maximum = extremumPair('maximum', BINARY.maximum, BINARY.gt);
export const minimum = extremumPair('minimum', BINARY.minimum, BINARY.lt);

function comparison(name: string, code: number) {
  return defineOp({ name, forward: (_ctx, a: Tensor, b: Tensor) => binaryK(name, code, a, b), backward: NON_DIFFERENTIABLE });
}
/** Comparisons return 1/0 masks of the inputs' float dtype. */
export const eq = comparison('eq', BINARY.eq);
export const gt = comparison('gt', BINARY.gt);
export const ge = comparison('ge', BINARY.ge);
export const lt = comparison('lt', BINARY.lt);
export const le = comparison('le', BINARY.le);

/** cond != 0 ? a : b, broadcasting all three. The mask gets no gradient. */
export const where = defineOp({
  name: 'where',
  forward(ctx, cond: Tensor, a: Tensor, b: Tensor) {
    ctx.save(cond);
    ctx.attrs.shapes = [a.shape, b.shape];
    return selectK('where', cond, a, b);
  },
  backward(ctx, gy) {
    const [cond] = ctx.saved;
    const [sa, sb] = ctx.attrs.shapes as [number[], number[]];
    const zero = unaryK('where.backward', UNARY.affine, gy, 0, 0);
    return [null, sumToShape(selectK('where.backward', cond, gy, zero), sa), sumToShape(selectK('where.backward', cond, zero, gy), sb)];
  },
});
