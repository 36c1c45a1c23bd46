// Module: a tree of named parameters and child modules. Parameter names are stable
// dotted paths (`layers.3.attn.q_proj.weight`) used by checkpoints and parallel plans.

import type { Tensor } from '../tensor/tensor.ts';
import { keep } from '../tensor/scope.ts';

export abstract class Module {
  private readonly ownParams = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();
  training = true;

  /** Register a parameter: long-lived (not owned by any scope), requires grad. */
  protected param(name: string, t: Tensor, trainable = true): Tensor {
    if (this.ownParams.has(name)) throw new Error(`parameter '${name}' is registered twice`);
    keep(t);
    t.requiresGrad = trainable;
    this.ownParams.set(name, t);
    return t;
  }

  protected child<M extends Module>(name: string, m: M): M {
    if (this.children.has(name)) throw new Error(`submodule '${name}' is registered twice`);
    this.children.set(name, m);
    return m;
  }

  /** Replace a parameter's tensor (loading weights); the old one is disposed. */
  setParam(path: string, t: Tensor): void {
    const dot = path.indexOf('.');
    if (dot >= 0) {
      const c = this.children.get(path.slice(0, dot));
      if (!c) throw new Error(`no submodule '${path.slice(0, dot)}' for parameter '${path}'`);
      c.setParam(path.slice(dot + 1), t);
      return;
    }
    const old = this.ownParams.get(path);
    if (!old) throw new Error(`no parameter '${path}'`);
    keep(t);
    t.requiresGrad = old.requiresGrad;
    t.name = old.name;
    this.ownParams.set(path, t);
    old.grad?.release();
    old.dispose();
  }

  /** The current tensor of one of this module's own parameters (read through getters, so setParam takes effect). */
  protected getParam(name: string): Tensor {
    const t = this.ownParams.get(name);
    if (!t) throw new Error(`no parameter '${name}'`);
    return t;
  }

  namedParameters(prefix = ''): Array<[string, Tensor]> {
    const out: Array<[string, Tensor]> = [];
    for (const [n, t] of this.ownParams) {
      const full = prefix + n;
      t.name ??= full;
      out.push([full, t]);
    }
    for (const [n, c] of this.children) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Parameters with requiresGrad (what an optimizer should update). */
  trainableParameters(): Tensor[] {
    return this.parameters().filter((t) => t.requiresGrad);
  }

  numParameters(): number {
    return this.parameters().reduce((s, t) => s + t.size, 0);
  }

  train(on = true): this {
    this.training = on;
    for (const c of this.children.values()) c.train(on);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  dispose(): void {
    for (const t of this.ownParams.values()) {
      t.grad?.release();
      t.dispose();
    }
    for (const c of this.children.values()) c.dispose();
  }
}

/** An indexed list of modules: names `0`, `1`, …. */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[] = [];
  constructor(items: M[] = []) {
    super();
    items.forEach((m) => this.push(m));
  }
  push(m: M): void {
    this.child(String(this.items.length), m);
    this.items.push(m);
  }
  get length(): number {
    return this.items.length;
  }
  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}
