// Autograd needs a few ops (add, ones) that live in ops/, which itself imports autograd.
// ops/ registers them here at load time to break the import cycle.
import type { Tensor } from '../tensor/tensor.ts';

let addImpl: ((a: Tensor, b: Tensor) => Tensor) | null = null;
let onesLikeImpl: ((t: Tensor) => Tensor) | null = null;
let contiguousImpl: ((t: Tensor) => Tensor) | null = null;

export function registerAutogradOps(ops: {
  add: (a: Tensor, b: Tensor) => Tensor;
  onesLike: (t: Tensor) => Tensor;
  contiguous: (t: Tensor) => Tensor;
}): void {
  addImpl = ops.add;
  onesLikeImpl = ops.onesLike;
  contiguousImpl = ops.contiguous;
}

export function contiguousCopy(t: Tensor): Tensor {
  return contiguousImpl!(t);
}

export function addInto(a: Tensor, b: Tensor): Tensor {
  return addImpl!(a, b);
}

export function onesLike(t: Tensor): Tensor {
  return onesLikeImpl!(t);
}
