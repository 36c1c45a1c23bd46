// What an algorithm sees of the communicator: its rank in the group, the
// group size, and tagged send/recv to other group ranks. Everything else
// (matching, timeouts, failures) lives below this line.
import type { LateDest } from '../router.ts';

export interface AlgoCtx {
  readonly rank: number;
  readonly size: number;
  /** Pipelining chunk for ring algorithms, bytes. */
  readonly chunkBytes: number;
  /** Per-peer bytes from which direct schedules use the receiver-ready gate (readyGate). */
  readonly readyBytes: number;
  send(peer: number, step: number, data: Uint8Array): Promise<void>;
  /**
   * Receives exactly dest.length bytes tagged `step` from `peer`. With `reduce`,
   * each fragment is combined into dest (dest ⊕= fragment) the moment it lands.
   * A LateDest gets its memory when the first fragment arrives.
   */
  recv(peer: number, step: number, dest: Uint8Array | LateDest, reduce?: (dst: Uint8Array, src: Uint8Array) => void): Promise<void>;
}

export const mod = (a: number, n: number) => ((a % n) + n) % n;

/**
 * Segment i of n over `count` elements: [floor(i*count/n), floor((i+1)*count/n)),
 * so segments differ by at most one element when count is not divisible by n.
 */
export function segment(count: number, n: number, i: number): [number, number] {
  return [Math.floor((i * count) / n), Math.floor(((i + 1) * count) / n)];
}

/**
 * Largest pipelining chunk for large messages (the links' frame size, so a
 * chunk still travels as one frame). Each chunk is a message with a fixed
 * cost (a frame, promises, wake-ups of both ranks): measured at 4 ranks on
 * 2 cores, 64 MiB all-reduces used ~17% less CPU with 4 MiB chunks than with 1 MiB.
 */
export const LARGE_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * Chunk size for a segment of `segBytes`: the whole segment up to
 * LARGE_CHUNK_BYTES (at least `chunkBytes`), so segments larger than that are
 * cut into chunks of at most LARGE_CHUNK_BYTES. The same on every rank. Each
 * chunk costs a message at both ends (frame, promises, wake-ups: ~30 µs of
 * CPU per rank here), and pipelining within a segment buys little, since
 * every peer's copy of a segment already travels at once and the reduction
 * (~0.1 ms per MiB for three peers) is short next to the transfer. Measured at
 * 4 ranks on 2 cores, 16 MiB all-reduces: one 4 MiB chunk per segment used
 * 15–16 ms of user CPU per operation (all ranks) against 17–20 with two of
 * 2 MiB, and 36 ms against 43 with two of 2 MiB against four of 1 MiB before that.
 */
export function pipelineChunk(segBytes: number, chunkBytes: number): number {
  return Math.max(chunkBytes, Math.min(LARGE_CHUNK_BYTES, segBytes));
}

/** Chunks per segment so that no chunk exceeds chunkBytes (same on every rank). */
export function chunksFor(maxSegBytes: number, chunkBytes: number): number {
  return Math.max(1, Math.ceil(maxSegBytes / chunkBytes));
}

/** Byte range of chunk c (of C) inside an element range, in bytes. */
export function chunkOf(start: number, end: number, c: number, C: number, es: number): [number, number] {
  const len = end - start;
  return [(start + Math.floor((c * len) / C)) * es, (start + Math.floor(((c + 1) * len) / C)) * es];
}

/** Step of the receiver-ready notes (never a data step: those count chunks from 0). */
export const READY_STEP = 0xffffffff;

/**
 * From this many bytes per peer, the direct schedules send a peer nothing
 * until it says its receives for the operation are posted. Otherwise a rank
 * that finished the previous operation first streams the next one's data into
 * peers still finishing theirs: the data lands in early-fragment buffers
 * (fresh memory past the router's pool, so page faults, plus one more copy
 * when the receive is posted). Measured at 4 ranks on 2 cores, back-to-back
 * 256 MiB all-reduces took 300+ MiB of early data per rank over 10 ops, 3–4
 * thousand page faults per op and 30% more CPU on those ranks; waiting one
 * message latency per peer instead costs nothing measurable at these sizes.
 */
export const READY_MIN_BYTES = 8 * 1024 * 1024;

/**
 * Receiver-ready gate: called once this rank's receives for the operation are
 * posted; tells each peer so (a zero-length message on READY_STEP) and
 * returns, per peer (in `peers` order), a promise that resolves once that
 * peer has said the same. Below ctx.readyBytes (default READY_MIN_BYTES)
 * per peer, every promise is already resolved and nothing is sent. Both ends
 * must make the same choice, so `bytesPerPeer` must be the same on every rank
 * (and readyBytes configured alike), or one side waits for a note never sent.
 */
export function readyGate(ctx: AlgoCtx, peers: readonly number[], bytesPerPeer: number): Promise<void>[] {
  if (bytesPerPeer < ctx.readyBytes) return peers.map(() => Promise.resolve());
  const empty = new Uint8Array(0);
  return peers.map((p) => {
    const said = ctx.recv(p, READY_STEP, empty);
    const told = ctx.send(p, READY_STEP, empty);
    const both = Promise.all([said, told]).then(() => {});
    both.catch(() => {}); // reported through the operation that awaits it
    return both;
  });
}
