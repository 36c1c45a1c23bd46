// Matches incoming fragments to receives posted by collectives (receiver-posted
// buffers): a fragment whose receive is already posted is copied by the
// transport straight into the destination; one that arrives early is held
// (in pooled buffers of the process heap, where a receive that sums can adopt
// a whole message instead of having it copied: LateDest.adopt), and the
// memory held per peer is bounded: past the budget the link stops reading,
// so TCP's own flow control pushes back on the sender.
//
// Every collective frame carries the collective's signature. A frame whose
// (group, seq) does not match what this rank issued at that seq is reported
// as an ordering mix-up instead of being silently combined.
import { FrameType, type FrameHeader } from '../../transports/frame.ts';
import type { FrameSink, Link } from '../../transports/types.ts';
import { CollectiveMismatchError } from './errors.ts';
import { describe, sameSignature, type Signature } from './ops.ts';
import { SimdHeap } from './simd.ts';

/** dst ⊕= src over equal-length byte views (a reduction applied as data lands). */
export type ReduceFn = (dst: Uint8Array, src: Uint8Array) => void;

/**
 * A receive whose memory is chosen when its first fragment arrives: `bind()`
 * returns exactly `length` bytes then (a slot from a reused pool, so only
 * what is actually in flight is touched and the slots stay cache-warm).
 */
export interface LateDest {
  readonly length: number;
  bind(): Uint8Array;
  /**
   * Optional: offered a message that arrived whole, in one buffer, before
   * its receive was posted (or while it was being posted), instead of
   * `bind()` and a copy. Returning true takes `data` as the receive's memory
   * (then nothing is bound); `release()` must be called once it is no longer
   * read, and gives the buffer back to the router. False declines.
   */
  adopt?(data: Uint8Array, release: () => void): boolean;
}

interface Posted {
  /** Null until a LateDest is bound. */
  dest: Uint8Array | null;
  size: number;
  /** The receive's LateDest, if its memory is chosen late (or adopted). */
  late?: LateDest;
  /** Set for a reducing receive: incoming bytes are combined into dest instead of overwriting it. */
  reduce?: ReduceFn;
  filled: number;
  src: number;
  owner: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

interface Early {
  src: number;
  total: number;
  received: number;
  /** `block`: the pooled buffer `data` lies at the start of (null for small fragments, which are not pooled). */
  frags: { offset: number; data: Uint8Array; block: Uint8Array | null }[];
  /** Set when a receive was posted while a fragment was still arriving into `frags`. */
  redirect?: Posted;
}

interface Expectation {
  sig: Signature;
  owner: number;
  fail: (e: Error) => void;
}

export interface RouterHooks {
  groupName(id: number): string;
  onControl(src: number, body: unknown): void;
}

/** Early-fragment buffers kept for reuse per process. */
const EARLY_POOL_BYTES = 32 * 1024 * 1024;
/** What an early fragment is held in: its bytes, and the pooled buffer they lie in. */
type EarlyBuf = { data: Uint8Array; block: Uint8Array | null };
/** Fragments at least this large get pooled buffers, in multiples of it. */
const POOL_MIN = 64 * 1024;

const key = (type: number, src: number, group: number, seq: number, step: number, aux: number) =>
  `${type}|${src}|${group}|${seq}|${step}|${aux}`;
const seqKey = (group: number, seq: number) => `${group}|${seq}`;

/** `n` bytes in the process heap where there is one (so SIMD sums read them where they are), else a plain buffer. */
function heapOrPlain(n: number): Uint8Array {
  const heap = SimdHeap.process();
  const at = heap === null ? null : heap.alloc(n);
  return at === null ? new Uint8Array(n) : heap!.view(at, n);
}

/** Gives a buffer back to the process heap if it lies there (a plain fallback buffer is left to the GC). */
function releaseToHeap(b: Uint8Array): void {
  const heap = SimdHeap.process();
  const at = heap === null ? -1 : heap.addressOf(b);
  if (at >= 0) heap!.release(at);
}

const destOf = (p: Posted): Uint8Array => p.dest ?? (p.dest = p.late!.bind());

function deliver(p: Posted, offset: number, data: Uint8Array): void {
  if (p.reduce) p.reduce(destOf(p).subarray(offset, offset + data.length), data);
  else destOf(p).set(data, offset);
}

export class Router implements FrameSink {
  private readonly posted = new Map<string, Posted>();
  private readonly early = new Map<string, Early>();
  private readonly earlyBytes = new Map<number, number>();
  private readonly expectations = new Map<string, Expectation>();
  /** First signature seen from each peer for a (group, seq) not yet issued here. */
  private readonly earlySigs = new Map<string, { src: number; sig: Signature }>();
  private readonly links = new Map<number, Link>();
  private discard = new Uint8Array(0);
  private readonly paused = new Set<number>();
  /** Recycled early-fragment buffers by length (at most EARLY_POOL_BYTES in all). */
  private readonly earlyPool = new Map<number, Uint8Array[]>();
  private earlyPooled = 0;
  /**
   * Collective payload bytes that arrived before their receive was posted
   * (held, then copied once more): a diagnostic of how often peers run ahead.
   */
  earlyDataBytes = 0;
  /** Of those, bytes a receive adopted where they lay (LateDest.adopt) instead of having them copied. */
  adoptedBytes = 0;
  /** Per-peer landing buffer for reducing receives (one fragment at a time per link). */
  private readonly staging = new Map<number, Uint8Array>();

  constructor(
    private readonly localRank: number,
    private readonly hooks: RouterHooks,
    /** Bytes of early (unposted) data held per peer before reading pauses. */
    private readonly earlyBudget = 256 * 1024 * 1024,
  ) {}

  addLink(link: Link): void {
    this.links.set(link.peerRank, link);
  }

  // ---- FrameSink ----
  place(link: Link, h: FrameHeader): Uint8Array {
    const src = link.peerRank;
    if (h.type === FrameType.Data) {
      const sig: Signature = { op: h.op, dtype: h.dtype, redop: h.redop, count: h.count, aux: h.aux };
      const sk = seqKey(h.group, h.seq);
      const ex = this.expectations.get(sk);
      if (ex) {
        if (!sameSignature(ex.sig, sig)) {
          ex.fail(this.mismatch(h.group, h.seq, ex.sig, src, sig));
          return this.scratch(h.length);
        }
      } else if (!this.earlySigs.has(sk)) {
        this.earlySigs.set(sk, { src, sig });
      }
    }
    const k = key(h.type, src, h.group, h.seq, h.step, h.type === FrameType.P2P ? h.aux : 0);
    const p = this.posted.get(k);
    if (p) {
      if (h.total !== p.size) {
        this.posted.delete(k);
        p.reject(this.sizeMismatch(h, src, p.size));
        return this.scratch(h.length);
      }
      // A reducing receive lands in a reused per-link buffer (cache-warm, no
      // allocation) and is folded into dest as soon as the fragment is in.
      if (p.reduce) return this.stage(src, h.length);
      return destOf(p).subarray(h.offset, h.offset + h.length);
    }
    let e = this.early.get(k);
    if (!e) {
      e = { src, total: h.total, received: 0, frags: [] };
      this.early.set(k, e);
    }
    const { data, block } = this.earlyBuffer(h.length);
    if (h.type === FrameType.Data) this.earlyDataBytes += h.length;
    e.frags.push({ offset: h.offset, data, block });
    const held = (this.earlyBytes.get(src) ?? 0) + h.length;
    this.earlyBytes.set(src, held);
    if (held > this.earlyBudget && !this.paused.has(src)) {
      this.paused.add(src);
      link.pause();
    }
    return data;
  }

  arrived(link: Link, h: FrameHeader): void {
    const k = key(h.type, link.peerRank, h.group, h.seq, h.step, h.type === FrameType.P2P ? h.aux : 0);
    const e = this.early.get(k);
    if (e) {
      e.received += h.length;
      const p = e.redirect;
      if (!p) return;
      // The fragment that was in flight when the receive was posted: hand it over, or copy it.
      const f = e.frags[e.frags.length - 1]!;
      if (p.filled === 0 && this.adopted(p, k, e)) p.filled = p.size;
      else {
        deliver(p, f.offset, f.data);
        p.filled += f.data.length;
        this.dropEarly(k, e);
      }
    }
    const p = this.posted.get(k);
    if (!p) return;
    if (!e) {
      if (p.reduce) p.reduce(destOf(p).subarray(h.offset, h.offset + h.length), this.stage(link.peerRank, h.length));
      p.filled += h.length;
    }
    if (p.filled >= p.size) {
      this.posted.delete(k);
      p.resolve();
    }
  }

  control(link: Link, body: unknown): void {
    this.hooks.onControl(link.peerRank, body);
  }

  // ---- used by collectives ----
  /** Registers what this rank issued at (group, seq); checks early frames against it. */
  expect(group: number, seq: number, sig: Signature, owner: number, fail: (e: Error) => void): void {
    const sk = seqKey(group, seq);
    this.expectations.set(sk, { sig, owner, fail });
    const seen = this.earlySigs.get(sk);
    if (seen) {
      this.earlySigs.delete(sk);
      if (!sameSignature(seen.sig, sig)) fail(this.mismatch(group, seq, sig, seen.src, seen.sig));
    }
  }

  unexpect(group: number, seq: number): void {
    this.expectations.delete(seqKey(group, seq));
    this.earlySigs.delete(seqKey(group, seq));
  }

  /**
   * Posts a receive of exactly dest.length bytes; resolves once they have all
   * arrived. With `reduce`, incoming bytes are combined into dest (dest ⊕= data)
   * fragment by fragment as they land, instead of overwriting it. A LateDest
   * (no `reduce`) is bound to memory when the first fragment arrives.
   */
  recv(type: FrameType, src: number, group: number, seq: number, step: number, aux: number, dest: Uint8Array | LateDest, owner: number, reduce?: ReduceFn): Promise<void> {
    const k = key(type, src, group, seq, step, type === FrameType.P2P ? aux : 0);
    return new Promise<void>((resolve, reject) => {
      if (this.posted.has(k)) {
        reject(new Error(`internal: duplicate receive posted for ${k}`));
        return;
      }
      const late = !(dest instanceof Uint8Array);
      if (late && reduce) {
        reject(new Error('internal: a reducing receive needs its destination up front'));
        return;
      }
      const p: Posted = late
        ? { dest: null, size: dest.length, late: dest, filled: 0, src, owner, resolve, reject }
        : { dest, size: dest.length, filled: 0, src, owner, resolve, reject, ...(reduce ? { reduce } : {}) };
      const e = this.early.get(k);
      if (e) {
        if (e.total !== dest.length) {
          this.dropEarly(k, e, false); // a fragment may still be landing: not reused (a heap block is lost; the operation fails anyway)
          reject(this.sizeMismatch({ type, group, seq, total: e.total, aux } as FrameHeader, src, dest.length));
          return;
        }
        const held = e.frags.reduce((a, f) => a + f.data.length, 0);
        const inFlight = held > e.received; // last fragment still arriving
        if (!inFlight && this.adopted(p, k, e)) {
          resolve();
          return;
        }
        const complete = inFlight ? e.frags.slice(0, -1) : e.frags;
        for (const f of complete) deliver(p, f.offset, f.data);
        p.filled = e.received;
        if (inFlight) e.redirect = p;
        else this.dropEarly(k, e);
        if (!inFlight && p.filled >= dest.length) {
          resolve();
          return;
        }
      }
      this.posted.set(k, p);
    });
  }

  /** True if a message with this key has (at least partly) arrived before its receive. */
  hasEarly(type: FrameType, src: number, group: number, seq: number, step: number, aux: number): boolean {
    return this.early.has(key(type, src, group, seq, step, type === FrameType.P2P ? aux : 0));
  }

  /** Fails every receive owned by `owner` (a collective that timed out or failed). */
  cancel(owner: number, err: Error): void {
    for (const [k, p] of this.posted) {
      if (p.owner !== owner) continue;
      this.posted.delete(k);
      p.reject(err);
    }
  }

  /** Peers from which `owner` still waits for data. */
  waitingOn(owner: number): number[] {
    const s = new Set<number>();
    for (const p of this.posted.values()) if (p.owner === owner) s.add(p.src);
    return [...s].sort((a, b) => a - b);
  }

  /**
   * Memory for an early fragment. Back-to-back collectives make early data
   * routine (a rank that finished op i starts sending op i+1 to one still
   * finishing op i), so fragment buffers are recycled: fresh ones cost a page
   * fault per 4 KiB (the kernel zero-fills them) on top of the copy out.
   */
  private earlyBuffer(n: number): EarlyBuf {
    if (n < POOL_MIN) return { data: Buffer.allocUnsafeSlow(n), block: null };
    const cap = Math.ceil(n / POOL_MIN) * POOL_MIN; // chunks differ by a few elements: one size class
    let block = this.earlyPool.get(cap)?.pop();
    if (block !== undefined) this.earlyPooled -= cap;
    // In the process heap: a message that arrives whole there can be adopted by a receive that sums in that heap (no copy).
    else block = heapOrPlain(cap);
    return { data: block.subarray(0, n), block };
  }

  /** Puts an early-fragment buffer back in the pool, or gives it up past the pool's budget. */
  private recycle(block: Uint8Array): void {
    const cap = block.length;
    if (this.earlyPooled + cap > EARLY_POOL_BYTES) {
      releaseToHeap(block);
      return;
    }
    let list = this.earlyPool.get(cap);
    if (!list) this.earlyPool.set(cap, (list = []));
    list.push(block);
    this.earlyPooled += cap;
  }

  /**
   * Offers an early message that is complete in one pooled buffer to p's
   * LateDest (adopt); if taken, the early entry is gone and the buffer
   * belongs to the receiver until it calls release.
   */
  private adopted(p: Posted, k: string, e: Early): boolean {
    const f = e.frags.length === 1 ? e.frags[0]! : undefined;
    if (p.late?.adopt === undefined || f === undefined || f.block === null || f.offset !== 0 || f.data.length !== p.size || e.received !== p.size) return false;
    const block = f.block;
    if (!p.late.adopt(f.data, () => this.recycle(block))) return false;
    this.adoptedBytes += f.data.length;
    this.dropEarly(k, e, false);
    return true;
  }

  private dropEarly(k: string, e: Early, recycle = true): void {
    this.early.delete(k);
    for (const f of recycle ? e.frags : []) if (f.block !== null) this.recycle(f.block);
    const held = (this.earlyBytes.get(e.src) ?? 0) - e.frags.reduce((a, f) => a + f.data.length, 0);
    this.earlyBytes.set(e.src, held);
    if (held <= this.earlyBudget / 2 && this.paused.delete(e.src)) this.links.get(e.src)?.resume();
  }

  private stage(peer: number, n: number): Uint8Array {
    let b = this.staging.get(peer);
    if (!b || b.length < n) {
      b = this.stagingBuffer(Math.max(n, 64 * 1024), b);
      this.staging.set(peer, b);
    }
    return b.subarray(0, n);
  }

  /** Gives the landing buffers back to the heap; call once no link can deliver any more (transport closed). */
  dispose(): void {
    for (const b of this.staging.values()) releaseToHeap(b);
    this.staging.clear();
    // Early buffers in the process heap outlive this router otherwise (pooled, or holding data nobody will receive).
    for (const e of this.early.values()) for (const f of e.frags) if (f.block !== null) releaseToHeap(f.block);
    this.early.clear();
    for (const list of this.earlyPool.values()) for (const b of list) releaseToHeap(b);
    this.earlyPool.clear();
    this.earlyPooled = 0;
  }

  /**
   * A landing buffer for reducing receives: in the process heap where there
   * is one, so the SIMD sum reads the fragment where it landed (and writes a
   * registered destination in place); `old` (outgrown) is given back.
   */
  private stagingBuffer(n: number, old: Uint8Array | undefined): Uint8Array {
    if (old !== undefined) releaseToHeap(old);
    return heapOrPlain(n);
  }

  private scratch(n: number): Uint8Array {
    if (this.discard.length < n) this.discard = new Uint8Array(n);
    return this.discard.subarray(0, n);
  }

  private mismatch(group: number, seq: number, mine: Signature, src: number, theirs: Signature): CollectiveMismatchError {
    return new CollectiveMismatchError(
      `collective mismatch on group ${this.hooks.groupName(group)} at op #${seq}: rank ${this.localRank} issued ${describe(mine)} but rank ${src} issued ${describe(theirs)} ` +
        `(collectives must be issued in the same order with the same sizes on every rank)`,
    );
  }

  private sizeMismatch(h: Pick<FrameHeader, 'type' | 'group' | 'seq' | 'total' | 'aux'>, src: number, expected: number): CollectiveMismatchError {
    const what = h.type === FrameType.P2P ? `recv (tag ${h.aux}) from rank ${src}` : `op #${h.seq} on group ${this.hooks.groupName(h.group)}`;
    return new CollectiveMismatchError(`${what}: rank ${src} sent ${h.total} bytes but rank ${this.localRank} expected ${expected} bytes (buffer lengths differ across ranks)`);
  }
}
