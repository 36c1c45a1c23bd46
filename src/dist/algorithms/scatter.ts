// Direct all-reduce for large messages on small groups: a direct
// reduce-scatter (rank r sends segment j straight to rank j and reduces the
// n−1 copies of its own segment as they arrive) followed by a direct
// all-gather (rank r sends its reduced segment to every other rank). Every
// rank sends and receives 2(n−1)/n of the buffer, exactly as in the ring, but
// a chunk waits for 2 transfers instead of a chain of 2(n−1) ring steps. When
// ranks outnumber cores, each ring step waits for the previous rank to be
// scheduled, and the chains stall; here every transfer can start at once.
//
// Determinism: segment r is reduced only by rank r, always in the order
// own, r+1, r+2, … (mod n), whatever order the data arrives in; the all-gather
// copies it, so every rank ends with bit-identical results, run after run.
// The first peer's data is a reducing receive straight into `buf`; the others
// land (kernel → scratch, no user-space copy on TCP) in a scratch buffer of
// (n−2) segments, reused across calls, and are folded in turn.
//
// Buffer safety: segment p of `buf` is sent to p in the reduce-scatter and
// later overwritten by p's all-gather data; p can only send that after it has
// received all of our segment-p bytes, i.e. after they left our buffer.
import { reduceInto, scaleInto, type DType, type ReduceOp } from '../dtype.ts';
import { chunkOf, chunksFor, mod, segment, type AlgoCtx } from './context.ts';

/** One reusable scratch area per process (taken by one operation at a time; others allocate). */
let spare: Uint8Array | null = null;
function takeScratch(n: number): Uint8Array {
  if (spare !== null && spare.length >= n) {
    const s = spare;
    spare = null;
    return s.subarray(0, n);
  }
  return new Uint8Array(n);
}
function giveScratch(s: Uint8Array): void {
  const whole = new Uint8Array(s.buffer, 0, s.buffer.byteLength);
  if (spare === null || spare.length < whole.length) spare = whole;
}

const quiet = <T>(p: Promise<T>): Promise<T> => {
  p.catch(() => {}); // reported through whoever awaits it
  return p;
};

export async function scatterAllReduce(ctx: AlgoCtx, buf: Uint8Array, dtype: DType, op: ReduceOp, es: number): Promise<void> {
  const n = ctx.size;
  const r = ctx.rank;
  const count = buf.length / es;
  let maxSeg = 0;
  for (let i = 0; i < n; i++) {
    const [a, b] = segment(count, n, i);
    maxSeg = Math.max(maxSeg, b - a);
  }
  const C = chunksFor(maxSeg * es, ctx.chunkBytes);
  const range = (seg: number, c: number) => {
    const [s, e] = segment(count, n, seg);
    return chunkOf(s, e, c, C, es);
  };
  /** Peers in reduction order (after this rank's own contribution). */
  const order = Array.from({ length: n - 1 }, (_, k) => mod(r + 1 + k, n));
  const [os] = segment(count, n, r);
  const [, oe] = segment(count, n, r);
  const segBytes = (oe - os) * es;
  const scratch = n > 2 && segBytes > 0 ? takeScratch((n - 2) * segBytes) : null;
  const slot = (k: number, c: number) => {
    const [a, b] = range(r, c);
    const base = (k - 1) * segBytes - os * es;
    return scratch!.subarray(base + a, base + b);
  };
  const fold = (dst: Uint8Array, src: Uint8Array) => reduceInto(dtype, op, dst, src);

  // Every receive is posted before the first send, so no data waits in the router's early buffers.
  const rs = order.map((p, k) =>
    Array.from({ length: C }, (_, c) => {
      const [a, b] = range(r, c);
      return quiet(k === 0 ? ctx.recv(p, c, buf.subarray(a, b), fold) : ctx.recv(p, c, slot(k, c)));
    }),
  );
  const ag = order.flatMap((p) =>
    Array.from({ length: C }, (_, c) => {
      const [a, b] = range(p, c);
      return quiet(ctx.recv(p, C + c, buf.subarray(a, b)));
    }),
  );
  // Reduce-scatter sends: chunk after chunk on each link (so chunk 0 completes
  // first at its owner and the all-gather can start), all links at once.
  const sends = order.map(async (p) => {
    for (let c = 0; c < C; c++) {
      const [a, b] = range(p, c);
      await ctx.send(p, c, buf.subarray(a, b));
    }
  });
  const own = async (c: number) => {
    const [a, b] = range(r, c);
    const d = buf.subarray(a, b);
    await rs[0]![c];
    for (let k = 1; k < n - 1; k++) {
      await rs[k]![c];
      fold(d, slot(k, c));
    }
    if (op === 'avg') scaleInto(dtype, d, n);
    await Promise.all(order.map((p) => ctx.send(p, C + c, d)));
  };
  await Promise.all([...sends, ...Array.from({ length: C }, (_, c) => own(c)), ...ag]);
  // Only after success: a failed operation may still have a fragment landing in it.
  if (scratch !== null) giveScratch(scratch);
}
