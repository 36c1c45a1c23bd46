// Mixture-of-experts feed-forward layer (dropless, top-k, SwiGLU experts), usable in a
// TransformerBlock in place of the dense MLP.
//
// Parameter names (what checkpoints and an expert-parallel plan see), under the block's
// `mlp.`:
//   gate.weight                [E, D]      router (Linear, no bias)
//   experts.gate_up_proj       [E, 2F, D]  per expert: rows 0..F-1 gate, F..2F-1 up (Linear layout)
//   experts.down_proj          [E, D, F]   per expert: down projection (Linear layout)
//   shared_experts.{gate,up,down}_proj.weight   always-active SwiGLU MLP (optional)
// The stacked expert tensors shard on dim 0 for expert parallelism.
//
// Every step runs on the GPU (src/ops/moe.ts): router matmul, softmax (or sigmoid), top-k,
// dispatch plan (counting sort), permutation, one grouped GEMM per projection, SwiGLU,
// weighted combine. The auxiliary load-balancing loss (Switch/GShard) and the router
// z-loss are computed alongside and left on the module for the trainer to add.

import { Tensor } from '../tensor/tensor.ts';
import { Module } from './module.ts';
import { Linear } from './linear.ts';
import { MLP } from './mlp.ts';
import { Generator } from '../ops/creation.ts';
import {
  add,
  div,
  matmul,
  mean,
  mul,
  mulScalar,
  reshape,
  sigmoid,
  square,
  sub,
  sum,
  transpose,
} from '../ops/index.ts';
import { scaleK } from '../ops/reduce.ts';
import { contiguousK } from '../ops/kernels.ts';
import { noGrad } from '../autograd/mode.ts';
import { keep } from '../tensor/scope.ts';
import {
  groupedMatmul,
  moeCombine,
  moePermute,
  moePlan,
  moeTopK,
  routerLogSumExp,
  routerSoftmax,
  swigluFused,
  topkGather,
  type MoePlan,
} from '../ops/moe.ts';

export type MoeScoring = 'softmax' | 'sigmoid';

export interface MoeRouting {
  topK: number;
  /** Router score function: softmax over experts (Mixtral, Qwen) or per-expert sigmoid (DeepSeek-V3). */
  scoring?: MoeScoring;
  /** Divide the selected weights by their sum (default true). */
  renormalize?: boolean;
}

export interface MoeLayerOutput {
  /** [T, D] combined expert outputs (without shared experts). */
  y: Tensor;
  /**
   * Switch/GShard load-balancing loss E · Σ_e f_e · P_e, with f_e = (tokens routed to e) /
   * (T·k) — a constant — and P_e the mean router probability of e (softmax scores, or
   * sigmoid scores normalised per token). 1 when perfectly balanced. Shape [].
   */
  auxLoss: Tensor;
  /** Router z-loss: mean over tokens of logsumexp(logits)². Shape []. */
  zLoss: Tensor;
  /** The dispatch plan (per-expert counts and offsets on the GPU). */
  plan: MoePlan;
  /** i32 [T, k] chosen experts. */
  indices: Tensor;
  /** [T, k] combine weights. */
  weights: Tensor;
  /** [T, E] router logits. */
  logits: Tensor;
}

/**
 * One MoE feed-forward layer as a function of its weights: x [T, D], router weight [E, D],
 * gate_up [E, 2F, D], down [E, D, F]. Differentiable in all four.
 */
export function moeLayer(x: Tensor, routerWeight: Tensor, gateUp: Tensor, down: Tensor, r: MoeRouting): MoeLayerOutput {
  const T = x.shape[0];
  const E = routerWeight.shape[0];
  const F = down.shape[2];
  const k = r.topK;
  if (gateUp.shape[0] !== E || down.shape[0] !== E || gateUp.shape[1] !== 2 * F || gateUp.shape[2] !== x.shape[1] || down.shape[1] !== x.shape[1]) {
    throw new Error(
      `moeLayer: expert weights gate_up [${gateUp.shape}] and down [${down.shape}] do not match router [${routerWeight.shape}] and x [${x.shape}]`,
    );
  }
  if (T === 0) throw new Error('moeLayer: no tokens');
  const logits = matmul(x, transpose(routerWeight));
  const scores = r.scoring === 'sigmoid' ? sigmoid(logits) : routerSoftmax(logits);
  const indices = moeTopK(scores, k);
  let weights = topkGather(scores, indices);
  if (r.renormalize ?? true) weights = div(weights, sum(weights, 1, true));
  const plan = moePlan(indices, E);
  const xp = moePermute(x, plan);
  const h = groupedMatmul(xp, gateUp, plan);
  const act = swigluFused(h);
  const yp = groupedMatmul(act, down, plan);
  const y = moeCombine(yp, weights, plan);

  const probs = r.scoring === 'sigmoid' ? div(scores, sum(scores, 1, true)) : scores;
  const frac = scaleK(plan.tokensPerExpert, 1 / (T * k));
  const auxLoss = mulScalar(sum(mul(mean(probs, 0), frac)), E);
  const zLoss = mean(square(routerLogSumExp(logits)));
  return { y, auxLoss, zLoss, plan, indices, weights, logits };
}

export interface MoEOptions extends MoeRouting {
  dim: number;
  experts: number;
  /** Hidden size of each expert. */
  ffnDim: number;
  /** Always-active shared experts (DeepSeek/Qwen style), as one SwiGLU MLP of sharedExperts·sharedFfnDim. */
  sharedExperts?: number;
  sharedFfnDim?: number;
  auxLossCoef?: number;
  zLossCoef?: number;
  generator?: Generator;
  /** Normal(0, std) init; default PyTorch Linear's U(±1/√in). */
  initStd?: number;
}

/** Stacked expert weights: `gate_up_proj` [E, 2F, D] and `down_proj` [E, D, F]. */
export class MoEExperts extends Module {
  constructor(experts: number, dim: number, ffnDim: number, gen: Generator, initStd?: number) {
    super();
    const init = (shape: number[], fanIn: number) =>
      initStd === undefined ? gen.uniform(shape, -1 / Math.sqrt(fanIn), 1 / Math.sqrt(fanIn)) : gen.normal(shape, 0, initStd);
    this.param('gate_up_proj', init([experts, 2 * ffnDim, dim], dim));
    this.param('down_proj', init([experts, dim, ffnDim], ffnDim));
  }
  get gate_up_proj(): Tensor {
    return this.getParam('gate_up_proj');
  }
  get down_proj(): Tensor {
    return this.getParam('down_proj');
  }
}

/** What a training forward leaves on the layer for the loss and the metrics. */
export interface MoEStats {
  /** auxLossCoef · auxLoss + zLossCoef · zLoss, shape [] (differentiable). */
  penalty: Tensor;
  auxLoss: Tensor;
  zLoss: Tensor;
  /** f32 [E] tokens routed to each expert in this forward. */
  tokensPerExpert: Tensor;
}

export class MoE extends Module {
  readonly gate: Linear;
  readonly experts: MoEExperts;
  readonly shared_experts: MLP | null;
  readonly numExperts: number;
  /** Set by each forward in training mode (tensors owned by the forward's scope). */
  last: MoEStats | null = null;

  constructor(readonly o: MoEOptions) {
    super();
    const gen = o.generator ?? new Generator(0);
    if (!Number.isInteger(o.topK) || o.topK < 1 || o.topK > o.experts) throw new Error(`MoE: topK ${o.topK} must be in [1, experts = ${o.experts}]`);
    this.numExperts = o.experts;
    this.gate = this.child('gate', new Linear(o.dim, o.experts, { bias: false, generator: gen, initStd: o.initStd }));
    this.experts = this.child('experts', new MoEExperts(o.experts, o.dim, o.ffnDim, gen, o.initStd));
    const shared = o.sharedExperts ?? 0;
    this.shared_experts = shared > 0
      ? this.child('shared_experts', new MLP(o.dim, shared * (o.sharedFfnDim ?? o.ffnDim), 'swiglu', { generator: gen, initStd: o.initStd }))
      : null;
  }

  /** Full layer output and routing details. */
  run(x: Tensor): MoeLayerOutput & { out: Tensor } {
    const r = moeLayer(x, this.gate.weight, this.experts.gate_up_proj, this.experts.down_proj, this.o);
    const out = this.shared_experts ? add(r.y, this.shared_experts.forward(x)) : r.y;
    return { ...r, out };
  }

  forward(x: Tensor): Tensor {
    const flat = x.rank === 2 ? x : reshape(x, [-1, this.o.dim]);
    const r = this.run(flat);
    if (this.training) {
      const penalty = add(mulScalar(r.auxLoss, this.o.auxLossCoef ?? 0), mulScalar(r.zLoss, this.o.zLossCoef ?? 0));
      this.last = { penalty, auxLoss: r.auxLoss, zLoss: r.zLoss, tokensPerExpert: r.plan.tokensPerExpert };
    } else {
      this.last = null;
    }
    return x.rank === 2 ? r.out : reshape(r.out, x.shape);
  }
}

/**
 * Collects the MoE layers' training statistics: adds their aux/z penalties to a loss and
 * accumulates tokens per expert, aux loss and z-loss on the GPU (no readback) until `read()`.
 */
export class MoEStatsTracker {
  private load: Array<Tensor | null>;
  private aux: Tensor | null = null;
  private z: Tensor | null = null;
  private forwards = 0;

  constructor(readonly layers: MoE[]) {
    this.load = layers.map(() => null);
  }

  get active(): boolean {
    return this.layers.length > 0;
  }

  /**
   * `loss` plus scale · Σ layer penalties in its gradient, while its value stays `loss`
   * (loss + (p − stop(p))), so logged losses stay comparable with a dense model. `scale`
   * is the micro-batch's share of the step (its loss tokens / normalizer). Also
   * accumulates the statistics of the forward just run.
   */
  addPenalty(loss: Tensor, scale: number): Tensor {
    const stats = this.layers.map((l) => l.last).filter((s): s is MoEStats => s !== null);
    if (stats.length === 0) return loss;
    const fresh = this.layers.map((l) => l.last);
    for (const l of this.layers) l.last = null;
    let pen = stats[0].penalty;
    for (const s of stats.slice(1)) pen = add(pen, s.penalty);
    pen = mulScalar(pen, scale);
    const out = add(loss, sub(pen, contiguousK(pen)));
    noGrad(() => {
      const keepSum = (acc: Tensor | null, v: Tensor): Tensor => {
        const next = keep(acc ? add(acc, v) : contiguousK(v));
        acc?.release();
        return next;
      };
      fresh.forEach((st, i) => {
        if (st) this.load[i] = keepSum(this.load[i], st.tokensPerExpert);
      });
      let aux = stats[0].auxLoss;
      let z = stats[0].zLoss;
      for (const s of stats.slice(1)) {
        aux = add(aux, s.auxLoss);
        z = add(z, s.zLoss);
      }
      this.aux = keepSum(this.aux, aux);
      this.z = keepSum(this.z, z);
    });
    this.forwards++;
    return out;
  }

  /**
   * Metrics since the last read (one small readback per tensor): per layer the fraction of
   * routed tokens each expert received (`moeLoad`), the worst max/mean load ratio, the
   * mean aux and z losses per layer, and tokens dropped (always 0: dropless routing).
   */
  async read(): Promise<Record<string, unknown>> {
    if (this.forwards === 0) return {};
    const n = this.forwards * this.layers.length;
    const load: number[][] = [];
    let imbalance = 0;
    for (const t of this.load) {
      if (!t) continue;
      const c = Array.from(await t.toArray());
      const total = c.reduce((s, v) => s + v, 0) || 1;
      load.push(c.map((v) => Number((v / total).toFixed(4))));
      imbalance = Math.max(imbalance, (Math.max(...c) * c.length) / total);
    }
    const aux = this.aux ? (await this.aux.item()) / n : null;
    const z = this.z ? (await this.z.item()) / n : null;
    this.reset();
    return { moeLoad: load, moeMaxLoadRatio: Number(imbalance.toFixed(4)), moeAuxLoss: aux, moeZLoss: z, moeTokensDropped: 0 };
  }

  reset(): void {
    for (const t of [...this.load, this.aux, this.z]) t?.release();
    this.load = this.layers.map(() => null);
    this.aux = this.z = null;
    this.forwards = 0;
  }
}
