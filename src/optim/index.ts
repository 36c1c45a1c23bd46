export { Optimizer } from './optimizer.ts';
export { AdamW, type AdamWOptions } from './adamw.ts';
export { SGD, type SGDOptions } from './sgd.ts';
export { learningRate, type ScheduleKind, type ScheduleOptions } from './schedule.ts';
export * from './clip.ts';
