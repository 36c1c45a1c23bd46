// Activation recomputation: run a function without keeping its intermediates, and run it
// again during backward to get its gradients. Trades compute for memory.

import { Tensor } from '../tensor/tensor.ts';
import { scopeDetached } from '../tensor/scope.ts';
import { trackNode, adoptTensor } from '../tensor/scope.ts';
import { GradNode, OpContext } from './node.ts';
import { isGradEnabled, noGrad, withGrad } from './mode.ts';
import { backward } from './backward.ts';

/**
 * y = fn(...inputs), saving only the inputs. `fn` must be deterministic (same result when
 * re-run) and may use parameters captured from its closure: their gradients accumulate
 * during the recomputation exactly as without checkpointing.
 */
export function checkpoint(fn: (...xs: Tensor[]) => Tensor, ...inputs: Tensor[]): Tensor {
  if (!isGradEnabled()) return fn(...inputs);
  // Intermediates are released as soon as the forward is done: only the output survives.
  const { result: y, fresh } = scopeDetached(() => noGrad(() => fn(...inputs)), 'checkpoint');
  if (fresh.has(y)) adoptTensor(y);
  const ctx = new OpContext();
  ctx.save(...inputs);
  const node = new GradNode(
    'checkpoint',
    inputs,
    ctx,
    (c, gy) => {
      const leaves = c.saved.map((x) => {
        const v = x.view(x.shape, x.strides, x.offset);
        v.requiresGrad = x.requiresGrad;
        return v;
      });
      const { result } = scopeDetached(() =>
        withGrad(() => {
          const out = fn(...leaves);
          if (out.requiresGrad) backward(out, gy);
          return leaves.map((l) => l.grad);
        }),
      );
      for (const l of leaves) l.release();
      return result;
    },
    y.shape,
  );
  y.node = node;
  y.requiresGrad = true;
  trackNode(node);
  return y;
}
