// Every collective against a single-process reference, with real rank
// processes over real loopback sockets, for 2, 3 and 4 ranks and each
// socket transport; plus ranks as threads over the in-process transport.
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, killAll, runJob, type RankOutput } from './harness.ts';

afterAll(killAll);

function expectAllPassed(outs: RankOutput[], n: number): void {
  for (const o of outs) {
    expect(o.error, `rank ${o.rank} failed: ${o.error?.message}\n${o.stderr}`).toBeUndefined();
    expect(o.code).toBe(0);
    expect(o.result!.failures).toEqual([]);
    expect(o.result!.checks).toBeGreaterThanOrEqual(58);
  }
  expect(outs.length).toBe(n);
  // Every rank ends an all-reduce with bit-identical results.
  const h0 = outs[0]!.result!.hashes;
  expect(Object.keys(h0).length).toBeGreaterThanOrEqual(30);
  for (const o of outs) expect(o.result!.hashes).toEqual(h0);
}

// Links between ranks of one host run over Unix sockets (transports/local.ts);
// the loopback cases turn that off so each transport's TCP path is covered too.
const LOOPBACK = { WEBOMNI_LOCAL_LINKS: '0' };
const SOCKET_CASES = [
  { name: 'tcp (same-host unix links)', transport: 'tcp', env: {}, medium: 'unix' },
  { name: 'tcp (loopback)', transport: 'tcp', env: LOOPBACK, medium: 'tcp' },
  { name: 'ws (same-host unix links)', transport: 'ws', env: {}, medium: 'unix' },
  { name: 'ws (loopback)', transport: 'ws', env: LOOPBACK, medium: 'tcp' },
] as const;

describe.each(SOCKET_CASES)('collectives over $name', ({ transport, env, medium }) => {
  it.each([2, 3, 4])('%i ranks match the reference', async (n) => {
    // The multi-MiB sizes run on 2 and 4 ranks; 3 ranks covers the uneven small/medium sizes.
    const outs = await runJob({ n, transport, env, scenario: n === 3 ? 'collectives-small' : 'collectives' });
    expectAllPassed(outs, n);
    for (const o of outs) expect(o.result!.media).toEqual(Array(n - 1).fill(medium));
  }, 120_000);
});

// The large-message algorithms, each forced, for all-reduce, reduce-scatter and
// all-gather over sizes 0, 1, odd and several MiB; a small chunk size gives many
// chunks and uneven splits.
describe.each(['scatter', 'ring'] as const)('all-reduce, reduce-scatter and all-gather with the %s algorithm', (algo) => {
  it.each([2, 3, 4])('%i ranks match the reference, bit-identical across ranks and runs', async (n) => {
    const outs = await runJob({ n, transport: 'tcp', scenario: 'allreduce-algos', env: { WEBOMNI_ALLREDUCE_ALGO: algo, WEBOMNI_CHUNK_BYTES: String(256 * 1024 + 8), WEBOMNI_READY_BYTES: String(256 * 1024) } });
    for (const o of outs) {
      expect(o.error, `rank ${o.rank} failed: ${o.error?.message}\n${o.stderr}`).toBeUndefined();
      expect(o.result!.failures).toEqual([]);
      expect(o.result!.checks).toBeGreaterThanOrEqual(300);
      // Sums into registered buffers ran in place (the direct schedule's landing slots and the ring's reducing-receive buffers are in the heap).
      expect(o.result!.info.inPlaceBytes).toBeGreaterThan(0);
      expect(o.result!.info.allReduceInPlaceBytes).toBeGreaterThan(0);
    }
    expect(outs.length).toBe(n);
    for (const o of outs) expect(o.result!.hashes).toEqual(outs[0]!.result!.hashes);
    // Rank 0, late to three all-reduces below the ready gate, summed its peers' chunks where they had landed.
    if (algo === 'scatter') expect(outs.find((o) => o.rank === 0)!.result!.info.adopted).toBeGreaterThan(0);
  }, 120_000);
});

describe('collectives over inproc (ranks as threads)', () => {
  it.each([2, 3, 4])('%i thread ranks match the reference', (n) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/dist/threads.ts', n === 3 ? 'collectives' : 'collectives-small', String(n)], { cwd: ROOT, encoding: 'utf8', timeout: 120_000, killSignal: 'SIGKILL' });
    expect(r.status, r.stderr + r.stdout.slice(-2000)).toBe(0);
    const outs = r.stdout.split('\n').filter((l) => l.startsWith('RESULT ')).map((l) => ({ rank: 0, code: 0, signal: null, stderr: '', ticks: 0, result: JSON.parse(l.slice(7)) }) as RankOutput);
    expectAllPassed(outs, n);
    // Payloads went through the shared-memory rings (only frames sent before a peer's ring arrived are copies).
    for (const o of outs) {
      const sent = (o.result as unknown as { sent: { ring: number; transferred: number }[] }).sent;
      expect(sent.length).toBe(n - 1);
      for (const s of sent) expect(s.ring).toBeGreaterThan(s.transferred);
    }
  }, 120_000);
});
