import { describe, expect, it } from 'vitest';
import { learningRate } from '../../src/optim/schedule.ts';

describe('learning-rate schedules', () => {
  it('warmup rises linearly to the peak', () => {
    expect(learningRate(0, { kind: 'cosine', lr: 1, warmupSteps: 4, totalSteps: 20 })).toBeCloseTo(0.25);
    expect(learningRate(3, { kind: 'cosine', lr: 1, warmupSteps: 4, totalSteps: 20 })).toBeCloseTo(1);
  });
  it('cosine decays from the peak to minRatio·lr', () => {
    const o = { kind: 'cosine' as const, lr: 2, warmupSteps: 10, totalSteps: 110, minRatio: 0.1 };
    expect(learningRate(10, o)).toBeCloseTo(2);
    expect(learningRate(60, o)).toBeCloseTo(0.2 + 0.5 * 1.8);
    expect(learningRate(110, o)).toBeCloseTo(0.2);
    expect(learningRate(500, o)).toBeCloseTo(0.2);
  });
  it('linear and constant', () => {
    expect(learningRate(50, { kind: 'linear', lr: 1, totalSteps: 100 })).toBeCloseTo(0.5);
    expect(learningRate(1e6, { kind: 'constant', lr: 3e-4, warmupSteps: 10 })).toBe(3e-4);
  });
  it('errors name the schedule and the bad value', () => {
    expect(() => learningRate(0, { kind: 'cosine', lr: 1 })).toThrow(/schedule 'cosine' needs totalSteps/);
    expect(() => learningRate(0, { kind: 'constant', lr: -1 })).toThrow(/lr must be ≥ 0/);
  });
});
