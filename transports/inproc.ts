// In-process transport for ranks that are threads (worker_threads) of one
// process, or async tasks on one thread. Each rank pair shares a MessageChannel
// created up front by createInProcFabric; the ports themselves are the
// capability, so there is no HMAC handshake (nothing crosses a process boundary).
// MessagePorts have no backpressure, so the link adds credit-based flow
// control: a sender may have at most `window` bytes not yet taken in by the peer.
import { EventEmitter } from 'node:events';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { FrameType, decodeHeader, emptyHeader, encodeHeader } from './frame.ts';
import { LinkBase } from './link.ts';
import type { Link, Transport, TransportOptions } from './types.ts';

const WINDOW = 32 * 1024 * 1024;
const HELLO = 'webomni-inproc-hello';

interface Msg {
  h: Uint8Array;
  p?: ArrayBuffer;
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

export class InProcLink extends LinkBase {
  readonly transport = 'inproc' as const;
  readonly medium = 'inproc' as const;
  private inflight = 0;
  private creditWaiters: (() => void)[] = [];
  private held: Msg[] = [];
  private holding = false;

  constructor(
    private readonly port: MessagePort,
    localRank: number,
    peerRank: number,
    opts: TransportOptions,
  ) {
    super(localRank, peerRank, opts.sink, opts);
    port.on('message', (m: Msg | string) => {
      if (this.closed || typeof m === 'string') return;
      this.touch();
      if (this.holding) this.held.push(m);
      else this.take(m);
    });
    port.on('close', () => this.connectionLost('message port closed'));
  }

  private take(m: Msg): void {
    try {
      const h = decodeHeader(m.h, this.maxFrame);
      if (h.type === FrameType.Credit) {
        this.inflight -= h.aux;
        const w = this.creditWaiters;
        this.creditWaiters = [];
        for (const f of w) f();
        return;
      }
      const target = this.beginFrame(h);
      const body = m.p ? new Uint8Array(m.p) : null;
      if ((body?.length ?? 0) !== h.length) throw new Error(`frame says ${h.length} bytes, carries ${body?.length ?? 0}`);
      if (target && body) target.set(body);
      else if (h.type === FrameType.Control) throw new Error('control frame without body');
      this.endFrame(h, target ?? body);
      if (h.length > 0) {
        const c = emptyHeader(FrameType.Credit);
        c.aux = h.length;
        this.port.postMessage({ h: encodeHeader(c) });
      }
    } catch (e) {
      this.protocolFailure(e);
    }
  }

  protected writeFrame(header: Buffer, payload: Uint8Array | null): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (payload === null || payload.length === 0) {
      this.port.postMessage({ h: header });
      return Promise.resolve();
    }
    // One copy into a transferable buffer; the payload is reusable at once.
    const copy = payload.slice().buffer as ArrayBuffer;
    this.inflight += payload.length;
    this.port.postMessage({ h: header, p: copy }, [copy]);
    return Promise.resolve();
  }
  protected congested(): boolean {
    return this.inflight > WINDOW;
  }
  protected drained(): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.inflight <= WINDOW / 2 || this.closed) resolve();
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
    const w = this.creditWaiters;
    this.creditWaiters = [];
    for (const f of w) f();
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

  private make(peer: number): Link {
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
        onLink(this.make(peer));
      };
      port.on('message', onHello);
    }
    return `inproc:${this.opts.rank}`;
  }

  async connect(_address: string, peerRank: number): Promise<Link> {
    const link = this.make(peerRank);
    this.ports.get(peerRank)!.postMessage(HELLO);
    return link;
  }

  async close(): Promise<void> {
    for (const l of [...this.links]) l.close();
  }
}
