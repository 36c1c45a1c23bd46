import type { Tensor } from '../tensor/tensor.ts';
import { Optimizer, grid } from './optimizer.ts';
import { unitGradScale, type GradScaled } from './clip.ts';

export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

/** SGD with momentum, PyTorch's formulation (buffer initialised to the first gradient). */
export class SGD extends Optimizer implements GradScaled {
  /**
   * A 1-element f32 GPU tensor multiplying every gradient in the next step() (set by
   * clipGradNorm(params, max, { optimizer })); released and reset to null after that step.
   */
  gradScale: Tensor | null = null;

  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;

  constructor(params: Tensor[], opts: SGDOptions) {
    super(params, opts.lr);
    this.momentum = opts.momentum ?? 0;
    this.dampening = opts.dampening ?? 0;
    this.weightDecay = opts.weightDecay ?? 0;
    this.nesterov = opts.nesterov ?? false;
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new RangeError('SGD: Nesterov momentum needs momentum > 0 and dampening = 0');
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
    const first = !this.state.has(p);
    const { buf } = this.stateOf(p, ['buf']);
    const u = new ArrayBuffer(48);
    new Uint32Array(u, 0, 3).set([p.size, this.nesterov ? 1 : 0, first ? 1 : 0]);
    new Float32Array(u, 16, 5).set([this.lr, this.momentum, this.dampening, this.weightDecay, 1]);
    if (!g.isContiguous || g.offset !== 0) throw new TypeError(`SGD: gradient of '${p.name ?? p.id}' is not contiguous`);
    p.device.dispatch({
      kernel: 'optim',
      entry: 'sgd',
      uniforms: new Uint8Array(u),
      buffers: [p.storage.buffer, g.storage.buffer, buf.storage.buffer, (this.gradScale ?? unitGradScale(p.device)).storage.buffer],
      workgroups: grid(p.size),
      label: 'sgd',
    });
  }
}
