// In-process transport for ranks that are threads (worker_threads) of one
// process, or async tasks on one thread. Each rank pair shares a MessageChannel
// created up front by createInProcFabric; the ports themselves are the
// capability, so there is no HMAC handshake (nothing crosses a process boundary).
//
// Payloads travel through shared memory: each rank allocates one ring
// (a SharedArrayBuffer) per peer for the bytes that peer sends it and hands it
// over on the channel when the link opens. The sender copies a frame into the
// ring and posts its header and ring offset; the receiver copies it straight
// into the destination the collective posted and returns the bytes as credit.
// That is two copies through memory that stays mapped and cache-warm, against
// postMessage's fresh allocation per frame (page faults, then the copy into
// the destination). Until the peer's ring has arrived, and for a frame larger
// than the ring, the payload is copied into a transferable buffer instead,
// with credit-based flow control bounding what is in flight (MessagePorts
// have no backpressure of their own).
import { EventEmitter } from 'node:events';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { FrameType, decodeHeader, emptyHeader, encodeHeader } from './frame.ts';
import { LinkBase } from './link.ts';
import type { Link, Transport, TransportOptions } from './types.ts';

/** Bytes a sender may have in flight over the transfer path. */
const WINDOW = 32 * 1024 * 1024;
/** Smallest receive ring; larger when frames are (two frames fit, so one can be copied in while the other is read). */
const MIN_RING_BYTES = 8 * 1024 * 1024;
const HELLO = 'webomni-inproc-hello';
/** Credit flag: the bytes were read from the ring (else: a transferred payload). */
const RING_CREDIT = 1;
// Sync words at the start of a ring's SharedArrayBuffer: seq-cst atomic
// updates around each copy order the ring's bytes between the two threads.
const SYNC_WRITTEN = 0;
const SYNC_READ = 1;
const SYNC_BYTES = 64;

interface Msg {
  h: Uint8Array;
  /** A transferred payload. */
  p?: ArrayBuffer;
  /** The payload is in the ring at this offset (h.length bytes, wrapping at the end). */
  o?: number;
  /** The ring this side sends into, from the peer. */
  ring?: SharedArrayBuffer;
}

/** ports[r] maps each peer rank to rank r's end of their channel. */
export function createInProcFabric(worldSize: number): Map<number, MessagePort>[] {
  const ports = Array.from({ length: worldSize }, () => new Map<number, MessagePort>());
  for (let a = 0; a < worldSize; a++)
    for (let b = a + 1; b < worldSize; b++) {
      const { port1, port2 } = new MessageChannel();
      ports[a]!.set(b, port1);
      ports[b]!.set(a, port2);
    }
  return ports;
}

/** One direction's shared ring: the bytes and the sync words. */
class Ring {
  readonly bytes: Uint8Array;
  readonly sync: Int32Array;
  constructor(readonly sab: SharedArrayBuffer) {
    this.sync = new Int32Array(sab, 0, SYNC_BYTES / 4);
    this.bytes = new Uint8Array(sab, SYNC_BYTES);
  }
  get size(): number {
    return this.bytes.length;
  }
  /** Copies `src` in at `at` (wrapping at the end). */
  put(at: number, src: Uint8Array): void {
    const first = Math.min(src.length, this.size - at);
    this.bytes.set(src.subarray(0, first), at);
    if (first < src.length) this.bytes.set(src.subarray(first), 0);
    Atomics.add(this.sync, SYNC_WRITTEN, 1);
  }
  /** Copies `dst.length` bytes out from `at` (wrapping at the end). */
  get(at: number, dst: Uint8Array): void {
    Atomics.load(this.sync, SYNC_WRITTEN);
    const first = Math.min(dst.length, this.size - at);
    dst.set(this.bytes.subarray(at, at + first));
    if (first < dst.length) dst.set(this.bytes.subarray(0, dst.length - first), first);
    Atomics.add(this.sync, SYNC_READ, 1);
  }
}

interface Queued {
  header: Buffer;
  payload: Uint8Array | null;
  resolve: () => void;
}

export class InProcLink extends LinkBase {
  readonly transport = 'inproc' as const;
  readonly medium = 'inproc' as const;
  /** Transfer-path bytes not yet credited. */
  private inflight = 0;
  private creditWaiters: (() => void)[] = [];
  private held: Msg[] = [];
  private holding = false;
  /** Where the peer's frames arrive (allocated here, handed to the peer). */
  private readonly rx: Ring;
  /** The peer's ring for our frames, once it has arrived. */
  private tx: Ring | null = null;
  /** Bytes written into tx in all (the next frame goes at txHead % size) and not yet credited. */
  private txHead = 0;
  private txUsed = 0;
  /** Frames waiting for ring space, in order (nothing overtakes them). */
  private queue: Queued[] = [];
  /** Payload frames sent through the shared ring and as transferred copies (diagnostics). */
  readonly sent = { ring: 0, transferred: 0 };

  constructor(
    private readonly port: MessagePort,
    localRank: number,
    peerRank: number,
    opts: TransportOptions,
  ) {
    super(localRank, peerRank, opts.sink, opts);
    this.rx = new Ring(new SharedArrayBuffer(SYNC_BYTES + Math.max(MIN_RING_BYTES, 2 * this.maxFrame)));
    port.on('message', (m: Msg | string) => {
      if (this.closed || typeof m === 'string') return;
      this.touch();
      if (m.ring) {
        this.tx = new Ring(m.ring);
        return;
      }
      // Credits are never held: they free our sending side, whatever our reading does.
      if (this.holding && m.h[3] !== FrameType.Credit) this.held.push(m);
      else this.take(m);
    });
    port.on('close', () => this.connectionLost('message port closed'));
  }

  /** Hands the peer our receive ring; called once both ends listen on the channel. */
  offerRing(): void {
    this.port.postMessage({ h: new Uint8Array(0), ring: this.rx.sab } satisfies Msg);
  }

  private take(m: Msg): void {
    try {
      const h = decodeHeader(m.h, this.maxFrame);
      if (h.type === FrameType.Credit) {
        if (h.flags & RING_CREDIT) this.ringCredit(h.aux);
        else this.transferCredit(h.aux);
        return;
      }
      const target = this.beginFrame(h);
      let body: Uint8Array | null;
      if (m.o !== undefined) {
        if (h.length > this.rx.size || m.o < 0 || m.o >= this.rx.size) throw new Error(`ring frame of ${h.length} bytes at ${m.o} outside the ${this.rx.size}-byte ring`);
        body = target ?? new Uint8Array(h.length);
        this.rx.get(m.o, body);
      } else {
        body = m.p ? new Uint8Array(m.p) : null;
        if ((body?.length ?? 0) !== h.length) throw new Error(`frame says ${h.length} bytes, carries ${body?.length ?? 0}`);
        if (target && body) target.set(body);
      }
      if (!target && h.type === FrameType.Control) throw new Error('control frame without body');
      this.endFrame(h, target ?? body);
      if (h.length > 0) {
        const c = emptyHeader(FrameType.Credit);
        c.aux = h.length;
        if (m.o !== undefined) c.flags = RING_CREDIT;
        this.port.postMessage({ h: encodeHeader(c) });
      }
    } catch (e) {
      this.protocolFailure(e);
    }
  }

  private transferCredit(n: number): void {
    this.inflight -= n;
    this.wakeSenders();
  }

  /** Senders waiting in drained() check again. */
  private wakeSenders(): void {
    const w = this.creditWaiters;
    this.creditWaiters = [];
    for (const f of w) f();
  }

  private ringCredit(n: number): void {
    Atomics.load(this.tx!.sync, SYNC_READ);
    this.txUsed -= n;
    while (this.queue.length && !this.closed) {
      const q = this.queue[0]!;
      if (!this.fits(q.payload)) break;
      this.queue.shift();
      this.post(q.header, q.payload);
      q.resolve();
    }
    if (this.queue.length === 0) this.wakeSenders();
  }

  private fits(payload: Uint8Array | null): boolean {
    return payload === null || this.txUsed + payload.length <= this.tx!.size;
  }

  /** Sends one frame now: payload into the ring when there is one it fits in, else transferred. */
  private post(header: Buffer, payload: Uint8Array | null): void {
    if (payload === null || payload.length === 0) {
      this.port.postMessage({ h: header });
      return;
    }
    const tx = this.tx;
    if (tx && payload.length <= tx.size) {
      const at = this.txHead % tx.size;
      tx.put(at, payload);
      this.txHead += payload.length;
      this.txUsed += payload.length;
      this.sent.ring++;
      this.port.postMessage({ h: header, o: at } satisfies Msg);
      return;
    }
    // One copy into a transferable buffer; the payload is reusable at once.
    const copy = payload.slice().buffer as ArrayBuffer;
    this.inflight += payload.length;
    this.sent.transferred++;
    this.port.postMessage({ h: header, p: copy } satisfies Msg, [copy]);
  }

  protected writeFrame(header: Buffer, payload: Uint8Array | null): Promise<void> {
    if (this.closed) return Promise.resolve();
    // Frames stay in order: behind queued ones, or until the ring has room.
    if (this.queue.length || (this.tx && payload && payload.length <= this.tx.size && !this.fits(payload))) {
      return new Promise((resolve) => this.queue.push({ header, payload, resolve }));
    }
    this.post(header, payload);
    return Promise.resolve();
  }
  protected congested(): boolean {
    return this.queue.length > 0 || this.inflight > WINDOW;
  }
  protected drained(): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if ((this.queue.length === 0 && this.inflight <= WINDOW / 2) || this.closed) resolve();
        else this.creditWaiters.push(check);
      };
      check();
    });
  }
  protected pauseInput(): void {
    this.holding = true;
  }
  protected resumeInput(): void {
    this.holding = false;
    while (this.held.length && !this.holding && !this.closed) this.take(this.held.shift()!);
  }
  protected teardown(): void {
    this.wakeSenders();
    for (const q of this.queue.splice(0)) q.resolve();
    // Let the Bye frame go out before the port closes.
    setImmediate(() => this.port.close());
  }
}

export class InProcTransport extends EventEmitter implements Transport {
  readonly name = 'inproc' as const;
  private readonly links = new Set<Link>();
  constructor(
    private readonly opts: TransportOptions,
    private readonly ports: Map<number, MessagePort>,
  ) {
    super();
  }

  private make(peer: number): InProcLink {
    const port = this.ports.get(peer);
    if (!port) throw new Error(`rank ${this.opts.rank} has no in-process channel to rank ${peer}`);
    const link = new InProcLink(port, this.opts.rank, peer, this.opts);
    this.links.add(link);
    link.once('close', () => this.links.delete(link));
    return link;
  }

  async listen(onLink: (link: Link) => void): Promise<string> {
    // Higher ranks connect to lower ones (same rule as the socket transports):
    // the first message on the channel is their hello.
    for (const [peer, port] of this.ports) {
      if (peer < this.opts.rank) continue;
      const onHello = (m: unknown) => {
        if (m !== HELLO) return;
        port.off('message', onHello);
        const link = this.make(peer);
        link.offerRing();
        onLink(link);
      };
      port.on('message', onHello);
    }
    return `inproc:${this.opts.rank}`;
  }

  async connect(_address: string, peerRank: number): Promise<Link> {
    const link = this.make(peerRank);
    this.ports.get(peerRank)!.postMessage(HELLO);
    link.offerRing();
    return link;
  }

  async close(): Promise<void> {
    for (const l of [...this.links]) l.close();
  }
}
