// Scenarios for failure and bad-input tests.
import type { World } from '../../src/dist/init.ts';
import type { Report } from './scenarios.ts';

/**
 * All-reduce in a loop until something fails. Prints `TICK <rank> <i>` after
 * each round so the test knows the ranks are mid-collective before it kills one.
 * The error (with its time) is reported by worker.ts.
 */
export async function faultScenario(world: World): Promise<Report> {
  const buf = new Float32Array(1 << 20);
  for (let i = 0; ; i++) {
    buf.fill(1);
    await world.allReduce(buf);
    if (buf[0] !== world.size) throw new Error(`bad sum ${buf[0]}`);
    if (i % 5 === 0) process.stdout.write(`TICK ${world.rank} ${i}\n`);
  }
}

async function errorOf(f: () => unknown): Promise<string> {
  try {
    await f();
  } catch (e) {
    return `${(e as Error).name}: ${(e as Error).message}`;
  }
  return 'no error';
}

/** Bad inputs on 2 ranks; each case uses a fresh group because a failed collective breaks its group. */
export async function badInput(world: World): Promise<Report> {
  const me = world.rank;
  const info: Record<string, string> = {};
  const fresh = () => world.newGroup([0, 1]);

  let g = await fresh();
  info.lengths = await errorOf(() => g.allReduce(new Float32Array(me === 0 ? 10 : 12)));
  info.afterFailure = await errorOf(() => g.allReduce(new Float32Array(10)));

  g = await fresh();
  info.order = await errorOf(async () => {
    const a = me === 0 ? g.allReduce(new Float32Array(4)) : g.allGather(new Float32Array(8), new Float32Array(4));
    const b = me === 0 ? g.allGather(new Float32Array(8), new Float32Array(4)) : g.allReduce(new Float32Array(4));
    await Promise.all([a, b]);
  });

  g = await fresh();
  info.dtype = await errorOf(() => g.allReduce(me === 0 ? new Float32Array(8) : new Int32Array(8)));

  g = await fresh();
  info.ringLengths = await errorOf(() => g.allReduce(new Float32Array(me === 0 ? 1_000_000 : 1_000_001)));

  g = await fresh();
  info.p2pLength = await errorOf(() => (me === 0 ? g.send(new Float32Array(6), 1) : g.recv(new Float32Array(4), 0)));

  const only1 = await world.newGroup([1]);
  info.wrongGroup = me === 0 ? await errorOf(() => only1.allReduce(new Float32Array(2))) : await errorOf(() => only1.allReduce(new Float32Array(2)).wait());

  g = await fresh();
  info.localShape = await errorOf(() => g.allGather(new Float32Array(5), new Float32Array(3)));
  info.badRoot = await errorOf(() => g.broadcast(new Float32Array(3), 5));
  info.avgInt = await errorOf(() => g.allReduce(new Int32Array(3), { op: 'avg' }));
  info.a2avCounts = await errorOf(() => g.allToAllV(new Float32Array(4), new Float32Array(4), { sendCounts: [1], recvCounts: [2, 2] }));
  info.timeout = await errorOf(() => (me === 0 ? g.recv(new Float32Array(1), 1, 99, { timeoutMs: 300 }) : Promise.resolve()));
  g.destroy();
  info.afterDestroy = await errorOf(() => g.allReduce(new Float32Array(2)));

  await world.barrier();
  return { rank: me, checks: Object.keys(info).length, failures: [], hashes: {}, info };
}
