// The training loop: micro-batch accumulation with the loss normalised by real tokens,
// LR schedule, global-norm clipping, fused AdamW, periodic validation, metrics, progress
// and checkpoints with exact resume. Model- and data-agnostic: it sees a model that turns
// a host batch into a loss, and a batch source with serialisable state.

import { Tensor } from '../tensor/tensor.ts';
import { scope } from '../tensor/scope.ts';
import { backward, noGrad } from '../autograd/index.ts';
import { add, checkCrossEntropyTargets, checkIndexErrors } from '../ops/index.ts';
import { AdamW } from '../optim/adamw.ts';
import { clipGradNorm } from '../optim/clip.ts';
import { learningRate, type ScheduleKind } from '../optim/schedule.ts';
import type { Module } from '../nn/module.ts';
import type { Device } from '../device/index.ts';
import { CheckpointManager, loadCheckpoint } from '../checkpoint/manager.ts';
import { assignParameters } from '../checkpoint/tensors.ts';
import { MetricsLog } from './metrics.ts';
import { Progress } from './progress.ts';
import { formatProfile } from '../device/profiler.ts';

/** A batch as the host sees it; `lossTokens` counts targets that carry loss. */
export interface HostBatch {
  tokens: number;
  lossTokens: number;
}

export interface BatchSource<B extends HostBatch> {
  /** The next batch (media-backed sources decode asynchronously). */
  next(): B | Promise<B>;
  state(): unknown;
  restore(state: unknown): void;
}

export interface TrainableModel<B extends HostBatch> extends Module {
  /** Sum-reduced loss divided by `normalizer` (so micro-batch losses add up to the mean). */
  lossOn(batch: B, normalizer: number): Tensor;
  /** Extra metrics for a logged training step (e.g. MoE expert load), read after its loss. */
  stepMetrics?(): Promise<Record<string, unknown>>;
}

export interface TrainerOptions {
  steps: number;
  lr: number;
  schedule: ScheduleKind;
  warmupSteps: number;
  minLrRatio: number;
  weightDecay: number;
  betas: [number, number];
  eps: number;
  gradClip: number;
  microBatches: number;
  evalEvery: number;
  evalBatches: number;
  checkpointEvery: number;
  keepLast: number;
  logEvery: number;
  maxSeconds: number;
  runDir: string;
  /** JSON-serialisable config stored in every checkpoint. */
  config: unknown;
  /** Stop (with a checkpoint) after this step, as an interrupted run would. */
  stopAtStep?: number;
  /** Profile this many steps (after two warm-up steps) with GPU timestamps and print the table. */
  profileSteps?: number;
}

export interface TrainResult {
  step: number;
  lastLoss: number;
  valLoss: number | null;
  tokensPerSecond: number;
  seconds: number;
  losses: Array<{ step: number; loss: number }>;
}

export class Trainer<B extends HostBatch, S extends BatchSource<B> = BatchSource<B>> {
  readonly optimizer: AdamW;
  readonly checkpoints: CheckpointManager;
  readonly metrics: MetricsLog;
  step = 0;
  private readonly params: Array<[string, Tensor]>;

  constructor(
    readonly device: Device,
    readonly model: TrainableModel<B>,
    readonly train: S,
    readonly val: S | null,
    readonly o: TrainerOptions,
    private readonly log: (line: string) => void = (l) => console.log(l),
  ) {
    this.params = model.namedParameters().filter(([, p]) => p.requiresGrad);
    this.optimizer = new AdamW(
      this.params.map(([, p]) => p),
      { lr: o.lr, betas: o.betas, eps: o.eps, weightDecay: o.weightDecay },
    );
    this.checkpoints = new CheckpointManager(`${o.runDir}/checkpoints`, o.keepLast);
    this.metrics = new MetricsLog(`${o.runDir}/metrics.jsonl`);
  }

  /** Restore model, optimizer, step and data state from a checkpoint directory. */
  async resume(dir: string): Promise<void> {
    const ck = await loadCheckpoint(dir);
    const model = ck.tensors.model;
    if (!model) throw new Error(`${dir}: checkpoint has no model.safetensors`);
    assignParameters(this.model.namedParameters(), model, (n, t) => this.model.setParam(n, t), { source: `${dir}/model.safetensors` });
    // setParam swapped tensors: rebuild the optimizer's parameter list in the same order.
    const byName = new Map(this.model.namedParameters());
    this.params.splice(0, this.params.length, ...this.params.map(([n]) => [n, byName.get(n)!] as [string, Tensor]));
    this.optimizer.params.splice(0, this.optimizer.params.length, ...this.params.map(([, p]) => p));
    const opt = ck.tensors.optimizer ?? new Map<string, Tensor>();
    this.optimizer.loadState(this.params, opt);
    const st = ck.manifest.state as { step: number; optimizerStep: number; train: unknown; val: unknown };
    this.step = st.step;
    this.optimizer.stepCount = st.optimizerStep;
    this.train.restore(st.train);
    if (this.val && st.val !== undefined) this.val.restore(st.val);
    this.log(`resumed from ${dir} at step ${this.step}`);
  }

  /** Surface data errors recorded by kernels (out-of-range token ids or targets). */
  async checkDataErrors(): Promise<void> {
    await checkIndexErrors(this.device);
    await checkCrossEntropyTargets(this.device);
  }

  async saveCheckpoint(): Promise<string> {
    await this.device.sync();
    // Never checkpoint a state computed from invalid ids.
    await this.checkDataErrors();
    const optState: Array<[string, Tensor]> = [];
    for (const [name, slots] of this.optimizer.namedState()) for (const [slot, t] of Object.entries(slots)) optState.push([`${name}.${slot}`, t]);
    const dir = await this.checkpoints.save(
      this.step,
      { model: this.model.namedParameters(), optimizer: optState },
      { step: this.step, optimizerStep: this.optimizer.stepCount, train: this.train.state(), val: this.val?.state(), config: this.o.config },
    );
    this.metrics.write({ event: 'checkpoint', step: this.step, dir });
    return dir;
  }

  /** Mean loss over `evalBatches` validation batches (token-weighted). */
  async evaluate(): Promise<number | null> {
    if (!this.val) return null;
    const state = this.val.state();
    let total = 0;
    let count = 0;
    const pending: Array<[Tensor, number]> = [];
    this.model.eval();
    for (let i = 0; i < this.o.evalBatches; i++) {
      const b = await this.val.next();
      if (b.lossTokens === 0) continue;
      pending.push([noGrad(() => scope(() => this.model.lossOn(b, 1))), b.lossTokens]);
    }
    this.model.train();
    for (const [t, n] of pending) {
      total += await t.item();
      count += n;
      t.release();
    }
    // Validation always reads the same batches: rewind.
    this.val.restore(state);
    return count ? total / count : null;
  }

  async run(): Promise<TrainResult> {
    const o = this.o;
    const t0 = performance.now();
    const progress = new Progress(o.steps, this.step);
    const losses: Array<{ step: number; loss: number }> = [];
    let tokens = 0;
    let windowTokens = 0;
    let windowStart = performance.now();
    let pending: { step: number; loss: Tensor; lr: number; value: Promise<number> } | null = null;
    let lastLoss = NaN;
    let valLoss: number | null = null;
    let lastEvalStep = -1;
    let tps = 0;
    const drain = async () => {
      if (!pending) return;
      const v = await pending.value;
      pending.loss.release();
      if (!Number.isFinite(v)) throw new Error(`loss became ${v} at step ${pending.step}: lower train.lr or enable train.gradClip`);
      lastLoss = v;
      losses.push({ step: pending.step, loss: v });
      const extra = this.model.stepMetrics && pending.step % o.logEvery === 0 ? await this.model.stepMetrics() : {};
      this.metrics.write({ event: 'train', step: pending.step, loss: v, lr: pending.lr, tokensPerSecond: tps, ...extra });
      progress.update({ step: pending.step, loss: v, tokensPerSecond: tps, lr: pending.lr });
      pending = null;
    };
    try {
      const profileFrom = o.profileSteps ? this.step + 2 : -1;
      while (this.step < o.steps) {
        if (this.step === profileFrom) {
          await drain();
          this.device.startProfiling();
        }
        if (o.profileSteps && this.step === profileFrom + o.profileSteps) {
          await drain();
          const rows = await this.device.stopProfiling();
          progress.log(`GPU time per op over ${o.profileSteps} steps:\n${formatProfile(rows)}`);
        }
        const lr = learningRate(this.step, { kind: o.schedule, lr: o.lr, warmupSteps: o.warmupSteps, totalSteps: o.steps, minRatio: o.minLrRatio });
        this.optimizer.lr = lr;
        const micro: B[] = [];
        for (let i = 0; i < o.microBatches; i++) micro.push(await this.train.next());
        const normalizer = Math.max(1, micro.reduce((s, b) => s + b.lossTokens, 0));
        const loss = scope(() => {
          let total: Tensor | null = null;
          for (const b of micro) {
            const l = this.model.lossOn(b, normalizer);
            backward(l);
            total = total ? noGrad(() => add(total!, l)) : l;
          }
          // The clip scale goes into the fused AdamW update: no extra pass over the gradients.
          if (o.gradClip > 0) clipGradNorm(this.optimizer.params, o.gradClip, { optimizer: this.optimizer });
          this.optimizer.step();
          this.optimizer.zeroGrad();
          return total!;
        }, 'train step');
        this.step++;
        const stepTokens = micro.reduce((s, b) => s + b.tokens, 0);
        tokens += stepTokens;
        windowTokens += stepTokens;
        // Submit this step with its loss copy now, so the GPU runs it while the host
        // finishes logging the previous step and records the next one; its value is
        // awaited one step later.
        const value = loss.item();
        value.catch(() => {}); // awaited in drain(); a failure surfaces there
        await drain();
        pending = { step: this.step, loss, lr, value };
        const now = performance.now();
        if (now - windowStart > 2000) {
          tps = (windowTokens * 1000) / (now - windowStart);
          windowTokens = 0;
          windowStart = now;
        }
        if (o.evalEvery > 0 && this.step % o.evalEvery === 0) {
          await drain();
          valLoss = await this.evaluate();
          lastEvalStep = this.step;
          if (valLoss !== null) {
            this.metrics.write({ event: 'val', step: this.step, valLoss });
            progress.log(`step ${this.step}: validation loss ${valLoss.toFixed(4)}`);
          }
        }
        const outOfTime = (o.maxSeconds > 0 && (performance.now() - t0) / 1000 > o.maxSeconds) || this.step === o.stopAtStep;
        if ((o.checkpointEvery > 0 && this.step % o.checkpointEvery === 0) || this.step === o.steps || outOfTime) {
          await drain();
          const dir = await this.saveCheckpoint();
          progress.log(`step ${this.step}: checkpoint ${dir}`);
        }
        if (outOfTime) {
          progress.log(`stopping at step ${this.step}${this.step === o.stopAtStep ? '' : ` after ${o.maxSeconds} s (train.maxSeconds)`}; continue with --resume`);
          break;
        }
      }
      await drain();
      await this.checkDataErrors();
      // The report always ends with the validation loss of the final weights.
      if (this.val && lastEvalStep !== this.step) {
        valLoss = await this.evaluate();
        if (valLoss !== null) {
          this.metrics.write({ event: 'val', step: this.step, valLoss });
          progress.log(`step ${this.step}: validation loss ${valLoss.toFixed(4)}`);
        }
      }
    } finally {
      progress.stop();
    }
    const seconds = (performance.now() - t0) / 1000;
    return { step: this.step, lastLoss, valLoss, tokensPerSecond: tokens / seconds, seconds, losses };
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}
