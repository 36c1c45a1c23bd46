// The launcher: spawns ranks with the environment contract, prefixes their
// output, and tears everything down when one rank fails. Plus a multi-host
// all-reduce across two network namespaces joined by a veth pair.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, alive } from './harness.ts';

const BIN = 'bin/webomni.mjs';
const started: number[] = [];
afterAll(() => {
  for (const p of started) {
    try {
      process.kill(-p, 'SIGKILL');
    } catch {}
  }
});

function run(args: string[], env: NodeJS.ProcessEnv = {}, netns?: string): Promise<{ code: number | null; out: string; err: string }> {
  const cmd = netns ? 'ip' : process.execPath;
  const argv = netns ? ['netns', 'exec', netns, process.execPath, BIN, ...args] : [BIN, ...args];
  const p = spawn(cmd, argv, { cwd: ROOT, env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(p.pid!);
  let out = '';
  let err = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (err += d));
  return new Promise((resolve) => p.on('exit', (code) => resolve({ code, out, err })));
}

describe('webomni launch', () => {
  it('runs N ranks with RANK/WORLD_SIZE/LOCAL_RANK and a job secret, prefixing output', async () => {
    const r = await run(['launch', '--nproc', '3', '--', 'test/dist/launch-fixture.ts', 'ok']);
    expect(r.code, r.err).toBe(0);
    for (let i = 0; i < 3; i++) expect(r.out).toMatch(new RegExp(`^\\[rank ${i}\\] PID ${i} \\d+ world=3 local=${i} secret=64$`, 'm'));
  }, 60_000);

  it('tears every rank down when one fails and exits with its code', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wo-launch-'));
    const t0 = Date.now();
    const r = await run(['launch', '--nproc', '3', '--', 'test/dist/launch-fixture.ts', 'fail'], { LAUNCH_FIXTURE_DIR: dir });
    rmSync(dir, { recursive: true, force: true });
    expect(r.code).toBe(7);
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(r.err).toMatch(/\[launcher\] rank 1 exited with code 7; stopping the other ranks/);
    const pids = [...r.out.matchAll(/PID \d+ (\d+)/g)].map((m) => Number(m[1]));
    expect(pids.length).toBe(3);
    for (const p of pids) expect(alive(p), `rank pid ${p} survived`).toBe(false);
  }, 60_000);

  it('an all-reduce across 2 launched ranks (comm-check)', async () => {
    const r = await run(['launch', '--nproc', '2', '--', 'comm-check', '--mib', '2']);
    expect(r.code, r.err).toBe(0);
    // Two ranks of one host: their tcp link runs over a Unix socket.
    expect(r.out).toMatch(/\[rank 0\] comm-check rank 0\/2: all-reduce of 2 MiB ok \(.* ms; links: 1 unix\)/);
    expect(r.out).toMatch(/\[rank 1\] comm-check rank 1\/2: all-reduce of 2 MiB ok \(.* ms; links: 1 unix\)/);
  }, 60_000);
});

function netnsAvailable(): string | null {
  if (process.getuid?.() !== 0) return 'not root';
  const probe = `wo-probe-${process.pid}`;
  const r = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (r.status !== 0) return `ip netns unavailable: ${(r.stderr || r.error?.message || '').trim()}`;
  spawnSync('ip', ['netns', 'del', probe]);
  return null;
}

const why = netnsAvailable();
if (why) console.log(`[skip] multi-host netns test skipped: ${why}`);

describe.skipIf(why !== null)('multi-host over network namespaces', () => {
  it.each(['tcp', 'ws'])('2 hosts × 2 ranks all-reduce across a veth pair (%s)', async (transport) => {
    const id = process.pid % 100000;
    const [a, b] = [`wo-a-${id}`, `wo-b-${id}`];
    const [va, vb] = [`woa${id}`, `wob${id}`];
    const sh = (...args: string[]) => {
      const r = spawnSync('ip', args, { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
    };
    try {
      sh('netns', 'add', a);
      sh('netns', 'add', b);
      sh('link', 'add', va, 'type', 'veth', 'peer', 'name', vb);
      sh('link', 'set', va, 'netns', a);
      sh('link', 'set', vb, 'netns', b);
      sh('-n', a, 'addr', 'add', '10.231.0.1/24', 'dev', va);
      sh('-n', b, 'addr', 'add', '10.231.0.2/24', 'dev', vb);
      for (const [ns, v] of [[a, va], [b, vb]] as const) {
        sh('-n', ns, 'link', 'set', 'lo', 'up');
        sh('-n', ns, 'link', 'set', v!, 'up');
      }
      const env = { WEBOMNI_JOB_SECRET: randomBytes(32).toString('hex') };
      const node = (rank: number) => ['launch', '--nproc', '2', '--nnodes', '2', '--node-rank', String(rank), '--master', '10.231.0.1:29561', '--transport', transport, '--', 'comm-check', '--mib', '4'];
      const [r0, r1] = await Promise.all([run(node(0), env, a), run(node(1), env, b)]);
      expect(r0.code, r0.err).toBe(0);
      expect(r1.code, r1.err).toBe(0);
      const all = r0.out + r1.out;
      // Each rank reaches the other rank of its namespace over a Unix socket and the two ranks of the other "host" over TCP.
      for (let r = 0; r < 4; r++) expect(all).toMatch(new RegExp(`comm-check rank ${r}/4: all-reduce of 4 MiB ok \\(.* ms; links: (1 unix, 2 tcp|2 tcp, 1 unix)\\)`));
    } finally {
      for (const ns of [a, b]) {
        const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout?.split('\n').filter(Boolean) ?? [];
        for (const p of pids) {
          try {
            process.kill(Number(p), 'SIGKILL');
          } catch {}
        }
        spawnSync('ip', ['netns', 'del', ns]);
      }
    }
  }, 90_000);
});
