// The per-process communicator: one authenticated link to every other rank
// (full mesh, like Gloo), the router that matches incoming data to posted
// receives, liveness of peers, and the registry of in-flight operations so
// that a dead peer fails every operation that depends on it at once.
import type { MessagePort } from 'node:worker_threads';
import { createTransport } from '../../transports/index.ts';
import { DEFAULTS, type Link, type MessageHeader, type Transport, type TransportName } from '../../transports/types.ts';
import { LARGE_CHUNK_BYTES, READY_MIN_BYTES } from './algorithms/context.ts';
import type { AllReduceAlgo } from './algorithms/select.ts';
import { DistError, DistTimeoutError, PeerFailureError } from './errors.ts';
import { Router } from './router.ts';
import type { StoreClient } from './store.ts';

export interface CommOptions {
  rank: number;
  worldSize: number;
  transport: TransportName;
  secret: Uint8Array;
  store: StoreClient;
  /** Interface to listen on (loopback unless given). */
  host?: string;
  /** Default timeout of every collective and of initialisation (ms). */
  timeoutMs?: number;
  heartbeatMs?: number;
  livenessMs?: number;
  /** Frame / pipelining chunk in bytes. */
  chunkBytes?: number;
  /** All-reduce/all-gather/reduce-scatter/broadcast below this many bytes use the direct (one-step) path. */
  smallBytes?: number;
  /** Large all-reduce algorithm (see group.ts, allReduceAlgorithm). */
  allReduceAlgo?: AllReduceAlgo;
  /** Per-peer bytes from which the direct schedules wait for a peer's receiver-ready note (context.ts, readyGate). */
  readyBytes?: number;
  /** tcp and ws: peers on this host and network namespace connect over Unix sockets (transports/local.ts; default on, WEBOMNI_LOCAL_LINKS=0 turns it off). */
  localLinks?: boolean;
  /** Namespace for this job's keys in the store. */
  prefix?: string;
  /** Required for the inproc transport: this rank's ends of the channels. */
  inprocPorts?: Map<number, MessagePort>;
  /** Early (unposted) bytes held per peer before reading from it pauses. */
  earlyBudgetBytes?: number;
  log?: (msg: string) => void;
}

/** Something in flight that a peer failure or an abort can fail. */
export interface ActiveOp {
  workId: number;
  groupId: number;
  seq: number;
  ranks: readonly number[];
  fail(err: Error): void;
}

export const DEFAULT_TIMEOUT_MS = 300_000;

export class Comm {
  readonly rank: number;
  readonly worldSize: number;
  readonly router: Router;
  readonly timeoutMs: number;
  readonly chunkBytes: number;
  readonly smallBytes: number;
  readonly allReduceAlgo: AllReduceAlgo;
  readonly readyBytes: number;
  readonly prefix: string;
  readonly log: (m: string) => void;
  readonly links = new Map<number, Link>();
  /** Ranks that died or broke the protocol, with the reason. */
  readonly failed = new Map<number, Error>();
  /** Ranks that closed their links in an orderly way (finished before us). */
  readonly left = new Set<number>();
  readonly active = new Map<number, ActiveOp>();
  private readonly groupNames = new Map<number, string>();
  private abortHandlers: ((src: number, groupId: number, seq: number, reason: string, failedRank?: number) => void)[] = [];
  private transport!: Transport;
  private nextWork = 1;
  destroyed = false;

  private constructor(readonly opts: CommOptions) {
    this.rank = opts.rank;
    this.worldSize = opts.worldSize;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.chunkBytes = opts.chunkBytes ?? DEFAULTS.chunkBytes;
    this.smallBytes = opts.smallBytes ?? 64 * 1024;
    this.allReduceAlgo = opts.allReduceAlgo ?? 'auto';
    this.readyBytes = opts.readyBytes ?? READY_MIN_BYTES;
    this.prefix = opts.prefix ?? 'webomni';
    this.log = opts.log ?? ((m) => process.stderr.write(`[webomni:dist rank ${opts.rank}] ${m}\n`));
    this.router = new Router(opts.rank, { groupName: (id) => this.groupNames.get(id) ?? `#${id}`, onControl: (src, body) => this.onControl(src, body) }, opts.earlyBudgetBytes);
  }

  get store(): StoreClient {
    return this.opts.store;
  }

  static async create(opts: CommOptions): Promise<Comm> {
    const { rank, worldSize } = opts;
    if (!Number.isInteger(worldSize) || worldSize < 1) throw new DistError(`world size must be a positive integer, got ${worldSize}`);
    if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) throw new DistError(`rank ${rank} is outside the world [0, ${worldSize})`);
    const c = new Comm(opts);
    await c.connectMesh();
    return c;
  }

  nameGroup(id: number, name: string): void {
    this.groupNames.set(id, name);
  }

  newWorkId(): number {
    return this.nextWork++;
  }

  onAbort(fn: (src: number, groupId: number, seq: number, reason: string, failedRank?: number) => void): void {
    this.abortHandlers.push(fn);
  }

  private async connectMesh(): Promise<void> {
    const { rank, worldSize, store } = this.opts;
    const key = (k: string) => `${this.prefix}/${k}`;
    const ws = await store.compareSet(key('world_size'), null, worldSize);
    if (ws !== worldSize) throw new DistError(`rank ${rank} was started with world size ${worldSize}, but the job's world size is ${String(ws)}`);
    this.transport = createTransport(
      this.opts.transport,
      {
        rank,
        secret: this.opts.secret,
        sink: this.router,
        host: this.opts.host,
        // Frames as large as the largest pipelining chunk: algorithms cut messages into chunks themselves.
        chunkBytes: Math.max(this.chunkBytes, LARGE_CHUNK_BYTES),
        maxFrame: Math.max(DEFAULTS.maxFrame, this.chunkBytes + 4096, LARGE_CHUNK_BYTES + 4096),
        heartbeatMs: this.opts.heartbeatMs,
        livenessMs: this.opts.livenessMs,
        localLinks: this.opts.localLinks,
        log: this.log,
      },
      this.opts.inprocPorts,
    );
    // Higher ranks connect to lower ones; wait for the ones that connect to us.
    const expected = new Set<number>();
    for (let p = rank + 1; p < worldSize; p++) expected.add(p);
    let allAccepted!: () => void;
    const accepted = new Promise<void>((r) => (allAccepted = r));
    if (expected.size === 0) allAccepted();
    const address = await this.transport.listen((link) => {
      const p = link.peerRank;
      if (!expected.has(p)) {
        this.log(`refusing link claiming rank ${p}: not expected (duplicate or out of range for world size ${worldSize})`);
        link.destroy(new DistError(`unexpected link from rank ${p}`));
        return;
      }
      expected.delete(p);
      this.addLink(link);
      if (expected.size === 0) allAccepted();
    });
    await store.set(key(`addr/${rank}`), address);
    const connects: Promise<void>[] = [];
    for (let p = 0; p < rank; p++) {
      connects.push(
        (async () => {
          const addr = String(await store.get(key(`addr/${p}`), this.timeoutMs));
          this.addLink(await this.transport.connect(addr, p));
        })(),
      );
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DistTimeoutError(`rank ${rank}: connecting to all ${worldSize} ranks timed out after ${this.timeoutMs} ms; still missing rank(s) ${[...Array(worldSize).keys()].filter((p) => p !== rank && !this.links.has(p)).join(', ')}`)), this.timeoutMs);
      timer.unref();
    });
    try {
      await Promise.race([Promise.all([...connects, accepted]), timeout]);
    } catch (e) {
      await this.destroy();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  private addLink(link: Link): void {
    this.links.set(link.peerRank, link);
    this.router.addLink(link);
    link.on('close', (err: Error | null) => this.peerGone(link.peerRank, err));
  }

  /** A peer's link closed: with an error it died; without one it left on purpose. */
  private peerGone(p: number, err: Error | null): void {
    if (this.destroyed) return;
    const reason = err ? err.message : `rank ${p} closed its connections (left the job)`;
    // A rank that finished first may already have sent everything we still
    // need: only operations that wait on it for more data fail.
    if (err && !this.failed.has(p)) this.failed.set(p, err);
    else if (!err) this.left.add(p);
    if (err) this.log(`rank ${p} failed: ${reason}`);
    for (const op of [...this.active.values()]) {
      if (!op.ranks.includes(p)) continue;
      // A rank that left in an orderly way only breaks operations still waiting on it.
      if (!err && !this.router.waitingOn(op.workId).includes(p)) continue;
      op.fail(new PeerFailureError(p, `rank ${p} ${err ? 'failed' : 'left'}: ${reason}`));
    }
  }

  /** Sends one message to a global rank; fails with a PeerFailureError naming it. */
  async sendTo(peer: number, h: MessageHeader, data: Uint8Array): Promise<void> {
    const link = this.links.get(peer);
    const gone = this.failed.get(peer);
    if (gone || !link || link.closed) throw new PeerFailureError(peer, `cannot send to rank ${peer}: ${gone?.message ?? (this.left.has(peer) ? `rank ${peer} already left the job` : 'no link')}`);
    try {
      await link.send(h, data);
    } catch (e) {
      throw new PeerFailureError(peer, `sending to rank ${peer} failed: ${(e as Error).message}`);
    }
  }

  /** Tells group peers that this rank gave up on (group, seq), so they fail fast too. */
  broadcastAbort(ranks: readonly number[], groupId: number, seq: number, reason: string, failedRank?: number): void {
    for (const p of ranks) {
      if (p === this.rank || p === failedRank) continue;
      this.links.get(p)?.sendControl({ t: 'abort', group: groupId, seq, reason, ...(failedRank === undefined ? {} : { failedRank }) });
    }
  }

  private onControl(src: number, body: unknown): void {
    const b = body as { t?: unknown; group?: unknown; seq?: unknown; reason?: unknown; failedRank?: unknown };
    if (b?.t === 'abort' && typeof b.group === 'number' && typeof b.seq === 'number') {
      const fr = typeof b.failedRank === 'number' ? b.failedRank : undefined;
      for (const h of this.abortHandlers) h(src, b.group, b.seq, String(b.reason ?? 'no reason given'), fr);
      return;
    }
    this.log(`ignoring unknown control message from rank ${src}`);
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const op of [...this.active.values()]) op.fail(new DistError('the communicator was destroyed while this operation was in flight'));
    await this.transport?.close();
    this.router.dispose();
  }
}
