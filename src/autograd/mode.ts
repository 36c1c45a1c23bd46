// Whether ops record autograd nodes.
let enabled = true;

export function isGradEnabled(): boolean {
  return enabled;
}

/** Run `fn` without recording gradients (evaluation, optimizer updates, backward itself). */
export function noGrad<R>(fn: () => R): R {
  const prev = enabled;
  enabled = false;
  try {
    return fn();
  } finally {
    enabled = prev;
  }
}

export function withGrad<R>(fn: () => R): R {
  const prev = enabled;
  enabled = true;
  try {
    return fn();
  } finally {
    enabled = prev;
  }
}
