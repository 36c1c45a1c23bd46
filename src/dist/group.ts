// Process groups: an ordered list of global ranks with its own sequence
// counter. Every collective takes the next sequence number; its frames carry
// (group, seq, step) plus the collective's signature, so operations issued in
// a different order on two ranks are reported instead of mixed up.
import { FrameType, VARIABLE_COUNT } from '../../transports/frame.ts';
import { ringAllGather, ringAllReduce, ringReduceScatter } from './algorithms/ring.ts';
import { barrier, directAllGather, directAllReduce, directBroadcast, directReduceScatter } from './algorithms/direct.ts';
import { scatterAllReduce, scatterReduceScatter } from './algorithms/scatter.ts';
import { allReduceAlgorithm, blockAlgorithm } from './algorithms/select.ts';
import { chainBroadcast } from './algorithms/broadcast.ts';
import { pairwiseAllToAll } from './algorithms/alltoall.ts';
import type { AlgoCtx } from './algorithms/context.ts';
import type { ActiveOp, Comm } from './comm.ts';
import { bytesOf, checkReduce, dtypeName, dtypeOf, elementSize, REDUCE_CODES, type HostBuffer, type ReduceOp } from './dtype.ts';
import { CollectiveMismatchError, DistError, DistTimeoutError, PeerFailureError } from './errors.ts';
import { OpCode, describe, type Signature } from './ops.ts';
import { Work } from './work.ts';

export interface OpOptions {
  /** Overrides the communicator's timeout for this operation (ms). */
  timeoutMs?: number;
}
export interface ReduceOptions extends OpOptions {
  op?: ReduceOp;
}
export interface AllToAllVOptions extends OpOptions {
  /** Elements this rank sends to each rank. */
  sendCounts: number[];
  /** Elements this rank receives from each rank. */
  recvCounts: number[];
  /** Element offsets into input/output (default: prefix sums of the counts). */
  sendDispls?: number[];
  recvDispls?: number[];
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function prefixSums(counts: number[]): number[] {
  const out: number[] = [];
  let s = 0;
  for (const c of counts) {
    out.push(s);
    s += c;
  }
  return out;
}

export const WORLD_GROUP_ID = 1;

export class ProcessGroup {
  /** This process's rank inside the group, or -1 if it is not a member. */
  readonly rank: number;
  readonly size: number;
  private seq = 0;
  private p2pSend = new Map<string, number>();
  private p2pRecv = new Map<string, number>();
  private destroyed = false;
  private broken: Error | null = null;
  /** Groups created from this one with each rank list, to give repeats distinct ids. */
  private readonly created = new Map<string, number>();

  constructor(
    readonly comm: Comm,
    readonly id: number,
    readonly ranks: readonly number[],
    readonly name: string,
  ) {
    this.rank = ranks.indexOf(comm.rank);
    this.size = ranks.length;
    comm.nameGroup(id, `"${name}" [${ranks.join(',')}]`);
    comm.onAbort((src, groupId, seq, reason, failedRank) => {
      if (groupId !== this.id) return;
      this.abortFrom(src, seq, reason, failedRank);
    });
  }

  get isMember(): boolean {
    return this.rank >= 0;
  }

  /** Global rank of group rank `r`. */
  globalRank(r: number): number {
    return this.ranks[r]!;
  }

  // ---------- groups ----------
  /**
   * Creates a sub-group of global ranks. Every member must call it (in the same
   * order relative to other group creations); non-members may call it and get a
   * handle whose operations throw. Members meet in the store to check they agree.
   */
  async newGroup(ranks: number[], name?: string): Promise<ProcessGroup> {
    this.checkAlive('newGroup');
    const sorted = [...ranks];
    if (new Set(sorted).size !== sorted.length) throw new DistError(`newGroup: duplicate ranks in [${ranks.join(',')}]`);
    for (const r of sorted) {
      if (!Number.isInteger(r) || !this.ranks.includes(r)) throw new DistError(`newGroup: rank ${r} is not in group ${this.label}`);
    }
    const sig = sorted.join(',');
    const k = this.created.get(sig) ?? 0;
    this.created.set(sig, k + 1);
    const id = (fnv1a(`${this.id}|${sig}|${k}`) | 2) >>> 0; // never 0 or the world's 1
    const g = new ProcessGroup(this.comm, id, sorted, name ?? `group${id.toString(16)}`);
    if (!g.isMember) return g;
    const store = this.comm.store;
    const base = `${this.comm.prefix}/group/${id}`;
    const stored = await store.compareSet(`${base}/ranks`, null, sig);
    if (stored !== sig) throw new DistError(`newGroup: group id ${id} is already used by ranks [${String(stored)}] (creation order differs across ranks?)`);
    const joined = await store.add(`${base}/joined`, 1);
    if (joined === sorted.length) await store.set(`${base}/ready`, 1);
    await store.wait([`${base}/ready`], this.comm.timeoutMs);
    return g;
  }

  /** Releases the group; any later use throws. */
  destroy(): void {
    this.destroyed = true;
  }

  get label(): string {
    return `"${this.name}" [${this.ranks.join(',')}]`;
  }

  private checkAlive(what: string): void {
    if (this.destroyed) throw new DistError(`${what} on group ${this.label} after it was destroyed`);
    if (this.comm.destroyed) throw new DistError(`${what} on group ${this.label} after the communicator was destroyed`);
    if (!this.isMember) throw new DistError(`${what}: rank ${this.comm.rank} is not a member of group ${this.label}`);
    if (this.broken) throw new DistError(`${what} on group ${this.label}: the group is unusable after an earlier failure: ${this.broken.message}`);
    for (const r of this.ranks) {
      const f = this.comm.failed.get(r);
      if (f) throw new PeerFailureError(r, `${what} on group ${this.label}: rank ${r} is gone: ${f.message}`);
    }
  }

  // ---------- the engine every operation goes through ----------
  private issue<T>(sig: Signature, result: T, opts: OpOptions | undefined, body: (ctx: AlgoCtx) => Promise<void>): Work<T> {
    const what = OpCode[sig.op]!;
    this.checkAlive(what);
    const comm = this.comm;
    const seq = this.seq++;
    const workId = comm.newWorkId();
    const label = `${describe(sig)} #${seq} on group ${this.label}`;
    const work = new Work<T>(label);
    const timeoutMs = opts?.timeoutMs ?? comm.timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      clearTimeout(timer);
      comm.active.delete(workId);
      comm.router.unexpect(this.id, seq);
    };
    const fail = (err: Error, tellPeers: boolean) => {
      if (work.completed) return;
      finish();
      // Each failure gets its own error object, so adding the operation's name is safe.
      const e = err;
      if (!err.message.includes(`#${seq} on group`) && !(err instanceof CollectiveMismatchError)) e.message = `${label} failed: ${err.message}`;
      if (!(e instanceof PeerFailureError) || this.broken === null) this.broken ??= e;
      comm.router.cancel(workId, e);
      work.reject(e);
      if (tellPeers) comm.broadcastAbort(this.ranks, this.id, seq, `rank ${comm.rank}: ${e.message}`, (e as PeerFailureError).failedRank);
    };
    const op: ActiveOp = { workId, groupId: this.id, seq, ranks: this.ranks, fail: (e) => fail(e, e instanceof PeerFailureError && !(e as { fromAbort?: boolean }).fromAbort) };
    comm.active.set(workId, op);
    comm.router.expect(this.id, seq, sig, workId, (e) => fail(e, true));
    timer = setTimeout(() => {
      const waiting = comm.router.waitingOn(workId).map((r) => this.globalRank(r) ?? r);
      const on = waiting.length ? `waiting for data from rank(s) ${waiting.join(', ')}` : 'waiting to send';
      fail(new DistTimeoutError(`${label} timed out after ${timeoutMs} ms ${on} (stopped, slow or not calling the same collective?)`), true);
    }, timeoutMs);
    timer.unref();
    const header = { type: FrameType.Data, group: this.id, seq, op: sig.op, dtype: sig.dtype, redop: sig.redop, flags: 0, count: sig.count, aux: sig.aux };
    const ctx: AlgoCtx = {
      rank: this.rank,
      size: this.size,
      chunkBytes: comm.chunkBytes,
      readyBytes: comm.readyBytes,
      send: (peer, step, data) => comm.sendTo(this.globalRank(peer), { ...header, step }, data),
      // The router keys by global rank; waitingOn reports group ranks translated above.
      recv: (peer, step, dest, reduce) => {
        const g = this.globalRank(peer);
        // A rank that already left can only satisfy receives whose data is here.
        if (comm.left.has(g) && !comm.router.hasEarly(FrameType.Data, g, this.id, seq, step, 0)) {
          return Promise.reject(new PeerFailureError(g, `rank ${g} left the job before sending step ${step}`));
        }
        return comm.router.recv(FrameType.Data, g, this.id, seq, step, 0, dest, workId, reduce);
      },
    };
    body(ctx).then(
      () => {
        if (work.completed) return;
        finish();
        work.resolve(result);
      },
      // Peers are told about every failure, so they all name the same culprit
      // even if this rank noticed it first.
      (e: Error) => fail(e, true),
    );
    return work;
  }

  private abortFrom(src: number, seq: number, reason: string, failedRank?: number): void {
    const err = () => (failedRank === undefined ? new DistError(`aborted by rank ${src}: ${reason}`) : new PeerFailureError(failedRank, `aborted by rank ${src} because rank ${failedRank} failed: ${reason}`));
    for (const op of [...this.comm.active.values()]) {
      // Only abort what is running; an abort must not echo back and forth.
      if (op.groupId === this.id && op.seq === seq) op.fail(Object.assign(err(), { fromAbort: true }));
    }
    this.broken ??= new DistError(`rank ${src} aborted op #${seq}: ${reason}`);
  }

  private sig(op: OpCode, b: HostBuffer, count: number, redop = 0, aux = 0): Signature {
    return { op, dtype: dtypeOf(b), redop, count, aux };
  }

  // ---------- collectives ----------
  /** In-place all-reduce (sum, avg, max, min). Resolves to `buf`. */
  allReduce<B extends HostBuffer>(buf: B, opts: ReduceOptions = {}): Work<B> {
    const op = opts.op ?? 'sum';
    const dtype = dtypeOf(buf);
    checkReduce(dtype, op);
    const bytes = bytesOf(buf);
    const algo = allReduceAlgorithm(bytes.length, buf.length, this.size, this.comm.smallBytes, this.comm.allReduceAlgo);
    return this.issue(this.sig(OpCode.all_reduce, buf, buf.length, REDUCE_CODES[op]), buf, opts, (ctx) =>
      algo === 'direct' ? directAllReduce(ctx, bytes, dtype, op) : algo === 'scatter' ? scatterAllReduce(ctx, bytes, dtype, op, elementSize(dtype)) : ringAllReduce(ctx, bytes, dtype, op, elementSize(dtype)),
    );
  }

  /** output ← reduction over ranks of block `rank` of input (input.length = size × output.length). */
  reduceScatter<B extends HostBuffer>(output: B, input: B, opts: ReduceOptions = {}): Work<B> {
    const op = opts.op ?? 'sum';
    const dtype = dtypeOf(output);
    this.sameType('reduceScatter', output, input);
    checkReduce(dtype, op);
    if (input.length !== output.length * this.size) {
      throw new DistError(`reduceScatter on group ${this.label}: input has ${input.length} elements, expected ${this.size} × output (${output.length}) = ${output.length * this.size}`);
    }
    const inB = bytesOf(input);
    const outB = bytesOf(output);
    return this.issue(this.sig(OpCode.reduce_scatter, output, output.length, REDUCE_CODES[op]), output, opts, (ctx) =>
      outB.length * this.size <= this.comm.smallBytes
        ? directReduceScatter(ctx, inB, outB, dtype, op)
        : blockAlgorithm(this.size, this.comm.allReduceAlgo) === 'scatter'
          ? scatterReduceScatter(ctx, inB, outB, dtype, op, elementSize(dtype))
          : ringReduceScatter(ctx, inB, outB, dtype, op, elementSize(dtype)),
    );
  }

  /** output ← concatenation of every rank's input, in rank order. */
  allGather<B extends HostBuffer>(output: B, input: B, opts: OpOptions = {}): Work<B> {
    this.sameType('allGather', output, input);
    if (output.length !== input.length * this.size) {
      throw new DistError(`allGather on group ${this.label}: output has ${output.length} elements, expected ${this.size} × input (${input.length}) = ${input.length * this.size}`);
    }
    const es = elementSize(dtypeOf(input));
    const outB = bytesOf(output);
    const sig = this.sig(OpCode.all_gather, input, input.length);
    return this.issue(sig, output, opts, async (ctx) => {
      outB.set(bytesOf(input), ctx.rank * input.length * es);
      // The direct exchange is also the large-message schedule on small groups.
      if (outB.length <= this.comm.smallBytes || blockAlgorithm(this.size, this.comm.allReduceAlgo) === 'scatter') await directAllGather(ctx, outB);
      else await ringAllGather(ctx, outB, es);
    });
  }

  /** Equal-split all-to-all: block j of input goes to rank j; block i of output comes from rank i. */
  allToAll<B extends HostBuffer>(output: B, input: B, opts: OpOptions = {}): Work<B> {
    this.sameType('allToAll', output, input);
    if (input.length !== output.length || input.length % this.size !== 0) {
      throw new DistError(`allToAll on group ${this.label}: input (${input.length}) and output (${output.length}) must have the same length, divisible by the group size ${this.size}`);
    }
    const m = input.length / this.size;
    const es = elementSize(dtypeOf(input));
    const inB = bytesOf(input);
    const outB = bytesOf(output);
    const blocks = (b: Uint8Array) => Array.from({ length: this.size }, (_, j) => b.subarray(j * m * es, (j + 1) * m * es));
    return this.issue(this.sig(OpCode.all_to_all, input, m), output, opts, (ctx) => pairwiseAllToAll(ctx, blocks(inB), blocks(outB)));
  }

  /** Uneven all-to-all: sendCounts[j] elements go to rank j, recvCounts[i] come from rank i (zeros allowed). */
  allToAllV<B extends HostBuffer>(output: B, input: B, o: AllToAllVOptions): Work<B> {
    this.sameType('allToAllV', output, input);
    const n = this.size;
    const check = (name: string, a: number[] | undefined) => {
      if (a === undefined) return;
      if (!Array.isArray(a) || a.length !== n || !a.every((x) => Number.isInteger(x) && x >= 0)) {
        throw new DistError(`allToAllV on group ${this.label}: ${name} must be ${n} non-negative integers, got ${JSON.stringify(a)}`);
      }
    };
    check('sendCounts', o.sendCounts);
    check('recvCounts', o.recvCounts);
    check('sendDispls', o.sendDispls);
    check('recvDispls', o.recvDispls);
    const sd = o.sendDispls ?? prefixSums(o.sendCounts);
    const rd = o.recvDispls ?? prefixSums(o.recvCounts);
    for (let j = 0; j < n; j++) {
      if (sd[j]! + o.sendCounts[j]! > input.length) throw new DistError(`allToAllV on group ${this.label}: send block for rank ${j} [${sd[j]}, ${sd[j]! + o.sendCounts[j]!}) exceeds input length ${input.length}`);
      if (rd[j]! + o.recvCounts[j]! > output.length) throw new DistError(`allToAllV on group ${this.label}: receive block from rank ${j} [${rd[j]}, ${rd[j]! + o.recvCounts[j]!}) exceeds output length ${output.length}`);
    }
    const es = elementSize(dtypeOf(input));
    const inB = bytesOf(input);
    const outB = bytesOf(output);
    const sendBlocks = o.sendCounts.map((c, j) => inB.subarray(sd[j]! * es, (sd[j]! + c) * es));
    const recvBlocks = o.recvCounts.map((c, j) => outB.subarray(rd[j]! * es, (rd[j]! + c) * es));
    return this.issue(this.sig(OpCode.all_to_all_v, input, VARIABLE_COUNT), output, o, (ctx) => pairwiseAllToAll(ctx, sendBlocks, recvBlocks));
  }

  /** Copies `buf` from group rank `root` to every rank (in place). */
  broadcast<B extends HostBuffer>(buf: B, root: number, opts: OpOptions = {}): Work<B> {
    if (!Number.isInteger(root) || root < 0 || root >= this.size) throw new DistError(`broadcast on group ${this.label}: root ${root} is not a group rank in [0, ${this.size})`);
    const b = bytesOf(buf);
    return this.issue(this.sig(OpCode.broadcast, buf, buf.length, 0, root), buf, opts, (ctx) =>
      b.length <= this.comm.smallBytes || this.size === 2 ? directBroadcast(ctx, b, root) : chainBroadcast(ctx, b, root),
    );
  }

  /** Resolves once every rank of the group has entered the barrier. */
  barrier(opts: OpOptions = {}): Work<void> {
    return this.issue<void>({ op: OpCode.barrier, dtype: 0, redop: 0, count: 0, aux: 0 }, undefined, opts, (ctx) => barrier(ctx));
  }

  // ---------- point to point ----------
  /** Sends `buf` to group rank `dst`; matched with the peer's recv by (tag, order). */
  send(buf: HostBuffer, dst: number, tag = 0, opts: OpOptions = {}): Work<void> {
    return this.p2p('send', buf, dst, tag, opts) as unknown as Work<void>;
  }

  /** Receives exactly buf.length elements from group rank `src` into `buf`. */
  recv<B extends HostBuffer>(buf: B, src: number, tag = 0, opts: OpOptions = {}): Work<B> {
    return this.p2p('recv', buf, src, tag, opts) as unknown as Work<B>;
  }

  private p2p(kind: 'send' | 'recv', buf: HostBuffer, peer: number, tag: number, opts: OpOptions): Work<HostBuffer | void> {
    this.checkAlive(kind);
    if (!Number.isInteger(peer) || peer < 0 || peer >= this.size || peer === this.rank) {
      throw new DistError(`${kind} on group ${this.label}: peer ${peer} must be another group rank in [0, ${this.size})`);
    }
    if (!Number.isInteger(tag) || tag < 0 || tag > 0xffffffff) throw new DistError(`${kind}: tag must be a 32-bit unsigned integer, got ${tag}`);
    const comm = this.comm;
    const g = this.globalRank(peer);
    const counters = kind === 'send' ? this.p2pSend : this.p2pRecv;
    const ck = `${peer}|${tag}`;
    const seq = counters.get(ck) ?? 0;
    counters.set(ck, seq + 1);
    const dtype = dtypeOf(buf);
    const workId = comm.newWorkId();
    const label = `${kind} ${kind === 'send' ? 'to' : 'from'} rank ${g} (tag ${tag}, ${buf.length} × ${dtypeName(dtype)}) on group ${this.label}`;
    const work = new Work<HostBuffer | void>(label);
    const timeoutMs = opts.timeoutMs ?? comm.timeoutMs;
    const finish = () => {
      clearTimeout(timer);
      comm.active.delete(workId);
    };
    const fail = (e: Error) => {
      if (work.completed) return;
      finish();
      comm.router.cancel(workId, e);
      if (!e.message.startsWith(label)) e.message = `${label} failed: ${e.message}`;
      work.reject(e);
    };
    const timer = setTimeout(() => fail(new DistTimeoutError(`timed out after ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    comm.active.set(workId, { workId, groupId: this.id, seq, ranks: [comm.rank, g], fail });
    const bytes = bytesOf(buf);
    const io =
      kind === 'send'
        ? comm.sendTo(g, { type: FrameType.P2P, group: this.id, seq, step: 0, op: OpCode.send, dtype, redop: 0, flags: 0, count: buf.length, aux: tag }, bytes)
        : comm.left.has(g) && !comm.router.hasEarly(FrameType.P2P, g, this.id, seq, 0, tag)
          ? Promise.reject(new PeerFailureError(g, `rank ${g} left the job before sending`))
          : comm.router.recv(FrameType.P2P, g, this.id, seq, 0, tag, bytes, workId);
    io.then(
      () => {
        if (work.completed) return;
        finish();
        work.resolve(kind === 'recv' ? buf : undefined);
      },
      (e: Error) => fail(e),
    );
    return work;
  }

  private sameType(what: string, a: HostBuffer, b: HostBuffer): void {
    if (dtypeOf(a) !== dtypeOf(b)) throw new DistError(`${what} on group ${this.label}: output is ${dtypeName(dtypeOf(a))} but input is ${dtypeName(dtypeOf(b))}`);
  }
}
