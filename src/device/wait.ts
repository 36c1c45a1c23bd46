// Waiting for the GPU without burning a core.
//
// While any WebGPU promise is pending, Dawn's Node binding polls in a busy loop on the
// main thread. On lavapipe, whose "GPU" runs on the same CPU cores, that steals a core
// from the kernels (measured: 1024³ naive matmul 1270 ms with a plain await, 820 ms with
// this wait). So instead of awaiting directly we block the thread in short, growing
// slices with Atomics.wait and let the event loop turn once between slices, which is
// when Dawn processes its events and can settle the promise. Latency overhead is at most
// one slice; the first slices are tens of microseconds so short waits stay short.
//
// In a browser window Atomics.wait is not allowed on the main thread; there we await.

const canBlock = (() => {
  try {
    const sab = new Int32Array(new SharedArrayBuffer(4));
    Atomics.wait(sab, 0, 0, 0);
    return typeof setImmediate === 'function';
  } catch {
    return false;
  }
})();
const sab = canBlock ? new Int32Array(new SharedArrayBuffer(4)) : null;

const FIRST_SLICE_MS = 0.03;
const MAX_SLICE_MS = 2;

export async function gpuAwait<T>(p: Promise<T>): Promise<T> {
  if (!sab) return p;
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  let slice = FIRST_SLICE_MS;
  // One event-loop turn first: many readbacks are already done.
  await new Promise<void>((r) => setImmediate(r));
  while (!settled) {
    Atomics.wait(sab, 0, 0, slice);
    slice = Math.min(slice * 1.5, MAX_SLICE_MS);
    await new Promise<void>((r) => setImmediate(r));
  }
  return p;
}
