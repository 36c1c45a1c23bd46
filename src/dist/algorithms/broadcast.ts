// Pipelined chain broadcast for large buffers: root -> root+1 -> ... -> root-1,
// chunk by chunk, so every link carries the buffer once and all links are busy
// at the same time (bandwidth-optimal, like NCCL's ring broadcast).
import { chunkOf, chunksFor, mod, type AlgoCtx } from './context.ts';

export async function chainBroadcast(ctx: AlgoCtx, buf: Uint8Array, root: number): Promise<void> {
  const n = ctx.size;
  const pos = mod(ctx.rank - root, n);
  const prev = mod(ctx.rank - 1, n);
  const next = mod(ctx.rank + 1, n);
  const C = chunksFor(buf.length, ctx.chunkBytes);
  const chain = async (c: number) => {
    const [a, b] = chunkOf(0, buf.length, c, C, 1);
    const part = buf.subarray(a, b);
    if (pos > 0) await ctx.recv(prev, c, part);
    if (pos < n - 1) await ctx.send(next, c, part);
  };
  await Promise.all(Array.from({ length: C }, (_, c) => chain(c)));
}
