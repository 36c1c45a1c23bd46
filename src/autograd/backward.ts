// Reverse-mode differentiation over the recorded graph.
//
// Ownership during backward: each pending gradient (per node, per leaf) holds exactly
// one reference owned by this code; a node's gradient is released as soon as the node
// has been processed, and the node frees what it saved, so peak memory follows the
// graph's frontier rather than its size. Leaf gradients are owned by the leaf (`.grad`).

import { Tensor, fmtShape } from '../tensor/tensor.ts';
import { scopeDetached } from '../tensor/scope.ts';
import { GradNode } from './node.ts';
import { noGrad } from './mode.ts';
import { addInto, contiguousCopy, onesLike } from './hooks.ts';

export function backward(root: Tensor, gradOutput?: Tensor): void {
  root.assertAlive('backward');
  if (!root.requiresGrad) throw new Error(`backward: ${root} does not require grad (no input of its graph requires grad)`);
  if (!gradOutput && root.size !== 1) {
    throw new Error(`backward: a gradient must be given for a non-scalar output of shape ${fmtShape(root.shape)}`);
  }
  if (gradOutput && !sameShape(gradOutput.shape, root.shape)) {
    throw new Error(`backward: gradient shape ${fmtShape(gradOutput.shape)} does not match output shape ${fmtShape(root.shape)}`);
  }
  noGrad(() => run(root, gradOutput));
}

function run(root: Tensor, gradOutput: Tensor | undefined): void {
  const seed = gradOutput ? gradOutput.retain() : owned(scopeDetached(() => onesLike(root)));
  if (!root.node) {
    accumulateLeaf(root, seed);
    return;
  }
  const order = topoOrder(root.node);
  const pending = new Map<GradNode, Tensor>([[root.node, seed]]);
  for (const node of order) {
    const g = pending.get(node);
    if (!g) continue;
    pending.delete(node);
    if (node.freed) {
      g.release();
      throw new Error(
        `backward through '${node.op}' whose saved tensors were already freed: backward() was called twice on the same graph, or its scope closed`,
      );
    }
    const { result: grads, fresh } = scopeDetached(() => node.backwardFn(node.ctx, g), `backward of ${node.op}`);
    node.free();
    const claimed = new Set<Tensor>();
    node.inputs.forEach((input, i) => {
      const gi = grads[i];
      if (!gi || !input.requiresGrad) return;
      if (!sameShape(gi.shape, input.shape)) {
        throw new Error(
          `backward of '${node.op}': gradient for input ${i} has shape ${fmtShape(gi.shape)} but the input has ${fmtShape(input.shape)}`,
        );
      }
      // One owned reference per use: fresh tensors come with one, others get one.
      const mine = fresh.has(gi) && !claimed.has(gi) ? gi : gi.retain();
      claimed.add(gi);
      if (input.node) {
        const prev = pending.get(input.node);
        pending.set(input.node, prev ? sum(prev, mine) : mine);
      } else {
        accumulateLeaf(input, mine);
      }
    });
    // Fresh tensors the backward returned but nobody used; then the incoming gradient
    // (released last: a backward may pass it through as an input's gradient).
    for (const t of fresh) if (!claimed.has(t)) t.release();
    g.release();
  }
  for (const g of pending.values()) g.release();
}

function accumulateLeaf(leaf: Tensor, g: Tensor): void {
  // Leaf gradients are stored compact (optimizers and collectives read them flat).
  if (!g.isContiguous || g.offset !== 0) {
    const c = owned(scopeDetached(() => contiguousCopy(g)));
    g.release();
    g = c;
  }
  if (leaf.grad && !leaf.grad.released) {
    const prev = leaf.grad;
    leaf.grad = sum(prev, g);
  } else {
    leaf.grad = g;
  }
}

/** a + b as a new owned tensor; releases both inputs. */
function sum(a: Tensor, b: Tensor): Tensor {
  const out = owned(scopeDetached(() => addInto(a, b)));
  a.release();
  b.release();
  return out;
}

function owned(r: { result: Tensor; fresh: Set<Tensor> }): Tensor {
  return r.fresh.has(r.result) ? r.result : r.result.retain();
}

/** Nodes in reverse topological order (outputs before inputs); shared subgraphs once. */
function topoOrder(root: GradNode): GradNode[] {
  const post: GradNode[] = [];
  const seen = new Set<GradNode>([root]);
  const stack: Array<[GradNode, number]> = [[root, 0]];
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [n, i] = top;
    if (i < n.inputs.length) {
      top[1]++;
      const child = n.inputs[i].node;
      if (child && !seen.has(child)) {
        seen.add(child);
        stack.push([child, 0]);
      }
    } else {
      stack.pop();
      post.push(n);
    }
  }
  return post.reverse();
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
