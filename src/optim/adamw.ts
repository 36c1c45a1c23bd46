import type { Tensor } from '../tensor/tensor.ts';
import { Optimizer, grid } from './optimizer.ts';
import { unitGradScale, type GradScaled } from './clip.ts';

export interface AdamWOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

/** AdamW (Loshchilov & Hutter) with PyTorch's defaults and update formula, fused in one kernel per parameter. */
export class AdamW extends Optimizer implements GradScaled {
  /**
   * A 1-element f32 GPU tensor multiplying every gradient in the next step() (set by
   * clipGradNorm(params, max, { optimizer })); released and reset to null after that step.
   */
  gradScale: Tensor | null = null;

  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;

  constructor(params: Tensor[], opts: AdamWOptions = {}) {
    super(params, opts.lr ?? 1e-3);
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
    if (!(this.beta1 >= 0 && this.beta1 < 1 && this.beta2 >= 0 && this.beta2 < 1)) {
      throw new RangeError(`AdamW: betas must be in [0, 1), got [${this.beta1}, ${this.beta2}]`);
    }
  }

  override step(): void {
    try {
      super.step();
    } finally {
      this.gradScale?.release();
      this.gradScale = null;
    }
  }

  protected update(p: Tensor, g: Tensor): void {
    const { m, v } = this.stateOf(p, ['m', 'v']);
    const t = this.stepCount;
    const u = new ArrayBuffer(48);
    new Uint32Array(u, 0, 1)[0] = p.size;
    new Float32Array(u, 16, 8).set([
      this.lr,
      this.beta1,
      this.beta2,
      this.eps,
      this.weightDecay,
      1 - this.beta1 ** t,
      Math.sqrt(1 - this.beta2 ** t),
      1,
    ]);
    const gc = g.isContiguous && g.offset === 0 ? g : null;
    if (!gc) throw new TypeError(`AdamW: gradient of '${p.name ?? p.id}' is not contiguous`);
    p.device.dispatch({
      kernel: 'optim',
      entry: 'adamw',
      uniforms: new Uint8Array(u),
      buffers: [p.storage.buffer, gc.storage.buffer, m.storage.buffer, v.storage.buffer, (this.gradScale ?? unitGradScale(p.device)).storage.buffer],
      workgroups: grid(p.size),
      label: 'adamw',
    });
  }
}
