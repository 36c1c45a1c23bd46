// Op definition: forward and backward side by side. `backward` is a required field, so
// an op without one does not compile unless it says NON_DIFFERENTIABLE explicitly.

import { Tensor, fmtShape } from '../tensor/tensor.ts';
import { trackNode } from '../tensor/scope.ts';
import { GradNode, OpContext, type BackwardFn } from '../autograd/node.ts';
import { isGradEnabled, noGrad } from '../autograd/mode.ts';

export const NON_DIFFERENTIABLE = Symbol('non-differentiable');

export interface OpDef<A extends unknown[]> {
  name: string;
  /** Runs with gradient recording off; saves what backward needs in ctx. */
  forward(ctx: OpContext, ...args: A): Tensor;
  /** Gradients for the op's tensor inputs in argument order (tensors inside arrays flattened). */
  backward: BackwardFn | typeof NON_DIFFERENTIABLE;
}

export const registeredOps = new Map<string, OpDef<never[]>>();

export class OpError extends Error {
  override name = 'OpError';
}

/** An error that names the op, the shapes involved and the problem. */
export function opError(op: string, problem: string, ...tensors: Tensor[]): OpError {
  const shapes = tensors.length ? ` (inputs: ${tensors.map((t) => `${fmtShape(t.shape)} ${t.dtype}`).join(', ')})` : '';
  return new OpError(`${op}: ${problem}${shapes}`);
}

function tensorArgs(args: unknown[]): Tensor[] {
  const out: Tensor[] = [];
  for (const a of args) {
    if (a instanceof Tensor) out.push(a);
    else if (Array.isArray(a)) for (const x of a) if (x instanceof Tensor) out.push(x);
  }
  return out;
}

export function defineOp<A extends unknown[]>(def: OpDef<A>): (...args: A) => Tensor {
  if (registeredOps.has(def.name)) throw new Error(`op '${def.name}' is defined twice`);
  registeredOps.set(def.name, def as unknown as OpDef<never[]>);
  const run = (...args: A): Tensor => {
    const inputs = tensorArgs(args);
    for (const t of inputs) t.assertAlive(def.name);
    const record = def.backward !== NON_DIFFERENTIABLE && isGradEnabled() && inputs.some((t) => t.requiresGrad);
    const ctx = new OpContext();
    let out: Tensor;
    try {
      out = noGrad(() => def.forward(ctx, ...args));
    } catch (e) {
      ctx.releaseSaved();
      throw e;
    }
    if (record) {
      const node = new GradNode(def.name, inputs, ctx, def.backward as BackwardFn, out.shape);
      out.node = node;
      out.requiresGrad = true;
      trackNode(node);
    } else {
      ctx.releaseSaved();
    }
    return out;
  };
  Object.defineProperty(run, 'name', { value: def.name });
  return run;
}
