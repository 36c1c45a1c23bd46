// The playground's model and training loop, free of any DOM code so it also runs in
// Node (tests) on the same engine: a small MLP classifying a 2-D spiral, trained with
// plain SGD written with engine ops under noGrad.
//
// Ownership: parameters are long-lived tensors owned here. Each step's forward runs in a
// scope (intermediates are freed when it closes; the loss survives), backward frees
// what autograd saved, and the update replaces every parameter by a new tensor and
// releases the old one and its gradient, so the pool's live bytes stay flat.

import {
  Tensor,
  add,
  backward,
  keep,
  logSoftmax,
  matmul,
  mul,
  mulScalar,
  noGrad,
  scope,
  softmax,
  sub,
  sum,
  tanh,
  type Device,
} from '../src/index.ts';

/** A small seeded PRNG (mulberry32) so data and initial weights are the same everywhere. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Spiral {
  /** [n, 2] point coordinates in [-1, 1]. */
  x: Float32Array;
  /** [n] class of each point. */
  label: Int32Array;
  /** [n, classes] one-hot labels. */
  onehot: Float32Array;
  n: number;
  classes: number;
}

/** The classic interleaved spirals (as in CS231n): `classes` arms of `perClass` noisy points. */
export function makeSpiral(perClass = 100, classes = 3, seed = 1): Spiral {
  const r = rng(seed);
  const n = perClass * classes;
  const x = new Float32Array(n * 2);
  const label = new Int32Array(n);
  const onehot = new Float32Array(n * classes);
  for (let c = 0; c < classes; c++) {
    for (let i = 0; i < perClass; i++) {
      const k = c * perClass + i;
      const rad = i / (perClass - 1);
      // Box-Muller noise on the angle.
      const noise = Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r()) * 0.2;
      const theta = (c * 4 * Math.PI) / classes + rad * 4 + noise;
      x[2 * k] = rad * Math.sin(theta);
      x[2 * k + 1] = rad * Math.cos(theta);
      label[k] = c;
      onehot[k * classes + c] = 1;
    }
  }
  return { x, label, onehot, n, classes };
}

export interface TrainerOptions {
  hidden?: number;
  lr?: number;
  seed?: number;
  /** Side of the grid of points the decision regions are evaluated on. */
  grid?: number;
}

export interface StepResult {
  step: number;
  loss: number;
}

export interface EvalResult {
  /** Accuracy on the training points. */
  accuracy: number;
  /** [grid*grid, classes] class probabilities over [-1,1]², row-major with y going down. */
  probs: Float32Array;
  grid: number;
}

const PARAM_NAMES = ['w1', 'b1', 'w2', 'b2', 'w3', 'b3'] as const;
type ParamName = (typeof PARAM_NAMES)[number];

export class SpiralTrainer {
  readonly data: Spiral;
  readonly hidden: number;
  readonly grid: number;
  lr: number;
  step = 0;
  private params = new Map<ParamName, Tensor>();
  private x: Tensor | null = null;
  private y: Tensor | null = null;
  private evalX: Tensor | null = null;

  constructor(
    readonly device: Device,
    opts: TrainerOptions = {},
  ) {
    this.hidden = opts.hidden ?? 32;
    this.lr = opts.lr ?? 1;
    this.grid = opts.grid ?? 48;
    this.data = makeSpiral(100, 3, 1);
    this.reset(opts.seed ?? 7);
  }

  /** Fresh parameters (Xavier-style uniform init from a seeded PRNG) and data on the GPU. */
  reset(seed = 7): void {
    this.disposeTensors();
    const r = rng(seed);
    const h = this.hidden;
    const c = this.data.classes;
    const init = (rows: number, cols: number) => {
      const a = Math.sqrt(6 / (rows + cols));
      return Float32Array.from({ length: rows * cols }, () => (r() * 2 - 1) * a);
    };
    const shapes: Record<ParamName, [number[], Float32Array]> = {
      w1: [[2, h], init(2, h)],
      b1: [[h], new Float32Array(h)],
      w2: [[h, h], init(h, h)],
      b2: [[h], new Float32Array(h)],
      w3: [[h, c], init(h, c)],
      b3: [[c], new Float32Array(c)],
    };
    for (const name of PARAM_NAMES) {
      const [shape, values] = shapes[name];
      const t = Tensor.fromArray(values, shape, 'f32', this.device);
      t.requiresGrad = true;
      t.name = name;
      this.params.set(name, t);
    }
    this.x = Tensor.fromArray(this.data.x, [this.data.n, 2], 'f32', this.device);
    this.y = Tensor.fromArray(this.data.onehot, [this.data.n, c], 'f32', this.device);
    // Evaluation input: the training points, then a grid over [-1, 1]².
    const g = this.grid;
    const ev = new Float32Array((this.data.n + g * g) * 2);
    ev.set(this.data.x);
    for (let j = 0; j < g; j++) {
      for (let i = 0; i < g; i++) {
        const k = this.data.n + j * g + i;
        ev[2 * k] = -1 + (2 * (i + 0.5)) / g;
        ev[2 * k + 1] = 1 - (2 * (j + 0.5)) / g;
      }
    }
    this.evalX = Tensor.fromArray(ev, [this.data.n + g * g, 2], 'f32', this.device);
    this.step = 0;
  }

  private p(name: ParamName): Tensor {
    return this.params.get(name)!;
  }

  private logits(x: Tensor): Tensor {
    const h1 = tanh(add(matmul(x, this.p('w1')), this.p('b1')));
    const h2 = tanh(add(matmul(h1, this.p('w2')), this.p('b2')));
    return add(matmul(h2, this.p('w3')), this.p('b3'));
  }

  /** One full-batch SGD step; resolves with the loss before the update. */
  async trainStep(): Promise<StepResult> {
    const n = this.data.n;
    // Cross-entropy: -(1/n) Σ onehot · log_softmax(logits).
    const loss = scope(() => mulScalar(sum(mul(logSoftmax(this.logits(this.x!)), this.y!)), -1 / n), 'forward');
    backward(loss);
    this.sgdUpdate();
    // The read is queued after the update's dispatches: one submit, one wait per step.
    const value = await loss.item();
    loss.release();
    this.step++;
    return { step: this.step, loss: value };
  }

  /** p ← p − lr·∇p for every parameter, as new tensors; the old ones and the gradients are released. */
  private sgdUpdate(): void {
    noGrad(() => {
      for (const name of PARAM_NAMES) {
        const p = this.p(name);
        const g = p.grad;
        if (!g) throw new Error(`parameter '${name}' got no gradient`);
        const next = scope(() => keep(sub(p, mulScalar(g, this.lr))), 'sgd');
        g.release();
        p.grad = null;
        p.release();
        next.requiresGrad = true;
        next.name = name;
        this.params.set(name, next);
      }
    });
  }

  /** Class probabilities over the grid and accuracy on the training points. */
  async evaluate(): Promise<EvalResult> {
    const probsT = noGrad(() => scope(() => softmax(this.logits(this.evalX!)), 'eval'));
    const probs = (await probsT.toArray()) as Float32Array;
    probsT.release();
    const { n, classes, label } = this.data;
    let correct = 0;
    for (let i = 0; i < n; i++) {
      let best = 0;
      for (let c = 1; c < classes; c++) if (probs[i * classes + c] > probs[i * classes + best]) best = c;
      if (best === label[i]) correct++;
    }
    return { accuracy: correct / n, probs: probs.subarray(n * classes), grid: this.grid };
  }

  private disposeTensors(): void {
    for (const t of this.params.values()) {
      t.grad?.release();
      t.release();
    }
    this.params.clear();
    for (const t of [this.x, this.y, this.evalX]) t?.release();
    this.x = this.y = this.evalX = null;
  }

  dispose(): void {
    this.disposeTensors();
  }
}
