// Spawns the local ranks of a job, serves the rendezvous store (node 0),
// streams each rank's output with a rank prefix, and tears every rank down
// when one fails, exiting with the failing rank's code.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatAddress, parseAddress, LOOPBACK } from '../../transports/address.ts';
import { DistError } from './errors.ts';
import { StoreServer } from './store.ts';

export interface LaunchOptions {
  nproc: number;
  nnodes: number;
  nodeRank: number;
  /** host:port of the store; node 0 serves it. Port 0 = any free port (single node only). */
  master: string;
  transport: string;
  /** Interface this node's ranks listen on (loopback unless given or inferred for multi-node). */
  host?: string;
  command: string[];
  /** Extra environment for every rank. */
  env?: NodeJS.ProcessEnv;
  /** Seconds between SIGTERM and SIGKILL when tearing ranks down. */
  graceMs?: number;
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
}

const BIN = fileURLToPath(new URL('../../bin/webomni.mjs', import.meta.url));

/** The local address this host uses to reach `host` (no packet is sent). */
async function localAddressTowards(host: string): Promise<string> {
  const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.connect(9, host, () => resolve());
    });
    return s.address().address;
  } finally {
    s.close();
  }
}

function isLoopback(h: string): boolean {
  return h === 'localhost' || h === '::1' || h.startsWith('127.');
}

function prefixLines(src: NodeJS.ReadableStream, dst: NodeJS.WritableStream, prefix: string): void {
  let buf = '';
  src.setEncoding?.('utf8');
  src.on('data', (d: string) => {
    buf += d;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      dst.write(`${prefix}${buf.slice(0, i)}\n`);
      buf = buf.slice(i + 1);
    }
  });
  src.on('end', () => {
    if (buf) dst.write(`${prefix}${buf}\n`);
  });
}

/** The command each rank runs: a script path (.ts/.js/.mjs) or a webomni subcommand. */
export function rankArgv(command: string[]): string[] {
  const [first, ...rest] = command;
  if (!first) throw new DistError('launch: no command given after "--"');
  if (/\.(ts|mts|js|mjs)$/.test(first) && existsSync(first)) return ['--import', 'tsx', first, ...rest];
  return [BIN, ...command];
}

export async function launch(o: LaunchOptions): Promise<number> {
  const out = o.out ?? process.stdout;
  const err = o.err ?? process.stderr;
  if (!Number.isInteger(o.nproc) || o.nproc < 1) throw new DistError(`--nproc must be a positive integer, got ${o.nproc}`);
  if (!Number.isInteger(o.nnodes) || o.nnodes < 1) throw new DistError(`--nnodes must be a positive integer, got ${o.nnodes}`);
  if (!Number.isInteger(o.nodeRank) || o.nodeRank < 0 || o.nodeRank >= o.nnodes) throw new DistError(`--node-rank must be in [0, ${o.nnodes}), got ${o.nodeRank}`);
  const { host: masterHost, port: masterPort } = parseAddress(o.master);
  if (o.nnodes > 1 && masterPort === 0) throw new DistError('multi-node jobs need a fixed --master port');
  // One secret per job: generated here for a single node; several node
  // launchers must share one, so it has to come from the environment.
  let secret = process.env.WEBOMNI_JOB_SECRET;
  if (!secret) {
    if (o.nnodes > 1) throw new DistError('multi-node jobs need the same WEBOMNI_JOB_SECRET on every node (e.g. `export WEBOMNI_JOB_SECRET=$(openssl rand -hex 32)` before launching)');
    secret = randomBytes(32).toString('hex');
  }
  const host = o.host ?? (isLoopback(masterHost) ? LOOPBACK : await localAddressTowards(masterHost));
  let server: StoreServer | null = null;
  let storeAddress = formatAddress(masterHost, masterPort);
  if (o.nodeRank === 0) {
    server = new StoreServer({ secret: Buffer.from(secret, /^[0-9a-f]+$/i.test(secret) && secret.length % 2 === 0 ? 'hex' : 'utf8'), host: masterHost, port: masterPort, log: (m) => err.write(`[launcher] ${m}\n`) });
    storeAddress = await server.start();
  }
  const { port: storePort } = parseAddress(storeAddress);
  const worldSize = o.nproc * o.nnodes;
  const argv = rankArgv(o.command);
  const ranks: { rank: number; proc: ChildProcess }[] = [];
  let firstFailure: { rank: number; code: number } | null = null;
  let tearingDown = false;
  let killTimer: NodeJS.Timeout | undefined;

  const teardown = (why: string) => {
    if (tearingDown) return;
    tearingDown = true;
    err.write(`[launcher] ${why}; stopping the other ranks\n`);
    for (const r of ranks) if (r.proc.exitCode === null && r.proc.signalCode === null) signalGroup(r.proc, 'SIGTERM');
    killTimer = setTimeout(() => {
      for (const r of ranks) if (r.proc.exitCode === null && r.proc.signalCode === null) signalGroup(r.proc, 'SIGKILL');
    }, o.graceMs ?? 3000);
    killTimer.unref();
  };
  const onSignal = (sig: NodeJS.Signals) => {
    firstFailure ??= { rank: -1, code: 128 + (sig === 'SIGINT' ? 2 : 15) };
    teardown(`received ${sig}`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const exits: Promise<void>[] = [];
  for (let local = 0; local < o.nproc; local++) {
    const rank = o.nodeRank * o.nproc + local;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...o.env,
      RANK: String(rank),
      WORLD_SIZE: String(worldSize),
      LOCAL_RANK: String(local),
      LOCAL_WORLD_SIZE: String(o.nproc),
      NODE_RANK: String(o.nodeRank),
      MASTER_ADDR: masterHost,
      MASTER_PORT: String(storePort),
      WEBOMNI_STORE: formatAddress(masterHost, storePort),
      WEBOMNI_JOB_SECRET: secret,
      WEBOMNI_TRANSPORT: o.transport,
      WEBOMNI_HOST: host,
    };
    // Each rank leads its own process group so a teardown reaches its children too.
    const proc = spawn(process.execPath, argv, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    ranks.push({ rank, proc });
    prefixLines(proc.stdout!, out, `[rank ${rank}] `);
    prefixLines(proc.stderr!, err, `[rank ${rank}] `);
    exits.push(
      new Promise((resolve) => {
        proc.on('exit', (code, signal) => {
          const failed = code !== 0;
          if (failed && !tearingDown) {
            const c = code ?? 128 + signalNumber(signal);
            firstFailure ??= { rank, code: c };
            teardown(`rank ${rank} ${signal ? `was killed by ${signal}` : `exited with code ${code}`}`);
          }
          resolve();
        });
        proc.on('error', (e) => {
          firstFailure ??= { rank, code: 127 };
          teardown(`rank ${rank} could not start: ${e.message}`);
          resolve();
        });
      }),
    );
  }
  await Promise.all(exits);
  clearTimeout(killTimer);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  await server?.close();
  if (firstFailure) {
    const f = firstFailure as { rank: number; code: number };
    err.write(`[launcher] job failed${f.rank >= 0 ? ` (rank ${f.rank})` : ''}, exit code ${f.code}\n`);
    return f.code;
  }
  return 0;
}

function signalGroup(p: ChildProcess, sig: NodeJS.Signals): void {
  try {
    process.kill(-p.pid!, sig);
  } catch {
    try {
      p.kill(sig);
    } catch {}
  }
}

function signalNumber(s: NodeJS.Signals | null): number {
  const table: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGTERM: 15 };
  return s ? (table[s] ?? 1) : 1;
}
