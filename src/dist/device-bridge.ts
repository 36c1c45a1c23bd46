// Collectives on device tensors. The communication layer only needs three
// things from a device tensor: its length, an asynchronous readback of a
// range, and a write of a range. A DeviceBridge supplies them; the functions
// here cut the tensor into chunks and pipeline them, so that while chunk i is
// being all-reduced, chunk i+1 is already coming back from the GPU and chunk
// i-1 is going up again (GPU↔host copies overlap communication).
import type { Tensor } from '../tensor/tensor.ts';
import { DistError } from './errors.ts';
import { allocHostBuffer, freeHostBuffer } from './host-buffer.ts';
import type { ProcessGroup } from './group.ts';
import type { ReduceOp } from './dtype.ts';

export interface DeviceBridge<T> {
  /** Number of float32 elements. */
  numel(t: T): number;
  /**
   * Reads elements [offset, offset + count) to the host: into `into` when
   * given (count elements; the pipelines pass registered host buffers, which
   * collectives reduce in place) and returns it, or into a new array.
   */
  download(t: T, offset: number, count: number, into?: Float32Array): Promise<Float32Array>;
  /** Writes `data` at element `offset` (ordered after earlier device work). */
  upload(t: T, offset: number, data: Float32Array): void | Promise<void>;
}

/** The bridge for webomni's own Tensor: contiguous f32 tensors. */
export const tensorBridge: DeviceBridge<Tensor> = {
  numel(t) {
    check(t);
    return t.size;
  },
  async download(t, offset, count, into) {
    if (into === undefined) return new Float32Array(await t.device.read(t.storage.buffer, (t.offset + offset) * 4, count * 4));
    if (into.length !== count) throw new DistError(`download: destination has ${into.length} elements, expected ${count}`);
    await t.device.readInto(t.storage.buffer, (t.offset + offset) * 4, new Uint8Array(into.buffer, into.byteOffset, count * 4));
    return into;
  },
  upload(t, offset, data) {
    t.device.write(t.storage.buffer, (t.offset + offset) * 4, data);
  },
};

function check(t: Tensor): void {
  t.assertAlive('collective');
  if (t.dtype !== 'f32') throw new DistError(`device collectives need an f32 tensor, got ${t.dtype}`);
  if (!t.isContiguous) throw new DistError('device collectives need a contiguous tensor (call contiguous() first)');
}

export interface DeviceCollectiveOptions {
  /** Elements per pipelined chunk (default 1 Mi = 4 MiB). */
  chunkElems?: number;
  timeoutMs?: number;
}

function chunks(n: number, size: number): [number, number][] {
  const out: [number, number][] = [];
  for (let a = 0; a < n; a += size) out.push([a, Math.min(n, a + size)]);
  if (out.length === 0) out.push([0, 0]);
  return out;
}

/**
 * Runs an in-place host collective chunk by chunk over a device tensor with
 * download(i+1) ‖ collective(i) ‖ upload(i-1). Every rank issues the chunks'
 * collectives in the same order, so their sequence numbers line up.
 */
async function pipelined<T>(bridge: DeviceBridge<T>, t: T, o: DeviceCollectiveOptions, run: (host: Float32Array) => PromiseLike<unknown>): Promise<void> {
  const n = bridge.numel(t);
  const parts = chunks(n, Math.max(1, o.chunkElems ?? 1 << 20));
  const pending: Promise<void>[] = [];
  // Chunks come back into registered host buffers, so sums reduce in place (host-buffer.ts).
  const fetch = ([a, b]: [number, number]) => {
    const staging = allocHostBuffer(Float32Array, b - a);
    return bridge.download(t, a, b - a, staging).then((host) => ({ host, staging }));
  };
  let next = fetch(parts[0]!);
  for (let i = 0; i < parts.length; i++) {
    const { host, staging } = await next;
    if (i + 1 < parts.length) next = fetch(parts[i + 1]!);
    const offset = parts[i]![0];
    // Freed only after success: a failed collective may still have data landing in it.
    pending.push(Promise.resolve(run(host)).then(async () => {
      await bridge.upload(t, offset, host);
      freeHostBuffer(staging);
    }));
  }
  await Promise.all(pending);
}

export function allReduceDevice<T>(group: ProcessGroup, bridge: DeviceBridge<T>, t: T, opts: DeviceCollectiveOptions & { op?: ReduceOp } = {}): Promise<void> {
  return pipelined(bridge, t, opts, (h) => group.allReduce(h, { op: opts.op, timeoutMs: opts.timeoutMs }));
}

export function broadcastDevice<T>(group: ProcessGroup, bridge: DeviceBridge<T>, t: T, root: number, opts: DeviceCollectiveOptions = {}): Promise<void> {
  return pipelined(bridge, t, opts, (h) => group.broadcast(h, root, { timeoutMs: opts.timeoutMs }));
}

/** All-gather between device tensors: output (size × input) ← every rank's input. */
export async function allGatherDevice<T>(group: ProcessGroup, bridge: DeviceBridge<T>, output: T, input: T, opts: DeviceCollectiveOptions = {}): Promise<void> {
  const m = bridge.numel(input);
  if (bridge.numel(output) !== m * group.size) throw new DistError(`allGatherDevice: output has ${bridge.numel(output)} elements, expected ${group.size} × ${m}`);
  const host = new Float32Array(m * group.size);
  await group.allGather(host, await bridge.download(input, 0, m), { timeoutMs: opts.timeoutMs });
  await bridge.upload(output, 0, host);
}

/** Reduce-scatter between device tensors: output ← reduction of block `rank` of every rank's input. */
export async function reduceScatterDevice<T>(group: ProcessGroup, bridge: DeviceBridge<T>, output: T, input: T, opts: DeviceCollectiveOptions & { op?: ReduceOp } = {}): Promise<void> {
  const m = bridge.numel(output);
  if (bridge.numel(input) !== m * group.size) throw new DistError(`reduceScatterDevice: input has ${bridge.numel(input)} elements, expected ${group.size} × ${m}`);
  const host = new Float32Array(m);
  await group.reduceScatter(host, await bridge.download(input, 0, m * group.size), { op: opts.op, timeoutMs: opts.timeoutMs });
  await bridge.upload(output, 0, host);
}
