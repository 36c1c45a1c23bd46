// A node of the autograd graph: the op that produced a tensor, the tensors it read,
// what it saved for backward, and its backward function.

import type { Tensor } from '../tensor/tensor.ts';

/** Gradients for each tensor input, in order; null where an input gets none. */
export type BackwardFn = (ctx: OpContext, gradOut: Tensor) => Array<Tensor | null>;

export class OpContext {
  private savedTensors: Tensor[] = [];
  /** Non-tensor data the backward needs (axes, shapes, flags). */
  readonly attrs: Record<string, unknown> = {};

  /** Keep tensors alive until the backward has run; they are released right after it. */
  save(...ts: Tensor[]): void {
    for (const t of ts) this.savedTensors.push(t.retain());
  }

  get saved(): readonly Tensor[] {
    return this.savedTensors;
  }

  releaseSaved(): void {
    for (const t of this.savedTensors) t.release('autograd released it after backward');
    this.savedTensors = [];
  }
}

export class GradNode {
  freed = false;
  constructor(
    readonly op: string,
    /** Tensor inputs; only their graph links and leaf `.grad` slots are used. */
    readonly inputs: Tensor[],
    readonly ctx: OpContext,
    readonly backwardFn: BackwardFn,
    /** Shape of the output, for checking the incoming gradient. */
    readonly outShape: readonly number[],
  ) {}

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.ctx.releaseSaved();
  }
}
