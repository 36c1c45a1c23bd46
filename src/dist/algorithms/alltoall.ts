// Pairwise-exchange all-to-all(v): in round d (1..n-1) rank r sends its block
// for r+d and receives the block from r-d, so each round is a perfect matching
// and no rank is flooded by everyone at once. Receives are posted up front so
// data from a rank that is a round ahead lands directly in place.
import { mod, type AlgoCtx } from './context.ts';

/** sendBlocks[p] goes to rank p; recvBlocks[p] receives from rank p (byte views, any lengths). */
export async function pairwiseAllToAll(ctx: AlgoCtx, sendBlocks: Uint8Array[], recvBlocks: Uint8Array[]): Promise<void> {
  const n = ctx.size;
  const r = ctx.rank;
  recvBlocks[r]!.set(sendBlocks[r]!);
  const recvs = new Map<number, Promise<void>>();
  for (let d = 1; d < n; d++) {
    const from = mod(r - d, n);
    recvs.set(d, ctx.recv(from, 0, recvBlocks[from]!));
  }
  // Unobserved rejections of later rounds are reported through the round that fails first.
  for (const p of recvs.values()) p.catch(() => {});
  for (let d = 1; d < n; d++) {
    await Promise.all([ctx.send(mod(r + d, n), 0, sendBlocks[mod(r + d, n)]!), recvs.get(d)!]);
  }
}
