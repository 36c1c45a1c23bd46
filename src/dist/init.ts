// Bringing up the world: the rendezvous store (hosted here or reached),
// the full mesh of authenticated links, and the world process group.
import type { MessagePort } from 'node:worker_threads';
import { formatAddress } from '../../transports/address.ts';
import type { TransportName } from '../../transports/types.ts';
import type { AllReduceAlgo } from './algorithms/select.ts';
import { Comm } from './comm.ts';
import { readJobSecret, readRankEnv } from './env.ts';
import { DistError } from './errors.ts';
import { ProcessGroup, WORLD_GROUP_ID } from './group.ts';
import { StoreClient, StoreServer } from './store.ts';

export interface InitOptions {
  rank: number;
  worldSize: number;
  secret: Uint8Array;
  /** host:port of the rendezvous store. */
  storeAddress: string;
  /** Serve the store from this process (rank 0 when no launcher runs one). */
  hostStore?: boolean;
  transport?: TransportName;
  /** Interface for this rank's listener; loopback unless given. */
  host?: string;
  timeoutMs?: number;
  heartbeatMs?: number;
  livenessMs?: number;
  chunkBytes?: number;
  smallBytes?: number;
  /** Large all-reduce algorithm: 'auto' (default: direct scatter/gather up to 8 ranks, ring beyond), 'ring' or 'scatter'. */
  allReduceAlgo?: AllReduceAlgo;
  /** Per-peer message size from which direct schedules wait for the peer's receives to be posted (default 8 MiB). */
  readyBytes?: number;
  /** tcp and ws: ranks on this host connect over Unix sockets (default on; WEBOMNI_LOCAL_LINKS=0 turns it off). */
  localLinks?: boolean;
  /** Key namespace in the store (lets several jobs or re-inits share a store). */
  prefix?: string;
  inprocPorts?: Map<number, MessagePort>;
  log?: (msg: string) => void;
}

/** The world group; destroying it tears the communicator down. */
export class World extends ProcessGroup {
  constructor(
    comm: Comm,
    private readonly closers: (() => Promise<void>)[],
  ) {
    super(comm, WORLD_GROUP_ID, Array.from({ length: comm.worldSize }, (_, i) => i), 'world');
  }

  /** Closes every link, the store connection and (if hosted here) the store. */
  async shutdown(): Promise<void> {
    this.destroy();
    await this.comm.destroy();
    for (const c of this.closers) await c().catch(() => {});
  }
}

export async function initProcessGroup(o: InitOptions): Promise<World> {
  const closers: (() => Promise<void>)[] = [];
  let server: StoreServer | null = null;
  const log = o.log ?? ((m: string) => process.stderr.write(`[webomni:dist rank ${o.rank}] ${m}\n`));
  if (o.hostStore) {
    const [host, port] = splitHostPort(o.storeAddress);
    server = new StoreServer({ secret: o.secret, host, port, log, heartbeatMs: o.heartbeatMs, livenessMs: o.livenessMs });
    await server.start();
  }
  const store = new StoreClient(o.storeAddress, { secret: o.secret, rank: o.rank, timeoutMs: o.timeoutMs, log, heartbeatMs: o.heartbeatMs, livenessMs: o.livenessMs });
  try {
    await store.connect();
    closers.push(() => store.close());
    if (server) closers.push(() => server.close());
    const comm = await Comm.create({
      rank: o.rank,
      worldSize: o.worldSize,
      transport: o.transport ?? 'tcp',
      secret: o.secret,
      store,
      host: o.host,
      timeoutMs: o.timeoutMs,
      heartbeatMs: o.heartbeatMs,
      livenessMs: o.livenessMs,
      chunkBytes: o.chunkBytes,
      smallBytes: o.smallBytes,
      allReduceAlgo: o.allReduceAlgo,
      readyBytes: o.readyBytes,
      localLinks: o.localLinks,
      prefix: o.prefix,
      inprocPorts: o.inprocPorts,
      log,
    });
    return new World(comm, closers);
  } catch (e) {
    await store.close().catch(() => {});
    await server?.close().catch(() => {});
    throw e;
  }
}

function splitHostPort(addr: string): [string, number] {
  const i = addr.lastIndexOf(':');
  if (i < 0) throw new DistError(`bad store address "${addr}", expected host:port`);
  return [addr.slice(0, i).replace(/^\[|\]$/g, ''), Number(addr.slice(i + 1))];
}

function envAlgo(): AllReduceAlgo | undefined {
  const v = process.env.WEBOMNI_ALLREDUCE_ALGO;
  if (!v) return undefined;
  if (v !== 'auto' && v !== 'ring' && v !== 'scatter') throw new DistError(`WEBOMNI_ALLREDUCE_ALGO must be auto, ring or scatter, got "${v}"`);
  return v;
}

function envInt(name: string): number | undefined {
  const v = process.env[name];
  return v ? Number(v) : undefined;
}

/**
 * Initialises from the environment contracts (launcher, torchrun-style, Slurm,
 * Open MPI). The store is the launcher's (WEBOMNI_STORE) or, without one,
 * served by rank 0 at MASTER_ADDR:MASTER_PORT.
 */
export async function initFromEnv(overrides: Partial<InitOptions> = {}): Promise<World> {
  const re = readRankEnv();
  const rank = overrides.rank ?? re?.rank ?? 0;
  const worldSize = overrides.worldSize ?? re?.worldSize ?? 1;
  const external = process.env.WEBOMNI_STORE;
  const storeAddress = overrides.storeAddress ?? external ?? formatAddress(re?.masterAddr ?? '127.0.0.1', re?.masterPort ?? 29500);
  return initProcessGroup({
    rank,
    worldSize,
    secret: overrides.secret ?? readJobSecret(),
    storeAddress,
    hostStore: overrides.hostStore ?? (!external && rank === 0),
    transport: (process.env.WEBOMNI_TRANSPORT as TransportName | undefined) ?? 'tcp',
    host: process.env.WEBOMNI_HOST || undefined,
    timeoutMs: envInt('WEBOMNI_DIST_TIMEOUT_MS'),
    heartbeatMs: envInt('WEBOMNI_HEARTBEAT_MS'),
    livenessMs: envInt('WEBOMNI_LIVENESS_MS'),
    chunkBytes: envInt('WEBOMNI_CHUNK_BYTES'),
    smallBytes: envInt('WEBOMNI_SMALL_BYTES'),
    allReduceAlgo: envAlgo(),
    readyBytes: envInt('WEBOMNI_READY_BYTES'),
    prefix: process.env.WEBOMNI_STORE_PREFIX,
    ...overrides,
  });
}
