// The interim main job of `npm start`: an MLP learns to classify three interleaved
// spirals (a classic problem no linear model can solve) with the engine's own autograd
// and fused AdamW, printing the loss and accuracy as it trains.

import { Tensor } from '../tensor/tensor.ts';
import { scope, scopeAsync } from '../tensor/scope.ts';
import { backward, noGrad } from '../autograd/index.ts';
import { Generator, gelu, logSoftmax, mean, neg, mul, sum } from '../ops/index.ts';
import { Linear, Module } from '../nn/index.ts';
import { AdamW } from '../optim/index.ts';
import type { Device } from '../device/index.ts';

export interface SpiralOptions {
  steps: number;
  hidden: number;
  pointsPerClass: number;
  lr: number;
  seed: number;
  log: (line: string) => void;
}

/** Three spirals of noisy points, deterministic for a seed. */
export function makeSpirals(perClass: number, seed: number): { x: Float32Array; y: Int32Array } {
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
  const n = perClass * 3;
  const x = new Float32Array(n * 2);
  const y = new Int32Array(n);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < perClass; i++) {
      const r = i / perClass;
      const t = c * 4 + 4 * r + (rand() - 0.5) * 0.4;
      const k = c * perClass + i;
      x[2 * k] = r * Math.sin(t);
      x[2 * k + 1] = r * Math.cos(t);
      y[k] = c;
    }
  }
  return { x, y };
}

class MLP extends Module {
  readonly l1: Linear;
  readonly l2: Linear;
  readonly l3: Linear;
  constructor(hidden: number, gen: Generator) {
    super();
    this.l1 = this.child('l1', new Linear(2, hidden, { generator: gen }));
    this.l2 = this.child('l2', new Linear(hidden, hidden, { generator: gen }));
    this.l3 = this.child('l3', new Linear(hidden, 3, { generator: gen }));
  }
  forward(x: Tensor): Tensor {
    return this.l3.forward(gelu(this.l2.forward(gelu(this.l1.forward(x)))));
  }
}

export async function trainSpirals(device: Device, o: SpiralOptions): Promise<{ loss: number; accuracy: number; seconds: number }> {
  const { x, y } = makeSpirals(o.pointsPerClass, o.seed);
  const n = y.length;
  const xT = Tensor.fromArray(x, [n, 2], 'f32', device);
  // One-hot targets: the loss is −mean(Σ onehot · log_softmax(logits)).
  const onehot = new Float32Array(n * 3);
  y.forEach((c, i) => (onehot[i * 3 + c] = 1));
  const yT = Tensor.fromArray(onehot, [n, 3], 'f32', device);
  const model = new MLP(o.hidden, new Generator(o.seed));
  const opt = new AdamW(model.trainableParameters(), { lr: o.lr, weightDecay: 0 });
  o.log(`spiral demo: ${n} points, MLP 2→${o.hidden}→${o.hidden}→3 (${model.numParameters()} parameters), AdamW lr ${o.lr}, ${o.steps} steps`);
  const t0 = performance.now();
  let pending: Tensor | null = null;
  let lossValue = NaN;
  for (let step = 1; step <= o.steps; step++) {
    const loss = scope(() => {
      const logp = logSoftmax(model.forward(xT));
      const l = neg(mean(sum(mul(logp, yT), 1)));
      backward(l);
      opt.step();
      opt.zeroGrad();
      return l;
    });
    // Read the loss one step late so the GPU never idles waiting for the host.
    if (pending) {
      const v = await pending.item();
      pending.release();
      if ((step - 1) % Math.max(1, Math.floor(o.steps / 10)) === 0 || step - 1 === 1) {
        o.log(`  step ${String(step - 1).padStart(4)}  loss ${v.toFixed(4)}  (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      }
      lossValue = v;
    }
    pending = loss;
  }
  if (pending) {
    lossValue = await pending.item();
    pending.release();
  }
  const accuracy = await scopeAsync(async () => {
      const logits = await noGrad(() => model.forward(xT)).toArray();
      let correct = 0;
      for (let i = 0; i < n; i++) {
        const row = [logits[i * 3], logits[i * 3 + 1], logits[i * 3 + 2]];
        if (row.indexOf(Math.max(...row)) === y[i]) correct++;
      }
      return correct / n;
    });
  const seconds = (performance.now() - t0) / 1000;
  o.log(`  final loss ${lossValue.toFixed(4)}, training accuracy ${(accuracy * 100).toFixed(1)}% in ${seconds.toFixed(1)} s`);
  opt.dispose();
  model.dispose();
  xT.release();
  yT.release();
  return { loss: lossValue, accuracy, seconds };
}
