// Scopes give every intermediate tensor an owner. Tensors created while a scope is open
// belong to it and are released when it closes, except those it returns (they move to
// the enclosing scope) and those explicitly kept. Autograd nodes created in the scope
// that no returned tensor depends on are freed too, releasing what they saved.
//
//   const loss = scope(() => model.forward(x));   // intermediates freed, loss kept
//
// Tensors created outside any scope are owned by the caller (parameters, optimizer state).

import type { Tensor } from './tensor.ts';
import type { GradNode } from '../autograd/node.ts';

interface Scope {
  tensors: Tensor[];
  nodes: GradNode[];
  name: string;
}

const stack: Scope[] = [];

export function trackTensor(t: Tensor): void {
  const s = stack[stack.length - 1];
  if (s) s.tensors.push(t);
}

/** Hand a caller-owned tensor to the innermost scope (if any). */
export function adoptTensor(t: Tensor): void {
  trackTensor(t);
}

export function trackNode(n: GradNode): void {
  const s = stack[stack.length - 1];
  if (s) s.nodes.push(n);
}

/** Remove a tensor from scope ownership: it becomes the caller's to release. */
export function keep<T extends Tensor>(t: T): T {
  for (let i = stack.length - 1; i >= 0; i--) {
    const idx = stack[i].tensors.lastIndexOf(t);
    if (idx >= 0) {
      stack[i].tensors.splice(idx, 1);
      break;
    }
  }
  return t;
}

export function scopeDepth(): number {
  return stack.length;
}

/** Run `fn` in a scope; tensors found in its result (arrays and plain objects, shallow) survive. */
export function scope<R>(fn: () => R, name = 'scope'): R {
  const s: Scope = { tensors: [], nodes: [], name };
  stack.push(s);
  let result: R;
  try {
    result = fn();
  } catch (e) {
    stack.pop();
    close(s, new Set());
    throw e;
  }
  if (result instanceof Promise) {
    stack.pop();
    close(s, new Set());
    throw new TypeError(`${name}: scope() got an async function; use scopeAsync()`);
  }
  stack.pop();
  close(s, escaping(result));
  return result;
}

/**
 * Async variant. While it awaits, other code may run and create tensors in this scope,
 * so do not interleave unrelated async scopes.
 */
export async function scopeAsync<R>(fn: () => Promise<R>, name = 'scope'): Promise<R> {
  const s: Scope = { tensors: [], nodes: [], name };
  stack.push(s);
  let result: R;
  try {
    result = await fn();
  } catch (e) {
    remove(s);
    close(s, new Set());
    throw e;
  }
  remove(s);
  close(s, escaping(result));
  return result;
}

function remove(s: Scope): void {
  const i = stack.lastIndexOf(s);
  if (i >= 0) stack.splice(i, 1);
}

function escaping(result: unknown): Set<Tensor> {
  const out = new Set<Tensor>();
  const visit = (v: unknown, depth: number): void => {
    if (!v || typeof v !== 'object' || depth > 3) return;
    if (isTensor(v)) {
      out.add(v);
      return;
    }
    if (Array.isArray(v)) for (const x of v) visit(x, depth + 1);
    else if (Object.getPrototypeOf(v) === Object.prototype || v instanceof Map) {
      for (const x of v instanceof Map ? v.values() : Object.values(v)) visit(x, depth + 1);
    }
  };
  visit(result, 0);
  return out;
}

function isTensor(v: object): v is Tensor {
  return 'storage' in v && 'strides' in v && 'assertAlive' in v;
}

function close(s: Scope, keepSet: Set<Tensor>, toParent = true): void {
  // Nodes reachable from returned tensors stay alive (their backward may still run).
  const live = new Set<GradNode>();
  const walk: GradNode[] = [];
  for (const t of keepSet) if (t.node) walk.push(t.node);
  while (walk.length) {
    const n = walk.pop()!;
    if (live.has(n)) continue;
    live.add(n);
    for (const i of n.inputs) if (i?.node) walk.push(i.node);
  }
  for (const n of s.nodes) {
    if (!live.has(n)) n.free();
    else if (toParent) adopt(n);
  }
  const parent = stack[stack.length - 1];
  for (const t of s.tensors) {
    if (keepSet.has(t)) {
      if (parent && toParent) parent.tensors.push(t);
    } else {
      t.release(`its scope '${s.name}' closed`);
    }
  }
}

function adopt(n: GradNode): void {
  const parent = stack[stack.length - 1];
  if (parent) parent.nodes.push(n);
}

/**
 * Run `fn` in a scope whose surviving tensors are handed to the caller instead of the
 * enclosing scope. Returns the result and which of its tensors were created inside
 * (the caller now owns exactly one reference to each of those).
 */
export function scopeDetached<R>(fn: () => R, name = 'detached'): { result: R; fresh: Set<Tensor> } {
  const s: Scope = { tensors: [], nodes: [], name };
  stack.push(s);
  let result: R;
  try {
    result = fn();
  } catch (e) {
    stack.pop();
    close(s, new Set(), false);
    throw e;
  }
  stack.pop();
  const esc = escaping(result);
  const fresh = new Set(s.tensors.filter((t) => esc.has(t)));
  close(s, esc, false);
  return { result, fresh };
}
