// Ring algorithms with chunked pipelining (the NCCL/Gloo bandwidth-optimal
// schedule). Each segment is cut into chunks and every chunk travels its own
// chain of ring steps, so the reduction of chunk c overlaps the transfer of
// chunk c+1 and the link never idles between steps.
//
// Reduce-scatter step s: send segment (own-1-s), receive segment (own-2-s) and
// reduce it in; after n-1 steps this rank holds the full reduction of `own`.
// All-gather step s: send segment (own-s), receive segment (own-s-1) in place.
import { reduceInto, scaleInto, type DType, type ReduceOp } from '../dtype.ts';
import { chunkOf, chunksFor, mod, segment, type AlgoCtx } from './context.ts';

interface Layout {
  /** Element range of segment i. */
  seg(i: number): [number, number];
  es: number;
  C: number;
  maxChunk: number;
}

function layoutFor(ctx: AlgoCtx, segOf: (i: number) => [number, number], es: number): Layout {
  let maxSeg = 0;
  for (let i = 0; i < ctx.size; i++) {
    const [a, b] = segOf(i);
    maxSeg = Math.max(maxSeg, b - a);
  }
  const C = chunksFor(maxSeg * es, ctx.chunkBytes);
  return { seg: segOf, es, C, maxChunk: Math.ceil(maxSeg / C) * es };
}

function range(l: Layout, seg: number, c: number): [number, number] {
  const [s, e] = l.seg(seg);
  return chunkOf(s, e, c, l.C, l.es);
}

/**
 * Receives are posted for every step before the first send, so data never
 * waits in the router's early buffers (no extra allocation or copy). That is
 * safe: a peer can only send step s of a chunk after the ring has consumed
 * everything this rank sent earlier for that chunk.
 */
function postAll(ctx: AlgoCtx, steps: { step: number; dest: Uint8Array; reduce?: (dst: Uint8Array, src: Uint8Array) => void }[]): Promise<void>[] {
  const prev = mod(ctx.rank - 1, ctx.size);
  return steps.map(({ step, dest, reduce }) => {
    const p = ctx.recv(prev, step, dest, reduce);
    p.catch(() => {}); // reported through the step that awaits it
    return p;
  });
}

async function allGatherChain(ctx: AlgoCtx, l: Layout, buf: Uint8Array, own: number, c: number, stepBase: number, recvs?: Promise<void>[]): Promise<void> {
  const n = ctx.size;
  const next = mod(ctx.rank + 1, n);
  const posted =
    recvs ??
    postAll(
      ctx,
      Array.from({ length: n - 1 }, (_, s) => {
        const [x, y] = range(l, mod(own - s - 1, n), c);
        return { step: (stepBase + s) * l.C + c, dest: buf.subarray(x, y) };
      }),
    );
  for (let s = 0; s < n - 1; s++) {
    const [a, b] = range(l, mod(own - s, n), c);
    await Promise.all([ctx.send(next, (stepBase + s) * l.C + c, buf.subarray(a, b)), posted[s]!]);
  }
}

/**
 * In-place ring all-reduce = reduce-scatter + all-gather, pipelined per chunk.
 * Reduce-scatter receives are reducing receives straight into `buf`: each
 * fragment is added into its segment the moment it lands (from a reused,
 * cache-warm landing buffer), so there is no scratch copy of the data, and
 * the reduction of one fragment overlaps the transfer of the next. A segment
 * is only sent on after its receive for that step completed, and a segment
 * being sent is never a receive target at the same time (ring invariant).
 */
export async function ringAllReduce(ctx: AlgoCtx, buf: Uint8Array, dtype: DType, op: ReduceOp, es: number): Promise<void> {
  const n = ctx.size;
  const count = buf.length / es;
  const l = layoutFor(ctx, (i) => segment(count, n, i), es);
  const own = mod(ctx.rank + 1, n);
  const next = mod(ctx.rank + 1, n);
  const fold = (dst: Uint8Array, src: Uint8Array) => reduceInto(dtype, op, dst, src);
  const chain = async (c: number) => {
    const rs = postAll(
      ctx,
      Array.from({ length: n - 1 }, (_, s) => {
        const [x, y] = range(l, mod(own - 2 - s, n), c);
        return { step: s * l.C + c, dest: buf.subarray(x, y), reduce: fold };
      }),
    );
    const ag = postAll(
      ctx,
      Array.from({ length: n - 1 }, (_, s) => {
        const [x, y] = range(l, mod(own - s - 1, n), c);
        return { step: (n - 1 + s) * l.C + c, dest: buf.subarray(x, y) };
      }),
    );
    for (let s = 0; s < n - 1; s++) {
      const [a, b] = range(l, mod(own - 1 - s, n), c);
      await Promise.all([ctx.send(next, s * l.C + c, buf.subarray(a, b)), rs[s]!]);
    }
    if (op === 'avg') {
      const [a, b] = range(l, own, c);
      scaleInto(dtype, buf.subarray(a, b), n);
    }
    await allGatherChain(ctx, l, buf, own, c, n - 1, ag);
  };
  await Promise.all(Array.from({ length: l.C }, (_, c) => chain(c)));
}

/** Out-of-place ring reduce-scatter: input = n blocks of output.length bytes; input is not modified. */
export async function ringReduceScatter(ctx: AlgoCtx, input: Uint8Array, output: Uint8Array, dtype: DType, op: ReduceOp, es: number): Promise<void> {
  const n = ctx.size;
  const m = output.length / es;
  const l = layoutFor(ctx, (i) => [i * m, (i + 1) * m], es);
  const r = ctx.rank;
  const next = mod(r + 1, n);
  const prev = mod(r - 1, n);
  // Two scratch chunks per chain: one being sent while the next one is received into.
  const tmp = takeScratch(l.maxChunk * l.C * 2);
  const chain = async (c: number) => {
    const [o0, o1] = chunkOf(0, m, c, l.C, es);
    const slots = [tmp.subarray(2 * c * l.maxChunk, 2 * c * l.maxChunk + (o1 - o0)), tmp.subarray((2 * c + 1) * l.maxChunk, (2 * c + 1) * l.maxChunk + (o1 - o0))];
    let acc: Uint8Array | null = null;
    for (let s = 0; s < n - 1; s++) {
      const [a, b] = range(l, mod(r - 1 - s, n), c);
      const [x, y] = range(l, mod(r - 2 - s, n), c);
      const last = s === n - 2;
      const into = last ? output.subarray(o0, o1) : slots[s % 2]!;
      const step = s * l.C + c;
      await Promise.all([ctx.send(next, step, acc ?? input.subarray(a, b)), ctx.recv(prev, step, into)]);
      reduceInto(dtype, op, into, input.subarray(x, y));
      acc = into;
    }
    if (op === 'avg') scaleInto(dtype, output.subarray(o0, o1), n);
  };
  await Promise.all(Array.from({ length: l.C }, (_, c) => chain(c)));
  // Only after success: a failed operation may still have a fragment landing in it.
  spareScratch = spareScratch === null || tmp.buffer.byteLength > spareScratch.length ? new Uint8Array(tmp.buffer) : spareScratch;
}

/**
 * Reduce-scatter scratch kept across calls (taken by one operation at a time;
 * others allocate): fresh memory costs a page fault per 4 KiB on first touch,
 * far more than the copies the scratch exists for.
 */
let spareScratch: Uint8Array | null = null;
function takeScratch(n: number): Uint8Array {
  const s = spareScratch;
  if (s !== null && s.length >= n) {
    spareScratch = null;
    return s.subarray(0, n);
  }
  return new Uint8Array(n);
}

/** Ring all-gather: output = n blocks of `block` bytes; this rank's block is already in place. */
export async function ringAllGather(ctx: AlgoCtx, output: Uint8Array, es: number): Promise<void> {
  const n = ctx.size;
  const m = output.length / es / n;
  const l = layoutFor(ctx, (i) => [i * m, (i + 1) * m], es);
  await Promise.all(Array.from({ length: l.C }, (_, c) => allGatherChain(ctx, l, output, ctx.rank, c, 0)));
}
