// A small MLP forward + backward on fixed inputs, written against the engine's public
// API passed in as a parameter, so the very same function runs in Node (Dawn) and in
// the page (the playground/dist/webomni.js bundle). Imports here are types only: the
// test bundles this file for the page without pulling the engine in a second time.

import type * as Engine from '../../src/index.ts';

export interface MlpResult {
  loss: number;
  grads: Record<string, number[]>;
  /** Pool live buffers after everything was released (should equal the count before). */
  liveBuffersBefore: number;
  liveBuffersAfter: number;
}

export const MLP_SHAPES = { batch: 16, inDim: 8, hidden: 24, classes: 5 } as const;

/** Deterministic values in [-scale, scale) from a 32-bit LCG (no Math.random). */
export function lcgValues(n: number, seed: number, scale: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

/**
 * logits = tanh(gelu(x·W1 + b1)·W2 + b2)·W3 + b3
 * loss = mean over the batch of -Σ onehot · logSoftmax(logits)  +  mean(softmax(logits)²)
 * Gradients of all six parameters.
 */
export async function runMlp(E: typeof Engine): Promise<MlpResult> {
  const { batch: B, inDim: D, hidden: H, classes: C } = MLP_SHAPES;
  const device = E.getDevice();
  const liveBuffersBefore = device.pool.snapshot.liveBuffers;
  const spec: Array<[string, number[], number]> = [
    ['w1', [D, H], 0.5],
    ['b1', [H], 0.1],
    ['w2', [H, H], 0.3],
    ['b2', [H], 0.1],
    ['w3', [H, C], 0.4],
    ['b3', [C], 0.1],
  ];
  const params = spec.map(([name, shape, scale], i) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const t = E.Tensor.fromArray(lcgValues(n, 1000 + i, scale), shape);
    t.requiresGrad = true;
    t.name = name;
    return t;
  });
  const [w1, b1, w2, b2, w3, b3] = params;
  const x = E.Tensor.fromArray(lcgValues(B * D, 7, 1.5), [B, D]);
  const onehotValues = new Float32Array(B * C);
  for (let i = 0; i < B; i++) onehotValues[i * C + ((i * 3 + 1) % C)] = 1;
  const onehot = E.Tensor.fromArray(onehotValues, [B, C]);

  const loss = E.scope(() => {
    const h1 = E.gelu(E.add(E.matmul(x, w1), b1));
    const h2 = E.tanh(E.add(E.matmul(h1, w2), b2));
    const logits = E.add(E.matmul(h2, w3), b3);
    const nll = E.mulScalar(E.mean(E.sum(E.mul(E.logSoftmax(logits), onehot), -1)), -1);
    const reg = E.mean(E.square(E.softmax(logits)));
    return E.add(nll, reg);
  }, 'mlp.forward');
  E.backward(loss);
  const lossValue = await loss.item();
  const grads: Record<string, number[]> = {};
  for (const p of params) {
    if (!p.grad) throw new Error(`parameter '${p.name}' got no gradient`);
    grads[p.name!] = Array.from(await p.grad.toArray());
    p.grad.release();
    p.grad = null;
    p.release();
  }
  loss.release();
  x.release();
  onehot.release();
  return { loss: lossValue, grads, liveBuffersBefore, liveBuffersAfter: device.pool.snapshot.liveBuffers };
}
