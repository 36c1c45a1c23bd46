// Public op surface. Importing this module also wires the ops autograd and Tensor need.
import { registerAutogradOps } from '../autograd/hooks.ts';
import { setContiguousHook } from '../tensor/tensor.ts';
import { binaryK, BINARY, contiguousK, fillK } from './kernels.ts';

export * from './elementwise.ts';
export * from './reduce.ts';
export * from './shape.ts';
export * from './creation.ts';
export * from './matmul.ts';
export * from './softmax.ts';
export * from './norm.ts';
export * from './rope.ts';
export * from './activation.ts';
export * from './cross-entropy.ts';
export * from './attention.ts';
export * from './indexing.ts';
export * from './moe.ts';
export * from './media.ts';
export { defineOp, NON_DIFFERENTIABLE, OpError, opError, registeredOps } from './registry.ts';

registerAutogradOps({
  add: (a, b) => binaryK('grad.accumulate', BINARY.add, a, b),
  onesLike: (t) => fillK(t.shape, t.dtype, 1, 0, t.device),
  contiguous: (t) => contiguousK(t),
});
setContiguousHook((t) => contiguousK(t));
