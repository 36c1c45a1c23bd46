// Small-message algorithms: one latency step instead of the ring's 2(n-1).
// Every rank exchanges directly with every other; reductions are applied in
// rank order 0..n-1 so every rank computes bit-identical results.
import { reduceInto, scaleInto, type DType, type ReduceOp } from '../dtype.ts';
import { readyGate, type AlgoCtx } from './context.ts';

function peers(ctx: AlgoCtx): number[] {
  return Array.from({ length: ctx.size }, (_, p) => p).filter((p) => p !== ctx.rank);
}

/** contributions[p] is rank p's data; result written to out in rank order. */
function reduceInRankOrder(contrib: Uint8Array[], out: Uint8Array, dtype: DType, op: ReduceOp): void {
  const acc = contrib[0]!.slice();
  for (let p = 1; p < contrib.length; p++) reduceInto(dtype, op, acc, contrib[p]!);
  if (op === 'avg') scaleInto(dtype, acc, contrib.length);
  out.set(acc);
}

export async function directAllReduce(ctx: AlgoCtx, buf: Uint8Array, dtype: DType, op: ReduceOp): Promise<void> {
  const contrib: Uint8Array[] = [];
  const io: Promise<void>[] = [];
  for (let p = 0; p < ctx.size; p++) {
    if (p === ctx.rank) {
      contrib.push(buf);
      continue;
    }
    const t = new Uint8Array(buf.length);
    contrib.push(t);
    io.push(ctx.send(p, 0, buf), ctx.recv(p, 0, t));
  }
  await Promise.all(io);
  reduceInRankOrder(contrib, buf, dtype, op);
}

export async function directReduceScatter(ctx: AlgoCtx, input: Uint8Array, output: Uint8Array, dtype: DType, op: ReduceOp): Promise<void> {
  const blk = output.length;
  const contrib: Uint8Array[] = [];
  const io: Promise<void>[] = [];
  for (let p = 0; p < ctx.size; p++) {
    if (p === ctx.rank) {
      contrib.push(input.subarray(p * blk, (p + 1) * blk));
      continue;
    }
    const t = new Uint8Array(blk);
    contrib.push(t);
    io.push(ctx.send(p, 0, input.subarray(p * blk, (p + 1) * blk)), ctx.recv(p, 0, t));
  }
  await Promise.all(io);
  reduceInRankOrder(contrib, output, dtype, op);
}

export async function directAllGather(ctx: AlgoCtx, output: Uint8Array): Promise<void> {
  const blk = output.length / ctx.size;
  const mine = output.subarray(ctx.rank * blk, (ctx.rank + 1) * blk);
  const ps = peers(ctx);
  const recvs = ps.map((p) => ctx.recv(p, 0, output.subarray(p * blk, (p + 1) * blk)));
  // Large blocks wait for each peer's receives (no early data; see readyGate).
  const ready = readyGate(ctx, ps, blk);
  await Promise.all([...recvs, ...ready, ...ps.map((p, k) => ready[k]!.then(() => ctx.send(p, 0, mine)))]);
}

export async function directBroadcast(ctx: AlgoCtx, buf: Uint8Array, root: number): Promise<void> {
  if (ctx.rank === root) await Promise.all(peers(ctx).map((p) => ctx.send(p, 0, buf)));
  else await ctx.recv(root, 0, buf);
}

/** Every rank tells every other it has arrived: done when all have. */
export async function barrier(ctx: AlgoCtx): Promise<void> {
  const empty = new Uint8Array(0);
  await Promise.all(peers(ctx).flatMap((p) => [ctx.send(p, 0, empty), ctx.recv(p, 0, new Uint8Array(0))]));
}
