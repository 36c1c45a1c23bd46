export { backward } from './backward.ts';
export { noGrad, withGrad, isGradEnabled } from './mode.ts';
export { checkpoint } from './checkpoint.ts';
export { GradNode, OpContext, type BackwardFn } from './node.ts';
