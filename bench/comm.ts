// `npm run bench -- comm [--ranks 2,4] [--transports tcp,ws,inproc] [--colls all_reduce,…] [--min-mib 0] [--max-mib 256] [--no-gloo]`
//
// nccl-tests-style table for all-reduce, reduce-scatter, all-gather and
// all-to-all over 8 B … 256 MiB, per rank count and transport; in the same run,
// the same sizes with raw node:net (the link's limit: every rank streams the
// bytes to its ring neighbour while receiving from the other, no framing) and
// with PyTorch's Gloo backend. busbw uses nccl-tests' factors: all-reduce
// 2(n−1)/n, the others (n−1)/n of algbw = size / time. Results go to
// bench/results/comm.json in the shared format.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, workerData } from 'node:worker_threads';
import { initFromEnv, initProcessGroup, type World } from '../src/dist/init.ts';
import { StoreServer } from '../src/dist/store.ts';
import { createInProcFabric } from '../transports/inproc.ts';

const COLLS = ['all_reduce', 'reduce_scatter', 'all_gather', 'all_to_all'] as const;
type Coll = (typeof COLLS)[number] | 'raw';
const ALL_SIZES = [8, 64, 512, 4 << 10, 32 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20, 256 << 20];
const SELF = fileURLToPath(import.meta.url);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Spec {
  sizes: number[];
  colls: Coll[];
}
interface Sample {
  coll: Coll;
  bytes: number;
  timeS: number | null;
}

const busFactor = (c: Coll, n: number) => (c === 'all_reduce' ? (2 * (n - 1)) / n : c === 'raw' ? 1 : (n - 1) / n);
const iterations = (bytes: number) => Math.max(3, Math.min(50, Math.floor((96 << 20) / Math.max(bytes, 1))));

// ---------------- rank side ----------------
async function timeIt(world: World, bytes: number, op: () => PromiseLike<unknown>): Promise<number> {
  await op();
  await world.barrier();
  const it = iterations(bytes);
  const t0 = performance.now();
  for (let i = 0; i < it; i++) await op();
  await world.barrier();
  return (performance.now() - t0) / 1000 / it;
}

/** Ring exchange over raw sockets: send `bytes` to next while receiving `bytes` from prev. */
async function rawRing(world: World): Promise<(bytes: number) => Promise<void>> {
  const n = world.size;
  const me = world.rank;
  const store = world.comm.store;
  let fromPrev!: net.Socket;
  const accepted = new Promise<void>((resolve) => {
    const srv = net.createServer({ noDelay: true }, (s) => {
      fromPrev = s;
      srv.close();
      resolve();
    });
    srv.listen(0, '127.0.0.1', () => store.set(`bench/raw/${me}`, (srv.address() as net.AddressInfo).port));
  });
  const port = Number(await store.get(`bench/raw/${(me + 1) % n}`));
  const toNext = net.connect({ port, host: '127.0.0.1', noDelay: true });
  await new Promise((r) => toNext.once('connect', r));
  await accepted;
  const chunk = Buffer.alloc(1 << 20, 1);
  let want = 0;
  let got = 0;
  let onDone: (() => void) | null = null;
  fromPrev.on('data', (d: Buffer) => {
    got += d.length;
    if (onDone && got >= want) onDone();
  });
  return async (bytes) => {
    want += bytes;
    const recvDone = got >= want ? Promise.resolve() : new Promise<void>((r) => (onDone = () => ((onDone = null), r())));
    for (let sent = 0; sent < bytes; ) {
      const k = Math.min(chunk.length, bytes - sent);
      sent += k;
      if (!toNext.write(k === chunk.length ? chunk : chunk.subarray(0, k))) await new Promise((r) => toNext.once('drain', r));
    }
    await recvDone;
  };
}

async function rankMain(world: World, spec: Spec): Promise<void> {
  const n = world.size;
  const emit = (s: Sample) => world.rank === 0 && process.stdout.write(`SAMPLE ${JSON.stringify(s)}\n`);
  for (const coll of spec.colls) {
    const raw = coll === 'raw' ? await rawRing(world) : null;
    for (const size of spec.sizes) {
      const total = Math.max(1, Math.floor(size / 4));
      const per = Math.max(1, Math.floor(total / n));
      let bytes: number;
      let op: () => PromiseLike<unknown>;
      if (coll === 'raw') {
        bytes = size;
        op = () => raw!(size);
      } else if (coll === 'all_reduce') {
        const b = new Float32Array(total).fill(1);
        bytes = b.byteLength;
        op = () => world.allReduce(b);
      } else if (coll === 'reduce_scatter') {
        const i = new Float32Array(per * n).fill(1);
        const o = new Float32Array(per);
        bytes = i.byteLength;
        op = () => world.reduceScatter(o, i);
      } else if (coll === 'all_gather') {
        const i = new Float32Array(per).fill(1);
        const o = new Float32Array(per * n);
        bytes = o.byteLength;
        op = () => world.allGather(o, i);
      } else {
        const i = new Float32Array(per * n).fill(1);
        const o = new Float32Array(per * n);
        bytes = i.byteLength;
        op = () => world.allToAll(o, i);
      }
      emit({ coll, bytes, timeS: await timeIt(world, bytes, op) });
    }
  }
  await world.shutdown();
}

if (process.env.WEBOMNI_COMM_BENCH_SPEC && isMainThread) {
  const spec = JSON.parse(process.env.WEBOMNI_COMM_BENCH_SPEC) as Spec;
  await rankMain(await initFromEnv(), spec);
  process.exit(0);
}
if (!isMainThread && (workerData as { commBench?: boolean })?.commBench) {
  const d = workerData as { rank: number; n: number; store: string; secret: Uint8Array; ports: Map<number, import('node:worker_threads').MessagePort>; spec: Spec };
  const world = await initProcessGroup({ rank: d.rank, worldSize: d.n, secret: d.secret, storeAddress: d.store, transport: 'inproc', inprocPorts: d.ports });
  await rankMain(world, d.spec);
}

// ---------------- orchestration ----------------
function collect(onLine: (l: string) => void): (d: Buffer) => void {
  let buf = '';
  return (d) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  };
}

async function runProcesses(n: number, transport: string, spec: Spec): Promise<Sample[]> {
  const secret = randomBytes(32);
  const server = new StoreServer({ secret, log: () => {} });
  const store = await server.start();
  const samples: Sample[] = [];
  const procs = Array.from({ length: n }, (_, rank) => {
    // WEBOMNI_COMM_BENCH_NODE_ARGS: extra node flags for the rank processes (e.g. --cpu-prof).
    const extra = (process.env.WEBOMNI_COMM_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const p = spawn(process.execPath, [...extra, '--import', 'tsx', SELF], {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, RANK: String(rank), WORLD_SIZE: String(n), WEBOMNI_STORE: store, WEBOMNI_JOB_SECRET: secret.toString('hex'), WEBOMNI_TRANSPORT: transport === 'raw' ? 'tcp' : transport, WEBOMNI_COMM_BENCH_SPEC: JSON.stringify(spec) },
    });
    p.stdout!.on('data', collect((l) => l.startsWith('SAMPLE ') && samples.push(JSON.parse(l.slice(7)))));
    return p;
  });
  const codes = await Promise.all(procs.map((p) => new Promise<number | null>((r) => p.on('exit', r))));
  for (const p of procs) {
    try {
      process.kill(-p.pid!, 'SIGKILL');
    } catch {}
  }
  await server.close();
  if (codes.some((c) => c !== 0)) console.error(`[comm bench] ${transport} n=${n}: a rank exited with ${codes.join(',')}`);
  return samples;
}

async function runThreads(n: number, spec: Spec): Promise<Sample[]> {
  const secret = randomBytes(32);
  const server = new StoreServer({ secret, log: () => {} });
  const store = await server.start();
  const fabric = createInProcFabric(n);
  const samples: Sample[] = [];
  const boot = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(import.meta.url)}); })`;
  await Promise.all(
    fabric.map(
      (ports, rank) =>
        new Promise<void>((resolve) => {
          const w = new Worker(boot, { eval: true, stdout: true, workerData: { commBench: true, rank, n, store, secret, ports, spec }, transferList: [...ports.values()] });
          w.stdout.on('data', collect((l) => l.startsWith('SAMPLE ') && samples.push(JSON.parse(l.slice(7)))));
          w.on('error', (e) => console.error(`[comm bench] inproc rank ${rank}: ${e.message}`));
          w.on('exit', () => resolve());
        }),
    ),
  );
  await server.close();
  return samples;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

async function runGloo(n: number, sizes: number[], colls: readonly string[]): Promise<Sample[] | string> {
  const py = '/usr/bin/python3';
  if (!existsSync(py)) return 'no /usr/bin/python3';
  const probe = spawn(py, ['-c', 'import torch.distributed as d; assert d.is_gloo_available()'], { stdio: 'ignore' });
  if ((await new Promise((r) => probe.on('exit', r))) !== 0) return 'PyTorch with Gloo not found (apt-get install python3-torch)';
  const port = await freePort();
  const samples: Sample[] = [];
  const procs = Array.from({ length: n }, (_, rank) => {
    const p = spawn(py, [fileURLToPath(new URL('./peers/gloo_comm.py', import.meta.url)), sizes.join(','), colls.join(',')], {
      detached: true,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, RANK: String(rank), WORLD_SIZE: String(n), MASTER_PORT: String(port), OMP_NUM_THREADS: '1' },
    });
    p.stdout!.on('data', collect((l) => {
      if (!l.startsWith('{')) return;
      const j = JSON.parse(l) as { coll: Coll; bytes: number; time_s: number | null };
      samples.push({ coll: j.coll, bytes: j.bytes, timeS: j.time_s });
    }));
    return p;
  });
  await Promise.all(procs.map((p) => new Promise((r) => p.on('exit', r))));
  for (const p of procs) {
    try {
      process.kill(-p.pid!, 'SIGKILL');
    } catch {}
  }
  return samples;
}

function human(b: number): string {
  return b >= 1 << 20 ? `${b / (1 << 20)}MiB` : b >= 1024 ? `${b / 1024}KiB` : `${b}B`;
}

export async function run(args: string[]): Promise<void> {
  const opt = (name: string, def: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1]! : def;
  };
  const ranks = opt('ranks', '2,4').split(',').map(Number);
  const transports = opt('transports', 'tcp,ws,inproc').split(',');
  const maxBytes = Number(opt('max-mib', '256')) * (1 << 20);
  const minBytes = Number(opt('min-mib', '0')) * (1 << 20);
  const sizes = ALL_SIZES.filter((s) => s <= maxBytes && s >= minBytes);
  const colls = opt('colls', COLLS.join(',')).split(',') as (typeof COLLS)[number][];
  for (const c of colls) if (!COLLS.includes(c)) throw new Error(`unknown collective ${c} (${COLLS.join(', ')})`);
  const gloo = !args.includes('--no-gloo');
  const { row, writeReport } = await import('./report.ts');
  const rows: ReturnType<typeof row>[] = [];
  const tables: Record<string, unknown>[] = [];
  const notes: string[] = [
    'busbw (GB/s) with nccl-tests factors: all_reduce 2(n-1)/n, reduce_scatter/all_gather/all_to_all (n-1)/n of size/time',
    'raw = node:net ring exchange (each rank streams the bytes to rank+1 while receiving from rank-1, no framing, no copy): the link limit for ring algorithms here',
    'gloo = PyTorch 1.13 (Debian python3-torch) Gloo backend, OMP_NUM_THREADS=1, same machine, same sizes, run in the same invocation',
    'size = whole buffer (all_reduce), send buffer (reduce_scatter, all_to_all), receive buffer (all_gather), as in nccl-tests',
  ];
  for (const n of ranks) {
    console.log(`\n[comm bench] ${n} ranks: raw node:net ring…`);
    const raw = await runProcesses(n, 'raw', { sizes, colls: ['raw'] });
    const rawBw = new Map(raw.map((s) => [s.bytes, s.timeS ? s.bytes / s.timeS / 1e9 : null]));
    let glooSamples: Sample[] = [];
    if (gloo) {
      console.log(`[comm bench] ${n} ranks: gloo…`);
      const g = await runGloo(n, sizes, colls);
      if (typeof g === 'string') {
        console.log(`[comm bench] gloo peer skipped: ${g}`);
        notes.push(`gloo peer skipped: ${g}`);
      } else glooSamples = g;
    }
    for (const transport of transports) {
      console.log(`[comm bench] ${n} ranks: webomni over ${transport}…`);
      const ours = transport === 'inproc' ? await runThreads(n, { sizes, colls }) : await runProcesses(n, transport, { sizes, colls });
      for (const coll of colls) {
        const lines: string[] = [];
        const table: { size: number; timeUs: number | null; algbw: number | null; busbw: number | null; rawBusbw: number | null; glooBusbw: number | null }[] = [];
        for (const s of ours.filter((x) => x.coll === coll)) {
          const algbw = s.timeS ? s.bytes / s.timeS / 1e9 : null;
          const busbw = algbw === null ? null : algbw * busFactor(coll, n);
          const g = glooSamples.find((x) => x.coll === coll && Math.abs(x.bytes - s.bytes) <= 4 * n);
          const gBus = g?.timeS ? (g.bytes / g.timeS / 1e9) * busFactor(coll, n) : null;
          const rBus = rawBw.get(ALL_SIZES.find((z) => Math.abs(z - s.bytes) <= 4 * n) ?? -1) ?? null;
          table.push({ size: s.bytes, timeUs: s.timeS === null ? null : s.timeS * 1e6, algbw, busbw, rawBusbw: rBus, glooBusbw: gBus });
          const f = (x: number | null, d = 3) => (x === null ? '—' : x.toFixed(d));
          lines.push(`${human(s.bytes).padStart(8)} ${f(s.timeS === null ? null : s.timeS * 1e6, 1).padStart(12)} ${f(algbw).padStart(8)} ${f(busbw).padStart(8)} ${f(rBus).padStart(8)} ${f(gBus).padStart(8)}`);
          rows.push(row(`${coll} n=${n} ${transport} ${human(s.bytes)}`, 'GB/s', busbw, gBus, 'gloo busbw'));
          if (coll === 'all_reduce' && s.bytes >= 16 << 20) rows.push(row(`${coll} n=${n} ${transport} ${human(s.bytes)} vs raw`, 'GB/s', busbw, rBus, 'raw node:net ring'));
        }
        console.log(`\n# ${coll}  ranks=${n}  transport=${transport}\n${'size'.padStart(8)} ${'time(us)'.padStart(12)} ${'algbw'.padStart(8)} ${'busbw'.padStart(8)} ${'raw'.padStart(8)} ${'gloo'.padStart(8)}\n${lines.join('\n')}`);
        tables.push({ coll, ranks: n, transport, rows: table });
      }
    }
  }
  console.log('');
  if (args.includes('--no-write')) {
    (await import('./report.ts')).printTable(rows);
    return;
  }
  const path = writeReport({ name: 'comm', adapter: `loopback TCP, ${(await import('node:os')).cpus().length}-core host (no GPU involved)`, rows, notes, tables });
  console.log(`[comm bench] wrote ${path}`);
}

if (isMainThread && !process.env.WEBOMNI_COMM_BENCH_SPEC && process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await run(process.argv.slice(2));
}
