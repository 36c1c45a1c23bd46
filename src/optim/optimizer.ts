// Optimizer base: a list of named parameters, per-parameter state tensors created lazily
// on the first step, and in-place fused update kernels (shaders/optim.wgsl).

import { Tensor, fmtShape } from '../tensor/tensor.ts';
import { fillK } from '../ops/kernels.ts';
import { keep } from '../tensor/scope.ts';

export interface ParamGroup {
  params: Tensor[];
  lr?: number;
  weightDecay?: number;
}

export abstract class Optimizer {
  /** Steps taken (bias correction, schedules). */
  stepCount = 0;
  lr: number;
  protected readonly state = new Map<Tensor, Record<string, Tensor>>();

  constructor(
    readonly params: Tensor[],
    lr: number,
  ) {
    if (!(lr >= 0)) throw new RangeError(`optimizer: learning rate must be ≥ 0, got ${lr}`);
    this.lr = lr;
    for (const p of params) {
      if (p.dtype !== 'f32') throw new TypeError(`optimizer: parameter '${p.name ?? p.id}' is ${p.dtype}; master weights must be f32`);
      if (!p.isContiguous || p.offset !== 0) throw new TypeError(`optimizer: parameter '${p.name ?? p.id}' ${fmtShape(p.shape)} must be a contiguous tensor`);
    }
  }

  /** Apply one update to every parameter that has a gradient. */
  step(): void {
    this.stepCount++;
    for (const p of this.params) {
      p.assertAlive('optimizer.step');
      if (!p.grad) continue;
      this.update(p, p.grad);
    }
  }

  /** Drop gradients (they are released; the next backward allocates fresh ones). */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.release();
      p.grad = null;
    }
  }

  protected stateOf(p: Tensor, names: string[]): Record<string, Tensor> {
    let s = this.state.get(p);
    if (!s) {
      s = {};
      // Optimizer state is long-lived: never owned by the step's scope.
      for (const n of names) s[n] = keep(fillK(p.shape, 'f32', 0, 0, p.device));
      this.state.set(p, s);
    }
    return s;
  }

  /** State tensors by parameter name, for checkpoints. */
  namedState(): Map<string, Record<string, Tensor>> {
    const out = new Map<string, Record<string, Tensor>>();
    this.params.forEach((p, i) => {
      const s = this.state.get(p);
      if (s) out.set(p.name ?? String(i), s);
    });
    return out;
  }

  /**
   * Restore state tensors saved as `<param name>.<slot>` (see namedState). Every
   * parameter of `named` that has saved slots gets them; missing slots stay lazy.
   */
  loadState(named: Array<[string, Tensor]>, saved: Map<string, Tensor>): void {
    for (const s of this.state.values()) for (const t of Object.values(s)) t.dispose();
    this.state.clear();
    for (const [name, p] of named) {
      const slots: Record<string, Tensor> = {};
      for (const [key, t] of saved) {
        if (!key.startsWith(name + '.') || key.slice(name.length + 1).includes('.')) continue;
        if (t.rank !== p.rank || t.shape.some((d, i) => d !== p.shape[i])) {
          throw new Error(`optimizer state '${key}' has shape [${t.shape.join(', ')}] but '${name}' is [${p.shape.join(', ')}]`);
        }
        slots[key.slice(name.length + 1)] = keep(t);
      }
      if (Object.keys(slots).length) this.state.set(p, slots);
    }
  }

  protected abstract update(p: Tensor, g: Tensor): void;

  /** Release all state tensors. */
  dispose(): void {
    for (const s of this.state.values()) for (const t of Object.values(s)) t.dispose();
    this.state.clear();
  }
}

export function grid(n: number): [number, number] {
  const groups = Math.ceil(n / 256);
  return groups <= 65535 ? [groups, 1] : [65535, Math.ceil(groups / 65535)];
}
