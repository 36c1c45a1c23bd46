// Spawns real rank processes for multi-rank tests and cleans them up.
// Each rank is its own process group (detached), so a kill reaches the
// process and anything it started; cleanup() SIGKILLs every group.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { StoreServer } from '../../src/dist/store.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));

export interface RankOutput {
  rank: number;
  code: number | null;
  signal: string | null;
  result?: { rank: number; checks: number; failures: string[]; hashes: Record<string, string>; info: Record<string, unknown>; media?: string[] };
  error?: { rank: number; name: string; message: string; failedRank?: number; elapsedMs: number };
  /** Wall-clock time (Date.now()) the ERROR line was read. */
  errorAt?: number;
  stderr: string;
  ticks: number;
}

export interface Job {
  procs: ChildProcess[];
  outputs: Promise<RankOutput[]>;
  secret: string;
  store: StoreServer;
  storeAddress: string;
  /** Resolves once every listed rank has printed at least `n` TICK lines. */
  ticked(ranks: number[], n?: number): Promise<void>;
  kill(rank: number, signal: NodeJS.Signals): void;
  cleanup(): Promise<void>;
}

const live = new Set<number>();

export function killAll(): void {
  for (const pid of live) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {}
  }
  live.clear();
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface JobOptions {
  n: number;
  transport?: 'tcp' | 'ws';
  scenario: string;
  env?: Record<string, string>;
  /** Per-rank environment overrides. */
  rankEnv?: (rank: number) => Record<string, string>;
  /** Ranks the test plays itself (not spawned). */
  skip?: number[];
  script?: string;
}

export async function startJob(o: JobOptions): Promise<Job> {
  const secret = randomBytes(32).toString('hex');
  const store = new StoreServer({ secret: Buffer.from(secret, 'hex'), log: () => {} });
  const storeAddress = await store.start();
  const procs: ChildProcess[] = [];
  const outs: Promise<RankOutput>[] = [];
  const ticks: number[] = new Array(o.n).fill(0);
  const tickWaiters: (() => void)[] = [];
  for (let rank = 0; rank < o.n; rank++) {
    if (o.skip?.includes(rank)) continue;
    const p = spawn(process.execPath, ['--import', 'tsx', o.script ?? WORKER, o.scenario], {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        RANK: String(rank),
        WORLD_SIZE: String(o.n),
        WEBOMNI_STORE: storeAddress,
        WEBOMNI_JOB_SECRET: secret,
        WEBOMNI_TRANSPORT: o.transport ?? 'tcp',
        ...o.env,
        ...o.rankEnv?.(rank),
      },
    });
    live.add(p.pid!);
    procs.push(p);
    const out: RankOutput = { rank, code: null, signal: null, stderr: '', ticks: 0 };
    let buf = '';
    p.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.startsWith('RESULT ')) out.result = JSON.parse(line.slice(7));
        else if (line.startsWith('ERROR ')) {
          out.error = JSON.parse(line.slice(6));
          out.errorAt = Date.now();
        } else if (line.startsWith('TICK ')) {
          out.ticks++;
          ticks[rank] = out.ticks;
          for (const w of tickWaiters.splice(0)) w();
        }
      }
    });
    p.stderr!.on('data', (d: Buffer) => (out.stderr += d.toString()));
    outs.push(
      new Promise((resolve) =>
        p.on('exit', (code, signal) => {
          live.delete(p.pid!);
          out.code = code;
          out.signal = signal;
          resolve(out);
        }),
      ),
    );
  }
  return {
    procs,
    secret,
    store,
    storeAddress,
    outputs: Promise.all(outs),
    async ticked(ranks, n = 1) {
      while (!ranks.every((r) => ticks[r]! >= n)) await new Promise<void>((r) => tickWaiters.push(r));
    },
    kill(rank, signal) {
      const p = procs.find((_, i) => i === rank - (o.skip?.filter((s) => s < rank).length ?? 0));
      process.kill(p!.pid!, signal);
    },
    async cleanup() {
      for (const p of procs) {
        try {
          process.kill(-p.pid!, 'SIGKILL');
        } catch {}
        live.delete(p.pid!);
      }
      await store.close();
    },
  };
}

export async function runJob(o: JobOptions): Promise<RankOutput[]> {
  const job = await startJob(o);
  try {
    return await job.outputs;
  } finally {
    await job.cleanup();
  }
}
