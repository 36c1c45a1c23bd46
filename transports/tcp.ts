// Raw TCP transport on node:net: length-prefixed frames (frame.ts), Nagle off,
// kernel backpressure honoured through the stream's high-water mark.
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { acceptHandshake, connectHandshake, ReplayGuard, type Purpose } from './auth.ts';
import { LOOPBACK, formatAddress, parseAddress } from './address.ts';
import { Framer } from './framer.ts';
import { HandshakeChannel, MAX_HANDSHAKE_FRAME, withTimeout } from './handshake-io.ts';
import { LinkBase } from './link.ts';
import { DEFAULTS, type Link, type Transport, type TransportOptions } from './types.ts';

/** Bytes queued in user space before a sender waits for 'drain'. */
const HIGH_WATER = 8 * 1024 * 1024;

export class TcpLink extends LinkBase {
  readonly transport = 'tcp' as const;
  constructor(
    private readonly socket: net.Socket,
    framer: Framer,
    localRank: number,
    peerRank: number,
    opts: TransportOptions,
  ) {
    super(localRank, peerRank, opts.sink, opts);
    socket.on('close', () => this.connectionLost('socket closed'));
    socket.on('end', () => this.connectionLost('peer closed the connection'));
    socket.on('error', (e) => this.connectionLost(e.message));
    framer.setHandler(
      {
        begin: (h) => this.beginFrame(h),
        end: (h, b) => {
          this.endFrame(h, b);
          return !this.closed;
        },
      },
      this.maxFrame,
    );
    socket.on('data', (chunk: Buffer) => {
      if (this.closed) return;
      this.touch();
      try {
        framer.push(chunk);
      } catch (e) {
        this.protocolFailure(e);
      }
    });
    socket.resume();
  }

  protected writeFrame(header: Buffer, payload: Uint8Array | null): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      if (payload === null) {
        this.socket.write(header, () => resolve());
        return;
      }
      // Header and payload leave in one writev: no copy, one syscall.
      this.socket.cork();
      this.socket.write(header);
      this.socket.write(payload, () => resolve());
      this.socket.uncork();
    });
  }
  protected congested(): boolean {
    return this.socket.writableLength > HIGH_WATER;
  }
  private drainWait: Promise<void> | null = null;
  protected drained(): Promise<void> {
    // One shared waiter however many senders are blocked on this link.
    this.drainWait ??= new Promise<void>((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        this.drainWait = null;
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
    return this.drainWait;
  }
  protected pauseInput(): void {
    this.socket.pause();
  }
  protected resumeInput(): void {
    this.socket.resume();
  }
  protected teardown(graceful: boolean): void {
    if (graceful) this.socket.end();
    else this.socket.destroy();
  }
}

type Side = 'accept' | 'connect';

/** Runs the HMAC handshake on a fresh socket; resolves with the framer primed for the link. */
export async function authenticateSocket(
  socket: net.Socket,
  side: Side,
  opts: TransportOptions & { purpose: Purpose; replay: ReplayGuard; expectPeerRank?: number },
): Promise<{ peerRank: number; framer: Framer }> {
  socket.setNoDelay(true);
  const ch = new HandshakeChannel((b) => socket.write(b), side === 'accept' ? 1 : 2);
  const framer = new Framer(MAX_HANDSHAKE_FRAME, ch);
  const onData = (chunk: Buffer) => {
    try {
      framer.push(chunk);
    } catch (e) {
      ch.fail(e as Error);
    }
  };
  const onGone = () => ch.fail(new Error('connection closed during the handshake'));
  const onError = (e: Error) => ch.fail(e);
  socket.on('data', onData);
  socket.on('close', onGone);
  socket.on('error', onError);
  try {
    const cfg = { secret: opts.secret, localRank: opts.rank, purpose: opts.purpose };
    const run =
      side === 'accept'
        ? acceptHandshake(ch, { ...cfg, replay: opts.replay })
        : connectHandshake(ch, { ...cfg, expectPeerRank: opts.expectPeerRank });
    const { peerRank } = await withTimeout(run, opts.handshakeMs ?? DEFAULTS.handshakeMs, 'handshake');
    return { peerRank, framer };
  } finally {
    // Hold further bytes in the kernel until the link attaches its own reader.
    socket.pause();
    socket.off('data', onData);
    socket.off('close', onGone);
    socket.off('error', onError);
  }
}

export interface TcpTransportOptions extends TransportOptions {
  /** 'peer' for rank links, 'store' for the rendezvous store. */
  purpose?: Purpose;
  /** Port to listen on (0 = any free port). */
  port?: number;
}

export class TcpTransport extends EventEmitter implements Transport {
  readonly name = 'tcp' as const;
  private server: net.Server | null = null;
  private readonly links = new Set<Link>();
  private readonly replay = new ReplayGuard();
  private readonly purpose: Purpose;

  constructor(private readonly opts: TcpTransportOptions) {
    super();
    this.purpose = opts.purpose ?? 'peer';
  }

  private track(link: Link): Link {
    this.links.add(link);
    link.once('close', () => this.links.delete(link));
    return link;
  }

  listen(onLink: (link: Link) => void): Promise<string> {
    const host = this.opts.host ?? LOOPBACK;
    const server = net.createServer({ noDelay: true });
    this.server = server;
    server.on('connection', (socket) => {
      const remote = formatAddress(socket.remoteAddress ?? '?', socket.remotePort ?? 0);
      socket.on('error', () => {});
      authenticateSocket(socket, 'accept', { ...this.opts, purpose: this.purpose, replay: this.replay }).then(
        ({ peerRank, framer }) => {
          if (socket.destroyed) return;
          onLink(this.track(new TcpLink(socket, framer, this.opts.rank, peerRank, this.opts)));
        },
        (err: Error) => {
          const reason = `rejected ${this.purpose} connection from ${remote}: ${err.message}`;
          this.opts.log?.(reason);
          this.emit('reject', reason, remote);
          socket.destroy();
        },
      );
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port ?? 0, host, () => {
        server.off('error', reject);
        const a = server.address() as net.AddressInfo;
        resolve(formatAddress(host, a.port));
      });
    });
  }

  async connect(address: string, peerRank: number): Promise<Link> {
    const { host, port } = parseAddress(address);
    const socket = net.connect({ host, port, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.on('error', () => {});
    try {
      const { framer, peerRank: got } = await authenticateSocket(socket, 'connect', {
        ...this.opts,
        purpose: this.purpose,
        replay: this.replay,
        expectPeerRank: peerRank < 0 ? undefined : peerRank,
      });
      return this.track(new TcpLink(socket, framer, this.opts.rank, got, this.opts));
    } catch (e) {
      socket.destroy();
      throw new Error(`cannot connect to rank ${peerRank} at ${address}: ${(e as Error).message}`);
    }
  }

  async close(): Promise<void> {
    for (const l of [...this.links]) l.close();
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}
