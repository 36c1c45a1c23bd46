// Learning-rate schedules: linear warmup, then cosine, linear or constant, as a pure
// function of the step so a resumed run recomputes the same rate.

export type ScheduleKind = 'cosine' | 'linear' | 'constant';

export interface ScheduleOptions {
  kind: ScheduleKind;
  /** Peak learning rate, reached at the end of warmup. */
  lr: number;
  warmupSteps?: number;
  /** Total steps (warmup included); required for cosine and linear decay. */
  totalSteps?: number;
  /** Final rate as a fraction of the peak (default 0.1 for cosine, 0 for linear). */
  minRatio?: number;
}

export function learningRate(step: number, o: ScheduleOptions): number {
  const warm = o.warmupSteps ?? 0;
  if (!(o.lr >= 0)) throw new RangeError(`schedule: lr must be ≥ 0, got ${o.lr}`);
  if (warm > 0 && step < warm) return (o.lr * (step + 1)) / warm;
  if (o.kind === 'constant') return o.lr;
  const total = o.totalSteps;
  if (!total || total <= warm) throw new RangeError(`schedule '${o.kind}' needs totalSteps greater than warmupSteps (${warm}), got ${total}`);
  const minLr = o.lr * (o.minRatio ?? (o.kind === 'cosine' ? 0.1 : 0));
  const progress = Math.min(1, (step - warm) / (total - warm));
  if (o.kind === 'linear') return o.lr + (minLr - o.lr) * progress;
  return minLr + 0.5 * (o.lr - minLr) * (1 + Math.cos(Math.PI * progress));
}
