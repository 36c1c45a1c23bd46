// Collectives on device tensors. The communication layer only needs three
// things from a device tensor: its length, an asynchronous readback of a
// range, and a write of a range. A DeviceBridge supplies them; the functions
// here cut the tensor into chunks and pipeline them, so that while chunk i is
// being all-reduced, chunk i+1 is already coming back from the GPU and chunk
// i-1 is going up again (GPU↔host copies overlap communication).
import type { Tensor } from '../tensor/tensor.ts';
import { DistError } from './errors.ts';
import type { ProcessGroup } from './group.ts';
import type { ReduceOp } from './dtype.ts';

export interface DeviceBridge<T> {
  /** Number of float32 elements. */
  numel(t: T): number;
  /** Reads elements [offset, offset + count) to the host. */
  download(t: T, offset: number, count: number): Promise<Float32Array>;
  /** Writes `data` at element `offset` (ordered after earlier device work). */
  upload(t: T, offset: number, data: Float32Array): void | Promise<void>;
}

/** The bridge for webomni's own Tensor: contiguous f32 tensors. */
export const tensorBridge: DeviceBridge<Tensor> = {
  numel(t) {
    check(t);
    return t.size;
  },
  async download(t, offset, count) {
    const raw = await t.device.read(t.storage.buffer, (t.offset + offset) * 4, count * 4);
    return new Float32Array(raw);
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
  let next = bridge.download(t, parts[0]![0], parts[0]![1] - parts[0]![0]);
  for (let i = 0; i < parts.length; i++) {
    const host = await next;
    if (i + 1 < parts.length) next = bridge.download(t, parts[i + 1]![0], parts[i + 1]![1] - parts[i + 1]![0]);
    const offset = parts[i]![0];
    pending.push(Promise.resolve(run(host)).then(() => bridge.upload(t, offset, host)));
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
