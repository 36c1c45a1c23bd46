// `npm run bench -- comm [--ranks 2,4] [--transports tcp,tcp-loopback,ws,ws-loopback,inproc] [--colls all_reduce,…] [--min-mib 0] [--max-mib 256] [--repeat 1] [--host-buffers registered|plain] [--no-gloo] [--no-raw] [--no-write]`
//
// nccl-tests-style table for all-reduce, reduce-scatter, all-gather and
// all-to-all over 8 B … 256 MiB, per rank count and transport; in the same run,
// the same sizes with raw node:net (the link's limit: every rank streams the
// bytes to its ring neighbour while receiving from the other, no framing) and
// with PyTorch's Gloo backend. `tcp` and `ws` are the transports as jobs run
// them (ranks of one host linked over Unix sockets, transports/local.ts);
// `tcp-loopback` and `ws-loopback` the same with those links off
// (WEBOMNI_LOCAL_LINKS=0), over loopback TCP like Gloo; the raw rings run over both. busbw uses nccl-tests' factors: all-reduce
// 2(n−1)/n, the others (n−1)/n of algbw = size / time. The all-reduce target
// (≥ 80% of the raw TCP figure) is also read against raw rings timed in the
// same rank processes, alternating with each all-reduce from 16 MiB
// ("paired", PAIRED_BLOCKS blocks each), since the shared host drifts between
// sweeps and even between consecutive seconds. Results go to
// bench/results/comm.json in the shared format.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, workerData } from 'node:worker_threads';
import { allocHostBuffer, freeHostBuffer } from '../src/dist/host-buffer.ts';
import { initFromEnv, initProcessGroup, type World } from '../src/dist/init.ts';
import { StoreServer } from '../src/dist/store.ts';
import { createInProcFabric } from '../transports/inproc.ts';

const COLLS = ['all_reduce', 'reduce_scatter', 'all_gather', 'all_to_all'] as const;
type Coll = (typeof COLLS)[number] | 'raw' | 'raw_onread' | 'raw_unix' | 'raw_mesh' | 'raw_paired' | 'raw_paired_unix';
/** What the separate raw sweep runs (the paired rings run inside webomni's rank processes). */
const RAW_SWEEP: Coll[] = ['raw', 'raw_onread', 'raw_unix', 'raw_mesh'];
const RAW: readonly Coll[] = [...RAW_SWEEP, 'raw_paired', 'raw_paired_unix'];
/** All-reduce sizes from which the target applies (and the raw ring is also timed in the same processes, just before). */
const TARGET_MIN_BYTES = 16 << 20;
const ALL_SIZES = [8, 64, 512, 4 << 10, 32 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20, 256 << 20];
const SELF = fileURLToPath(import.meta.url);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Spec {
  sizes: number[];
  colls: Coll[];
  /** Host buffers from allocHostBuffer (sums in place in the heap incoming data lands in), as the device collectives stage them; else plain typed arrays. */
  registered?: boolean;
  /**
   * Also time raw rings (over loopback TCP: 'onread'; over a Unix socket:
   * 'unix') in the same rank processes right before each all-reduce from
   * TARGET_MIN_BYTES: the host is shared and its load drifts over the minutes
   * between the separate raw sweep and this one, so the ratio to the link
   * limit is taken from back-to-back runs.
   */
  paired?: ('onread' | 'unix')[];
}
interface Sample {
  coll: Coll;
  bytes: number;
  timeS: number | null;
  /** Which of the alternating blocks (PAIRED_BLOCKS) of this size it was (absent: 0). */
  blk?: number;
  /** CPU seconds (user + system) per operation, summed over all ranks. */
  cpuS?: number | null;
}
/** One rank's CPU seconds per operation (every rank prints one; the orchestrator sums them). */
interface CpuSample {
  coll: Coll;
  bytes: number;
  /** Which of the alternating blocks (PAIRED_BLOCKS) of this size it was, 0 otherwise. */
  blk: number;
  cpuS: number;
}

const busFactor = (c: Coll, n: number) => (c === 'all_reduce' ? (2 * (n - 1)) / n : RAW.includes(c) ? 1 : (n - 1) / n);
/**
 * Untimed warm-up operations, then timed ones, per size (nccl-tests warms up
 * too). The first operations on a size pay one-time costs that a training
 * loop, repeating the same collectives every step, never sees again: memory
 * first touched, pools and landing areas growing, TCP's receive windows
 * ramping up. With one warm-up op and 3 timed ones, 64 MiB all-reduces timed
 * at half their steady rate here, and single slow ops (scheduling of 4 ranks
 * on 2 cores) swung the mean by ±20%; ~1 GiB of timed traffic per size keeps
 * that to a few percent. Gloo and the raw rings get the same counts.
 */
const iterations = (bytes: number) => {
  const timed = Math.max(5, Math.min(50, Math.floor((1 << 30) / Math.max(bytes, 1))));
  return { warm: Math.min(timed, 10), timed };
};

/**
 * Untimed operations of each collective (and of the paired raw rings) at
 * JIT_WARM_BYTES before its sweep. V8 optimizes a function once it has run
 * enough; a collective's functions run a few times per operation, so for the
 * first thousand or so operations of a process V8 is still running some of
 * them unoptimized and compiling others in the background, on the cores the
 * ranks share. Measured at 4 ranks on 2 cores (16 MiB all-reduces, 7
 * interleaved pairs): after 4,000 warm-up operations of 1 MiB, 3.5–7 ms less
 * user CPU per operation (all ranks, of 13–18) and higher busbw in 6 of 7
 * pairs than after 300; 1,500 and 4,000 read the same (3 pairs). A training
 * loop repeats the same collectives for thousands of steps; the sweep's
 * warm-up per size (below) covers memory first touched and pools, this
 * covers the code. 1 MiB runs the large-message schedules in a few ms per
 * operation.
 */
const JIT_WARM_OPS = 1500;
const JIT_WARM_BYTES = 1 << 20;

/**
 * From TARGET_MIN_BYTES, each all-reduce size is timed in this many blocks,
 * each right after a block of every paired raw ring (raw, webomni, raw,
 * webomni, …), and the target is read from the median of the per-block
 * ratios. One pair per round was not enough on this shared host: in one
 * recorded run the ratio of single pairs at one size ranged 0.65–0.95
 * (webomni and the raw ring each moved ±15% between ~2 s windows), so a few
 * noisy windows decided the figure.
 */
const PAIRED_BLOCKS = 3;

// ---------------- rank side ----------------
/** Wall seconds per op (the same on every rank) and this rank's CPU seconds per op. */
/** `warmOps` overrides the size's usual warm-up count (iterations). */
async function timeIt(world: World, bytes: number, op: () => PromiseLike<unknown>, warmOps?: number): Promise<{ timeS: number; cpuS: number }> {
  const { warm, timed: it } = iterations(bytes);
  for (let i = 0; i < (warmOps ?? warm); i++) await op();
  await world.barrier();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < it; i++) await op();
  await world.barrier();
  const c = process.cpuUsage(c0);
  return { timeS: (performance.now() - t0) / 1000 / it, cpuS: (c.user + c.system) / 1e6 / it };
}

/** Counts bytes received against bytes expected; `expect(bytes)` resolves once that many more have come. */
function arrivals(): { arrived: (k: number) => void; expect: (bytes: number) => Promise<void> } {
  let got = 0;
  let want = 0;
  let onDone: (() => void) | null = null;
  return {
    arrived: (k) => {
      got += k;
      if (onDone && got >= want) onDone();
    },
    expect: (bytes) => {
      want += bytes;
      return got >= want ? Promise.resolve() : new Promise<void>((r) => (onDone = () => ((onDone = null), r())));
    },
  };
}

/** Raw rings write in pieces of this size (one write call each, waiting for 'drain' when the socket pushes back). */
const PIECE = 1 << 20;

/**
 * What a raw ring sends for a message of `bytes`: a buffer of that size (kept
 * while the size stays the same; one per process), as webomni sends from the
 * caller's buffer. Streaming one cache-resident 1 MiB buffer over and over
 * instead measured 7–10% faster at 256 MiB and 4 ranks (the kernel copies
 * from a hot source faster), a rate no transfer of that much data can have.
 */
let rawSource: Buffer | null = null;
function rawSourceFor(bytes: number): Buffer {
  if (rawSource === null || rawSource.length !== bytes) rawSource = Buffer.alloc(bytes, 1);
  return rawSource;
}

/** Writes `src` to `sock` in PIECE-sized writes, waiting for 'drain' when it pushes back. */
async function stream(sock: net.Socket, src: Uint8Array): Promise<void> {
  for (let sent = 0; sent < src.length; ) {
    const k = Math.min(PIECE, src.length - sent);
    const piece = src.subarray(sent, sent + k);
    sent += k;
    if (!sock.write(piece)) await new Promise((r) => sock.once('drain', r));
  }
}

/**
 * Ring exchange over raw sockets: send `bytes` to next while receiving `bytes` from prev.
 * 'data': the receiver takes Node's 'data' events (a fresh buffer per read);
 * 'onread': the receiver opened the connection with `onread` and the kernel
 * copies into one reused, preallocated destination (what webomni's TCP links do);
 * 'unix': 'onread' over a Unix-domain socket (what tcp links between ranks of one host run over).
 */
async function rawRing(world: World, mode: 'data' | 'onread' | 'unix'): Promise<(bytes: number) => Promise<void>> {
  const n = world.size;
  const me = world.rank;
  const store = world.comm.store;
  const { arrived, expect } = arrivals();
  const sink = Buffer.alloc(64 << 20, 1);
  let sinkAt = 0;
  const onread = {
    buffer: () => sink.subarray(sinkAt, Math.min(sink.length, sinkAt + (4 << 20))),
    callback: (k: number) => {
      sinkAt = (sinkAt + k) % sink.length;
      arrived(k);
      return true;
    },
  };
  let accepted!: net.Socket;
  const acc = new Promise<void>((resolve) => {
    const srv = net.createServer({ noDelay: true }, (s) => {
      accepted = s;
      srv.close();
      resolve();
    });
    if (mode === 'unix') srv.listen(`\0webomni-bench-${process.pid}`, () => store.set(`bench/raw-${mode}/${me}`, `\0webomni-bench-${process.pid}`));
    else srv.listen(0, '127.0.0.1', () => store.set(`bench/raw-${mode}/${me}`, (srv.address() as net.AddressInfo).port));
  });
  // data: connect to next and write to it; onread: connect to prev (with onread) and read from it.
  const peer = mode === 'data' ? (me + 1) % n : (me - 1 + n) % n;
  const addr = String(await store.get(`bench/raw-${mode}/${peer}`));
  const dialed = mode === 'unix' ? net.connect({ path: addr, onread }) : net.connect({ port: Number(addr), host: '127.0.0.1', noDelay: true, ...(mode === 'onread' ? { onread } : {}) });
  await new Promise((r) => dialed.once('connect', r));
  await acc;
  const toNext = mode === 'data' ? dialed : accepted;
  if (mode === 'data') accepted.on('data', (d: Buffer) => arrived(d.length));
  return async (bytes) => {
    const recvDone = expect(bytes);
    await stream(toNext, rawSourceFor(bytes));
    await recvDone;
  };
}

/**
 * Mesh exchange over raw loopback TCP: every rank streams bytes/(n−1) to each
 * peer at once while receiving as much from each (read with `onread`), the
 * traffic pattern of the direct schedules (scatter.ts) without framing or
 * reduction: it separates what the schedule's topology costs (n−1
 * connections per rank instead of the ring's one) from what webomni adds on
 * top of it.
 */
async function rawMesh(world: World): Promise<(bytes: number) => Promise<void>> {
  const n = world.size;
  const me = world.rank;
  const store = world.comm.store;
  const { arrived, expect } = arrivals();
  const sink = Buffer.alloc(16 << 20, 1);
  const writers = new Map<number, net.Socket>();
  const accepted = new Promise<void>((resolve) => {
    const srv = net.createServer({ noDelay: true }, (s) => {
      s.once('data', (d: Buffer) => {
        writers.set(d[0]!, s);
        if (writers.size === n - 1) {
          srv.close();
          resolve();
        }
      });
    });
    srv.listen(0, '127.0.0.1', () => store.set(`bench/raw-mesh/${me}`, (srv.address() as net.AddressInfo).port));
  });
  for (let p = 0; p < n; p++) {
    if (p === me) continue;
    // Each connection reads into its own 4 MiB window of the sink.
    const base = (p % 4) * (4 << 20);
    let at = 0;
    const onread = {
      buffer: () => sink.subarray(base + at, base + (4 << 20)),
      callback: (k: number) => {
        at = (at + k) % (4 << 20);
        arrived(k);
        return true;
      },
    };
    const s = net.connect({ port: Number(await store.get(`bench/raw-mesh/${p}`)), host: '127.0.0.1', noDelay: true, onread });
    await new Promise((r) => s.once('connect', r));
    s.write(Buffer.from([me]));
  }
  await accepted;
  return async (bytes) => {
    const per = Math.floor(bytes / (n - 1));
    const recvDone = expect(per * (n - 1));
    const src = rawSourceFor(per * (n - 1));
    // Each peer gets its own slice, as each gets its own segment in the direct schedules.
    await Promise.all([...writers.values()].map((w, i) => stream(w, src.subarray(i * per, (i + 1) * per))));
    await recvDone;
  };
}

async function rankMain(world: World, spec: Spec): Promise<void> {
  const n = world.size;
  const emit = (coll: Coll, bytes: number, t: { timeS: number; cpuS: number }, blk = 0) => {
    if (world.rank === 0) process.stdout.write(`SAMPLE ${JSON.stringify({ coll, bytes, blk, timeS: t.timeS } satisfies Sample)}\n`);
    // Threads of one process (inproc) share one CPU clock: rank 0's is all of them.
    if (isMainThread || world.rank === 0) process.stdout.write(`CPU ${JSON.stringify({ coll, bytes, blk, cpuS: t.cpuS } satisfies CpuSample)}\n`);
  };
  const held: Float32Array[] = [];
  const f32 = (len: number) => {
    const b = spec.registered ? allocHostBuffer(Float32Array, len) : new Float32Array(len);
    held.push(b);
    return b;
  };
  const paired: [Coll, (bytes: number) => Promise<void>][] = [];
  for (const kind of spec.paired ?? []) paired.push([kind === 'unix' ? 'raw_paired_unix' : 'raw_paired', await rawRing(world, kind)]);
  /** The operation timed for `coll` at `size` bytes, and the bytes it counts (buffers go in `held`). */
  const build = (coll: Coll, size: number, raw: ((bytes: number) => Promise<void>) | null): { bytes: number; op: () => PromiseLike<unknown> } => {
    const total = Math.max(1, Math.floor(size / 4));
    const per = Math.max(1, Math.floor(total / n));
    if (RAW.includes(coll)) return { bytes: size, op: () => raw!(size) };
    if (coll === 'all_reduce') {
      const b = f32(total).fill(1);
      return { bytes: b.byteLength, op: () => world.allReduce(b) };
    }
    if (coll === 'reduce_scatter') {
      const i = f32(per * n).fill(1);
      const o = f32(per);
      return { bytes: i.byteLength, op: () => world.reduceScatter(o, i) };
    }
    if (coll === 'all_gather') {
      const i = f32(per).fill(1);
      const o = f32(per * n);
      return { bytes: o.byteLength, op: () => world.allGather(o, i) };
    }
    const i = f32(per * n).fill(1);
    const o = f32(per * n);
    return { bytes: i.byteLength, op: () => world.allToAll(o, i) };
  };
  for (const coll of spec.colls) {
    const raw = coll === 'raw' ? await rawRing(world, 'data') : coll === 'raw_onread' ? await rawRing(world, 'onread') : coll === 'raw_unix' ? await rawRing(world, 'unix') : coll === 'raw_mesh' ? await rawMesh(world) : null;
    if (!RAW.includes(coll) && spec.sizes.some((s) => s >= JIT_WARM_BYTES)) {
      const { op } = build(coll, JIT_WARM_BYTES, null);
      for (let i = 0; i < JIT_WARM_OPS; i++) await op();
      for (const b of held.splice(0)) freeHostBuffer(b);
      if (coll === 'all_reduce') for (const [, ring] of paired) for (let i = 0; i < JIT_WARM_OPS; i++) await ring(JIT_WARM_BYTES);
    }
    for (const size of spec.sizes) {
      const { bytes, op } = build(coll, size, raw);
      if (coll === 'all_reduce' && bytes >= TARGET_MIN_BYTES && paired.length > 0) {
        // Alternating blocks (PAIRED_BLOCKS): after the first, one operation re-warms what the other block evicted.
        for (let blk = 0; blk < PAIRED_BLOCKS; blk++) {
          const warm = blk === 0 ? undefined : 1;
          for (const [name, ring] of paired) emit(name, bytes, await timeIt(world, bytes, () => ring(bytes), warm), blk);
          emit(coll, bytes, await timeIt(world, bytes, op, warm), blk);
        }
      } else emit(coll, bytes, await timeIt(world, bytes, op));
      for (const b of held.splice(0)) freeHostBuffer(b);
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
/** Gathers rank 0's SAMPLE lines and every rank's CPU lines into samples with summed CPU. */
function sampleSink(): { line: (l: string) => void; samples: () => Sample[] } {
  const samples: Sample[] = [];
  const cpu = new Map<string, number>();
  return {
    line: (l) => {
      if (l.startsWith('SAMPLE ')) samples.push(JSON.parse(l.slice(7)) as Sample);
      else if (l.startsWith('CPU ')) {
        const c = JSON.parse(l.slice(4)) as CpuSample;
        const k = `${c.coll}|${c.bytes}|${c.blk}`;
        cpu.set(k, (cpu.get(k) ?? 0) + c.cpuS);
      }
    },
    samples: () => samples.map((s) => ({ ...s, cpuS: cpu.get(`${s.coll}|${s.bytes}|${s.blk ?? 0}`) ?? null })),
  };
}

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
  const sink = sampleSink();
  const procs = Array.from({ length: n }, (_, rank) => {
    // WEBOMNI_COMM_BENCH_NODE_ARGS: extra node flags for the rank processes (e.g. --cpu-prof).
    const extra = (process.env.WEBOMNI_COMM_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const p = spawn(process.execPath, [...extra, '--import', 'tsx', SELF], {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: {
        ...process.env,
        RANK: String(rank),
        WORLD_SIZE: String(n),
        WEBOMNI_STORE: store,
        WEBOMNI_JOB_SECRET: secret.toString('hex'),
        WEBOMNI_TRANSPORT: transport === 'raw' ? 'tcp' : transport.replace(/-loopback$/, ''),
        ...(transport.endsWith('-loopback') ? { WEBOMNI_LOCAL_LINKS: '0' } : {}),
        WEBOMNI_COMM_BENCH_SPEC: JSON.stringify(spec),
      },
    });
    p.stdout!.on('data', collect(sink.line));
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
  return sink.samples();
}

async function runThreads(n: number, spec: Spec): Promise<Sample[]> {
  const secret = randomBytes(32);
  const server = new StoreServer({ secret, log: () => {} });
  const store = await server.start();
  const fabric = createInProcFabric(n);
  const sink = sampleSink();
  const boot = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(import.meta.url)}); })`;
  await Promise.all(
    fabric.map(
      (ports, rank) =>
        new Promise<void>((resolve) => {
          const w = new Worker(boot, { eval: true, stdout: true, workerData: { commBench: true, rank, n, store, secret, ports, spec }, transferList: [...ports.values()] });
          w.stdout.on('data', collect(sink.line));
          w.on('error', (e) => console.error(`[comm bench] inproc rank ${rank}: ${e.message}`));
          w.on('exit', () => resolve());
        }),
    ),
  );
  await server.close();
  return sink.samples();
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
  const sink = sampleSink();
  const procs = Array.from({ length: n }, (_, rank) => {
    const p = spawn(py, [fileURLToPath(new URL('./peers/gloo_comm.py', import.meta.url)), sizes.join(','), colls.join(','), sizes.map((b) => { const i = iterations(b); return `${i.warm}:${i.timed}`; }).join(',')], {
      detached: true,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, RANK: String(rank), WORLD_SIZE: String(n), MASTER_PORT: String(port), OMP_NUM_THREADS: '1' },
    });
    p.stdout!.on('data', collect((l) => {
      if (!l.startsWith('{')) return;
      const j = JSON.parse(l) as { coll: Coll; bytes: number; time_s?: number | null; cpu_s?: number };
      if (j.cpu_s !== undefined) sink.line(`CPU ${JSON.stringify({ coll: j.coll, bytes: j.bytes, blk: 0, cpuS: j.cpu_s } satisfies CpuSample)}`);
      else sink.line(`SAMPLE ${JSON.stringify({ coll: j.coll, bytes: j.bytes, timeS: j.time_s ?? null } satisfies Sample)}`);
    }));
    return p;
  });
  await Promise.all(procs.map((p) => new Promise((r) => p.on('exit', r))));
  for (const p of procs) {
    try {
      process.kill(-p.pid!, 'SIGKILL');
    } catch {}
  }
  return sink.samples();
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
  const KNOWN = ['tcp', 'tcp-loopback', 'ws', 'ws-loopback', 'inproc'];
  const transports = opt('transports', KNOWN.join(',')).split(',');
  for (const t of transports) if (!KNOWN.includes(t)) throw new Error(`unknown transport ${t} (${KNOWN.join(', ')})`);
  const maxBytes = Number(opt('max-mib', '256')) * (1 << 20);
  const minBytes = Number(opt('min-mib', '0')) * (1 << 20);
  const sizes = ALL_SIZES.filter((s) => s <= maxBytes && s >= minBytes);
  const colls = opt('colls', COLLS.join(',')).split(',') as (typeof COLLS)[number][];
  for (const c of colls) if (!COLLS.includes(c)) throw new Error(`unknown collective ${c} (${COLLS.join(', ')})`);
  const gloo = !args.includes('--no-gloo');
  const raw = !args.includes('--no-raw');
  const hostBuffers = opt('host-buffers', 'registered');
  if (hostBuffers !== 'registered' && hostBuffers !== 'plain') throw new Error(`--host-buffers must be registered or plain, got ${hostBuffers}`);
  const registered = hostBuffers === 'registered';
  const { row, writeReport } = await import('./report.ts');
  const rows: ReturnType<typeof row>[] = [];
  const tables: Record<string, unknown>[] = [];
  const notes: string[] = [
    'busbw (GB/s) with nccl-tests factors: all_reduce 2(n-1)/n, reduce_scatter/all_gather/all_to_all (n-1)/n of size/time',
    "raw = node:net ring exchange (each rank streams the bytes, from a buffer of that size, to rank+1 while receiving from rank-1, no framing) read with 'data' events (a fresh buffer per read); raw-onread = the same with the receiver reading through net.connect({ onread }) into one reused buffer (the faster of the two ways Node can read a socket, and how webomni's TCP links read): the link limit for ring algorithms here; raw-unix = raw-onread over a Unix-domain socket",
    'raw-mesh = every rank streams size/(n-1) to each peer at once over loopback TCP while receiving as much (onread): the traffic pattern of the direct schedules webomni runs up to 8 ranks, without framing or reduction (at 2 ranks the same as raw-onread); it separates what the n-1 connections per rank cost from what webomni adds',
    `paired = the raw onread ring over loopback TCP, timed in webomni's own rank processes in ${PAIRED_BLOCKS} blocks alternating with blocks of each all-reduce of ${TARGET_MIN_BYTES >> 20} MiB and more (p-unix: the same over a Unix socket, for tcp and ws, whose links between ranks of one host are Unix sockets): the host is shared and its load drifts over the minutes between the separate raw sweep and webomni's, and between seconds, so the target (>= 80% of the raw TCP figure) is read as x-paired = the median over every round's blocks of webomni's busbw / the raw ring's in the block just before`,
    'tcp, ws = the transports as jobs run them: ranks of one host link over Unix sockets (compare with raw-unix); tcp-loopback, ws-loopback = the same over loopback TCP (WEBOMNI_LOCAL_LINKS=0; compare with raw-onread and Gloo, which also runs over loopback TCP)',
    'gloo = PyTorch 1.13 (Debian python3-torch) Gloo backend, OMP_NUM_THREADS=1, same machine, same sizes, run in the same invocation',
    'size = whole buffer (all_reduce), send buffer (reduce_scatter, all_to_all), receive buffer (all_gather), as in nccl-tests',
    registered
      ? "host buffers: registered (allocHostBuffer: typed arrays in the WebAssembly heap that incoming data lands in, so sums run in place with no copies), as the device collectives stage GPU data; --host-buffers plain for ordinary typed arrays (one copy in and one out per reduced block)"
      : 'host buffers: plain typed arrays (--host-buffers plain): sums copy each block into the WebAssembly heap and the result back out',
    'cpu ns/B = CPU time (user + system, summed over all ranks) per byte of bus traffic per rank (size × the busbw factor; raw: size): lower is better; with more ranks than cores the wall-clock figures are bound by this cost',
  ];
  const repeat = Math.max(1, Number(opt('repeat', '1')));
  if (repeat > 1) notes.push(`each figure is the median over ${repeat} rounds (for all-reduce sizes with paired rings, over ${PAIRED_BLOCKS} blocks per round; \`rounds\` in the tables lists every sample in the order timed); every round runs raw, gloo and webomni back to back (the host is shared and loaded, so rounds differ)`);
  const median = (xs: number[]) => {
    const v = [...xs].sort((a, b) => a - b);
    return v.length === 0 ? null : v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
  };
  const same = (a: number, b: number, n: number) => Math.abs(a - b) <= 4 * n;
  for (const n of ranks) {
    // busbw samples per round: key = `${what}|${coll}|${size}` where what = raw, raw_onread, gloo or a transport
    const bw = new Map<string, number[]>();
    // CPU nanoseconds (all ranks together) per byte of bus traffic per rank, same keys:
    // on an oversubscribed host the CPU cost per byte is steadier than the wall time.
    const cpu = new Map<string, number[]>();
    const add = (m: Map<string, number[]>, k: string, v: number) => m.set(k, [...(m.get(k) ?? []), v]);
    /** Every round's busbw for a key (empty if none). */
    const all = (k: string) => bw.get(k) ?? [];
    const put = (what: string, coll: string, size: number, s: Sample) => {
      if (!s.timeS) return;
      const busBytes = s.bytes * busFactor(s.coll, n);
      const k = `${what}|${coll}|${size}`;
      add(bw, k, busBytes / s.timeS / 1e9);
      if (s.cpuS) add(cpu, k, (s.cpuS * 1e9) / busBytes);
    };
    const sizeOf = (bytes: number) => ALL_SIZES.find((z) => same(z, bytes, n)) ?? bytes;
    for (let rep = 0; rep < repeat; rep++) {
      const round = repeat > 1 ? ` (round ${rep + 1}/${repeat})` : '';
      if (raw) {
        console.log(`\n[comm bench] ${n} ranks${round}: raw node:net ring…`);
        for (const s of await runProcesses(n, 'raw', { sizes, colls: RAW_SWEEP })) put(s.coll, 'any', sizeOf(s.bytes), s);
      }
      if (gloo) {
        console.log(`[comm bench] ${n} ranks${round}: gloo…`);
        const g = await runGloo(n, sizes, colls);
        if (typeof g === 'string') {
          console.log(`[comm bench] gloo peer skipped: ${g}`);
          if (!notes.includes(`gloo peer skipped: ${g}`)) notes.push(`gloo peer skipped: ${g}`);
        } else for (const x of g) put('gloo', x.coll, sizeOf(x.bytes), x);
      }
      for (const transport of transports) {
        console.log(`[comm bench] ${n} ranks${round}: webomni over ${transport}…`);
        // The raw TCP ring (the target's reference), and for tcp/ws, whose links between ranks of one host are Unix sockets, also the raw Unix-socket ring.
        const paired: Spec['paired'] = transport === 'inproc' || !raw ? [] : transport.endsWith('-loopback') ? ['onread'] : ['onread', 'unix'];
        const ours = transport === 'inproc' ? await runThreads(n, { sizes, colls, registered }) : await runProcesses(n, transport, { sizes, colls, registered, paired });
        for (const x of ours) put(transport, x.coll, sizeOf(x.bytes), x);
      }
    }
    for (const transport of transports) {
      for (const coll of colls) {
        const lines: string[] = [];
        const table: Record<string, unknown>[] = [];
        for (const size of sizes) {
          const oursAll = all(`${transport}|${coll}|${size}`);
          if (oursAll.length === 0) continue;
          const busbw = median(oursAll);
          const algbw = busbw === null ? null : busbw / busFactor(coll, n);
          const gBus = median(all(`gloo|${coll}|${size}`));
          const rBus = median(all(`raw|any|${size}`));
          const roBus = median(all(`raw_onread|any|${size}`));
          const ruBus = median(all(`raw_unix|any|${size}`));
          const rmBus = median(all(`raw_mesh|any|${size}`));
          const timeUs = algbw ? (size / algbw / 1e9) * 1e6 : null;
          const cOurs = median(cpu.get(`${transport}|${coll}|${size}`) ?? []);
          const cRaw = median(cpu.get(`raw_onread|any|${size}`) ?? []);
          const cGloo = median(cpu.get(`gloo|${coll}|${size}`) ?? []);
          // Paired: the raw rings timed right before this all-reduce in the same processes (each round).
          const pAll = coll === 'all_reduce' ? all(`${transport}|raw_paired|${size}`) : [];
          const puAll = coll === 'all_reduce' ? all(`${transport}|raw_paired_unix|${size}`) : [];
          const pBus = median(pAll);
          const puBus = median(puAll);
          // Block by block (the samples come in the order they were timed: raw ring, then webomni).
          const pairRatio = (raws: number[]) => (raws.length > 0 && raws.length === oursAll.length ? median(raws.map((r, i) => oursAll[i]! / r)) : null);
          const pRatio = pairRatio(pAll);
          const puRatio = pairRatio(puAll);
          table.push({
            size, timeUs, algbw, busbw, rawBusbw: rBus, rawOnreadBusbw: roBus, rawUnixBusbw: ruBus, rawMeshBusbw: rmBus, glooBusbw: gBus,
            cpuNsPerByte: cOurs, rawOnreadCpuNsPerByte: cRaw, glooCpuNsPerByte: cGloo,
            ...(pBus !== null ? { rawPairedBusbw: pBus, pairedRatio: pRatio, rawPairedCpuNsPerByte: median(cpu.get(`${transport}|raw_paired|${size}`) ?? []) } : {}),
            ...(puBus !== null ? { rawPairedUnixBusbw: puBus, pairedUnixRatio: puRatio } : {}),
            ...(oursAll.length > 1 ? { rounds: { ours: oursAll, raw: all(`raw|any|${size}`), rawOnread: all(`raw_onread|any|${size}`), rawUnix: all(`raw_unix|any|${size}`), rawMesh: all(`raw_mesh|any|${size}`), rawPaired: pAll, rawPairedUnix: puAll, gloo: all(`gloo|${coll}|${size}`) } } : {}),
          });
          const f = (x: number | null, d = 3) => (x === null ? '—' : x.toFixed(d));
          lines.push(`${human(size).padStart(8)} ${f(timeUs, 1).padStart(12)} ${f(algbw).padStart(8)} ${f(busbw).padStart(8)} ${f(rBus).padStart(8)} ${f(roBus).padStart(10)} ${f(ruBus).padStart(8)} ${f(rmBus).padStart(8)} ${f(pBus).padStart(8)} ${f(puBus).padStart(8)} ${f(pRatio, 2).padStart(8)} ${f(gBus).padStart(8)} ${f(cOurs, 2).padStart(9)} ${f(cRaw, 2).padStart(9)} ${f(cGloo, 2).padStart(9)}`);
          rows.push(row(`${coll} n=${n} ${transport} ${human(size)}`, 'GB/s', busbw, gBus, 'gloo busbw'));
          if (coll === 'all_reduce' && size >= TARGET_MIN_BYTES) {
            rows.push(row(`${coll} n=${n} ${transport} ${human(size)} vs raw`, 'GB/s', busbw, rBus, 'raw node:net ring'));
            rows.push(row(`${coll} n=${n} ${transport} ${human(size)} vs raw onread`, 'GB/s', busbw, roBus, 'raw node:net ring, onread'));
            if (n > 2 && transport.endsWith('-loopback')) rows.push(row(`${coll} n=${n} ${transport} ${human(size)} vs raw mesh`, 'GB/s', busbw, rmBus, 'raw node:net mesh, onread'));
            if (transport === 'tcp' || transport === 'ws') rows.push(row(`${coll} n=${n} ${transport} ${human(size)} vs raw unix`, 'GB/s', busbw, ruBus, 'raw ring over Unix sockets, onread'));
            // The ratio is the median of the block pairs' ratios (not the ratio of the medians): each pair shares its few seconds of host load.
            if (pBus !== null) rows.push({ ...row(`${coll} n=${n} ${transport} ${human(size)} vs raw paired`, 'GB/s', busbw, pBus, 'raw TCP ring, same processes, alternating blocks'), ratio: pRatio });
            if (puBus !== null) rows.push({ ...row(`${coll} n=${n} ${transport} ${human(size)} vs raw unix paired`, 'GB/s', busbw, puBus, 'raw Unix-socket ring, same processes, alternating blocks'), ratio: puRatio });
            rows.push(row(`${coll} n=${n} ${transport} ${human(size)} CPU per bus byte`, 'ns', cOurs, cRaw, 'raw node:net ring, onread'));
            rows.push(row(`${coll} n=${n} ${transport} ${human(size)} CPU per bus byte vs gloo`, 'ns', cOurs, cGloo, 'gloo'));
          }
        }
        console.log(`\n# ${coll}  ranks=${n}  transport=${transport}\n${'size'.padStart(8)} ${'time(us)'.padStart(12)} ${'algbw'.padStart(8)} ${'busbw'.padStart(8)} ${'raw'.padStart(8)} ${'raw-onread'.padStart(10)} ${'raw-unix'.padStart(8)} ${'raw-mesh'.padStart(8)} ${'paired'.padStart(8)} ${'p-unix'.padStart(8)} ${'x-paired'.padStart(8)} ${'gloo'.padStart(8)} ${'cpu ns/B'.padStart(9)} ${'raw-onr.'.padStart(9)} ${'gloo'.padStart(9)}\n${lines.join('\n')}`);
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
