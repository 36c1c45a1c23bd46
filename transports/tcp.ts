// Raw TCP transport on node:net: length-prefixed frames (frame.ts), Nagle off,
// kernel backpressure honoured through the stream's high-water mark.
//
// Peer links use one connection per direction. Node offers the `onread`
// option (the kernel copies incoming bytes into a buffer we choose, here the
// exact slice of the receive the collective posted) only on sockets it
// creates, not on accepted ones. So each rank *reads* on the connection it
// opened and *writes* on the one it accepted:
//
//   rank h (connects)                                rank l (listens)
//   R_h = connect(l) ── handshake, open{fwd, addr_h} ─▶ accept: W_l = this socket
//                     ◀── handshake, open{rev} ──────── R_l = connect(addr_h)
//   accept: W_h = that socket
//   h writes on W_h, reads R_h (onread);  l writes on W_l, reads R_l (onread)
//
// Both connections run the full mutual HMAC handshake. The store's links
// (purpose 'store') stay single-connection: the connector reads with onread,
// the listener with 'data' events.
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { acceptHandshake, connectHandshake, pack, unpack, ReplayGuard, type Purpose } from './auth.ts';
import { LOOPBACK, formatAddress, parseAddress } from './address.ts';
import { listenLocal, localHostKey, localLinksEnabled, localPathFor, splitLocal, withLocal } from './local.ts';
import { FrameType, ProtocolError, emptyHeader, encodeHeader, type FrameHeader } from './frame.ts';
import { Framer, type FrameHandler } from './framer.ts';
import { HandshakeChannel, MAX_HANDSHAKE_FRAME, withTimeout } from './handshake-io.ts';
import { LinkBase } from './link.ts';
import { OnReadParser } from './reader.ts';
import { DEFAULTS, type Link, type Transport, type TransportOptions } from './types.ts';

/** Bytes queued in user space before a sender waits for 'drain'. */
const HIGH_WATER = 8 * 1024 * 1024;
/** After an orderly close, sockets the peer has not closed are destroyed after this long. */
const LINGER_MS = 5000;

/** How a socket is read: with onread straight into posted buffers, or with 'data' events + Framer. */
type Input = { sock: net.Socket; parser: OnReadParser } | { sock: net.Socket; framer: Framer };

export class TcpLink extends LinkBase {
  readonly transport = 'tcp' as const;
  /** 'unix' when the connections are Unix-domain sockets (same-host link, local.ts; they have no remote port), else 'tcp'. */
  readonly medium: 'unix' | 'tcp';
  /** The socket frames are written to. */
  readonly socket: net.Socket;
  private readonly inputs: Input[];
  private readonly dual: boolean;

  /**
   * `write` carries our frames; `read` carries the peer's (the same socket
   * for single-connection links). In a pair, frames arriving on `write` are
   * processed too (a peer never sends any; a misbehaving one is parsed and refused).
   */
  constructor(write: net.Socket, read: Input, extra: Input | null, localRank: number, peerRank: number, opts: TransportOptions) {
    super(localRank, peerRank, opts.sink, opts);
    this.socket = write;
    this.medium = write.remotePort === undefined && read.sock.remotePort === undefined ? 'unix' : 'tcp';
    this.dual = read.sock !== write;
    this.inputs = extra ? [read, extra] : [read];
    const handler: FrameHandler = {
      begin: (h) => this.beginFrame(h),
      end: (h, b) => {
        this.endFrame(h, b);
        return !this.closed;
      },
    };
    for (const input of this.inputs) {
      const s = input.sock;
      this.watchConnection(s, this.dual && s === write);
      if ('parser' in input) {
        input.parser.onActivity = () => this.touch();
        input.parser.onError = (e) => this.protocolFailure(e);
        input.parser.setHandler(handler, this.maxFrame);
        if (!this.closed) s.resume();
      } else {
        const framer = input.framer;
        framer.setHandler(handler, this.maxFrame);
        s.on('data', (chunk: Buffer) => {
          if (this.closed) return;
          this.touch();
          try {
            framer.push(chunk);
          } catch (e) {
            this.protocolFailure(e);
          }
        });
        s.resume();
      }
    }
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
    this.inputs[0]!.sock.pause();
  }
  protected resumeInput(): void {
    this.inputs[0]!.sock.resume();
  }
  protected teardown(graceful: boolean): void {
    const socks = [...new Set([this.socket, ...this.inputs.map((i) => i.sock)])];
    if (!graceful) {
      for (const s of socks) s.destroy();
      return;
    }
    // Our Bye (queued) then FIN on the write side. The read side stays open
    // until the peer has seen the Bye and closes it, so its own 'end' can
    // never overtake the Bye; it is read (and dropped) to that end, so the
    // close completes as soon as the peer's does. Anything left after LINGER_MS is destroyed.
    this.socket.end();
    for (const i of this.inputs) {
      if (!('parser' in i) || i.sock.destroyed) continue;
      i.parser.dropRest();
      // The parser's last read returned false, which stopped the handle without
      // pausing the stream: pause first so resume() really restarts reading.
      i.sock.pause();
      i.sock.resume();
    }
    const t = setTimeout(() => socks.forEach((s) => s.destroy()), LINGER_MS);
    t.unref();
  }
}

type Side = 'accept' | 'connect';
type AuthOpts = TransportOptions & { purpose: Purpose; replay: ReplayGuard; expectPeerRank?: number };

function runHandshake(ch: HandshakeChannel, side: Side, opts: AuthOpts): Promise<{ peerRank: number }> {
  const cfg = { secret: opts.secret, localRank: opts.rank, purpose: opts.purpose };
  const run = side === 'accept' ? acceptHandshake(ch, { ...cfg, replay: opts.replay }) : connectHandshake(ch, { ...cfg, expectPeerRank: opts.expectPeerRank });
  return withTimeout(run, opts.handshakeMs ?? DEFAULTS.handshakeMs, 'handshake');
}

/** Runs the HMAC handshake on an accepted socket ('data' events); resolves with the framer primed for the link. */
export async function authenticateSocket(socket: net.Socket, side: Side, opts: AuthOpts): Promise<{ peerRank: number; framer: Framer }> {
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
    const { peerRank } = await runHandshake(ch, side, opts);
    return { peerRank, framer };
  } finally {
    // Hold further bytes in the kernel until the link attaches its own reader.
    socket.pause();
    socket.off('data', onData);
    socket.off('close', onGone);
    socket.off('error', onError);
  }
}

/** Opens a socket read with `onread`: over the peer's same-host endpoint when `local` allows and it has one here, else TCP. */
async function open(address: string, local: boolean, onread: OnReadParser['onread']): Promise<net.Socket> {
  const connected = (socket: net.Socket) =>
    new Promise<net.Socket>((resolve, reject) => {
      socket.once('connect', () => resolve(socket));
      socket.once('error', (e) => {
        socket.destroy();
        reject(e);
      });
    });
  const path = local ? localPathFor(address) : null;
  if (path !== null) {
    // A peer that stopped listening there (or a namespace mix-up) still has its TCP address.
    try {
      return await connected(net.connect({ path, onread }));
    } catch {}
  }
  const { host, port } = parseAddress(splitLocal(address).tcp);
  return connected(net.connect({ host, port, noDelay: true, onread }));
}

/** Opens a connection read with `onread` and authenticates as the connector. */
async function dial(address: string, opts: AuthOpts, local: boolean): Promise<{ socket: net.Socket; parser: OnReadParser; peerRank: number }> {
  // The handshake channel needs the socket to write; the parser must exist before connect.
  let socket!: net.Socket;
  const ch = new HandshakeChannel((b) => socket.write(b), 2);
  const parser = new OnReadParser(MAX_HANDSHAKE_FRAME, ch);
  parser.onError = (e) => ch.fail(e as Error);
  socket = await open(address, local, parser.onread);
  const onGone = () => ch.fail(new Error('connection closed during the handshake'));
  const onError = (e: Error) => ch.fail(e);
  socket.on('error', () => {});
  socket.on('close', onGone);
  socket.on('error', onError);
  try {
    const { peerRank } = await runHandshake(ch, 'connect', opts);
    return { socket, parser, peerRank };
  } catch (e) {
    socket.destroy();
    throw e;
  } finally {
    // The parser stopped after the last handshake frame (the socket is paused); the link resumes it.
    socket.pause();
    socket.off('close', onGone);
    socket.off('error', onError);
  }
}

/** First frame on a pair's connection after the handshake: which half it is. */
interface OpenMsg {
  t: 'open';
  dir: 'fwd' | 'rev';
  /** fwd: where the acceptor connects back to. */
  addr?: string;
}

function writeControl(socket: net.Socket, body: unknown): void {
  const p = pack(body);
  const h = emptyHeader(FrameType.Control);
  h.length = h.total = p.length;
  socket.cork();
  socket.write(encodeHeader(h));
  socket.write(p);
  socket.uncork();
}

/** Reads the open message on an accepted, authenticated socket (Framer primed by the handshake). */
function readOpen(socket: net.Socket, framer: Framer, ms: number): Promise<OpenMsg> {
  let settle!: { resolve: (m: OpenMsg) => void; reject: (e: Error) => void };
  const got = new Promise<OpenMsg>((resolve, reject) => (settle = { resolve, reject }));
  const onData = (chunk: Buffer) => {
    try {
      framer.push(chunk);
    } catch (e) {
      settle.reject(e as Error);
    }
  };
  const onGone = () => settle.reject(new Error('connection closed before the link opened'));
  framer.setHandler(
    {
      begin: (h: FrameHeader) => {
        if (h.type !== FrameType.Control || h.length > MAX_HANDSHAKE_FRAME) throw new ProtocolError(`expected the link's open message, got a ${FrameType[h.type] ?? h.type} frame of ${h.length} bytes`);
        return Buffer.allocUnsafe(h.length);
      },
      end: (_h, b) => {
        let m: unknown;
        try {
          m = unpack(b ?? new Uint8Array(0));
        } catch {
          throw new ProtocolError('malformed open message (not msgpack)');
        }
        const o = m as Partial<OpenMsg>;
        if (o?.t !== 'open' || (o.dir !== 'fwd' && o.dir !== 'rev') || (o.dir === 'fwd' && typeof o.addr !== 'string')) throw new ProtocolError('malformed open message');
        settle.resolve(o as OpenMsg);
        return false;
      },
    },
    MAX_HANDSHAKE_FRAME,
  );
  socket.on('data', onData);
  socket.on('close', onGone);
  socket.resume();
  return withTimeout(got, ms, 'link open').finally(() => {
    socket.pause();
    socket.off('data', onData);
    socket.off('close', onGone);
  });
}

export interface TcpTransportOptions extends TransportOptions {
  /** 'peer' for rank links, 'store' for the rendezvous store. */
  purpose?: Purpose;
  /** Port to listen on (0 = any free port). */
  port?: number;
  /** One connection per direction, each read with onread (default: true for peer links). */
  dual?: boolean;
}

export class TcpTransport extends EventEmitter implements Transport {
  readonly name = 'tcp' as const;
  private server: net.Server | null = null;
  private localServer: net.Server | null = null;
  private address: string | null = null;
  private onLink: ((link: Link) => void) | null = null;
  private readonly links = new Set<Link>();
  private readonly replay = new ReplayGuard();
  private readonly purpose: Purpose;
  private readonly dual: boolean;
  /** Connects waiting for the peer's connection back (pairs). */
  private readonly awaitingRev = new Map<number, { resolve: (s: { socket: net.Socket; framer: Framer }) => void; reject: (e: Error) => void }>();
  private readonly pending = new Set<net.Socket>();
  /** Peer links between ranks of one host and network namespace go over Unix sockets (local.ts). */
  private readonly local: boolean;

  constructor(private readonly opts: TcpTransportOptions) {
    super();
    this.purpose = opts.purpose ?? 'peer';
    this.dual = opts.dual ?? this.purpose === 'peer';
    this.local = this.purpose === 'peer' && localLinksEnabled(opts.localLinks) && localHostKey() !== null;
  }

  private get authOpts(): AuthOpts {
    return { ...this.opts, purpose: this.purpose, replay: this.replay };
  }
  private get handshakeMs(): number {
    return this.opts.handshakeMs ?? DEFAULTS.handshakeMs;
  }

  private track(link: Link): Link {
    this.links.add(link);
    link.once('close', () => this.links.delete(link));
    return link;
  }

  listen(onLink: (link: Link) => void): Promise<string> {
    this.onLink = onLink;
    return this.startServer();
  }

  private startServer(unref = false): Promise<string> {
    const host = this.opts.host ?? LOOPBACK;
    const server = net.createServer({ noDelay: true });
    this.server = server;
    if (unref) server.unref();
    server.on('connection', (socket) => this.onConnection(socket));
    const tcp = new Promise<string>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port ?? 0, host, () => {
        server.off('error', reject);
        const a = server.address() as net.AddressInfo;
        resolve(formatAddress(host, a.port));
      });
    });
    return tcp.then(async (addr) => {
      this.address = withLocal(addr, this.local ? await this.startLocalServer(unref) : null);
      return this.address;
    });
  }

  /** The same-host endpoint (local.ts): an abstract Unix socket accepting exactly like the TCP listener; null if it cannot bind. */
  private async startLocalServer(unref: boolean): Promise<{ key: string; name: string } | null> {
    const server = net.createServer();
    if (unref) server.unref();
    server.on('connection', (socket) => this.onConnection(socket));
    const endpoint = await listenLocal(server, this.opts.log);
    if (endpoint) this.localServer = server;
    return endpoint;
  }

  private onConnection(socket: net.Socket): void {
    const remote = socket.remoteAddress === undefined ? 'a same-host socket' : formatAddress(socket.remoteAddress, socket.remotePort ?? 0);
    socket.on('error', () => {});
    this.pending.add(socket);
    socket.once('close', () => this.pending.delete(socket));
    this.accept(socket).then(
      (link) => {
        this.pending.delete(socket);
        if (link) this.onLink?.(this.track(link));
      },
      (err: Error) => {
        const reason = `rejected ${this.purpose} connection from ${remote}: ${err.message}`;
        this.opts.log?.(reason);
        this.emit('reject', reason, remote);
        socket.destroy();
      },
    );
  }

  /** Authenticates an accepted socket; returns a link, or null when it completes a connect() of ours. */
  private async accept(socket: net.Socket): Promise<Link | null> {
    const { peerRank, framer } = await authenticateSocket(socket, 'accept', this.authOpts);
    if (socket.destroyed) throw new Error('connection closed after the handshake');
    if (!this.dual) return new TcpLink(socket, { sock: socket, framer }, null, this.opts.rank, peerRank, this.opts);
    const open = await readOpen(socket, framer, this.handshakeMs);
    if (open.dir === 'rev') {
      const w = this.awaitingRev.get(peerRank);
      if (!w) throw new ProtocolError(`rank ${peerRank} opened a return connection nobody asked for`);
      this.awaitingRev.delete(peerRank);
      w.resolve({ socket, framer });
      return null;
    }
    if (!this.onLink) throw new ProtocolError(`rank ${peerRank} connected, but this rank only connects out`);
    // Connect back: the connection we read the peer's frames from.
    const back = await dial(open.addr!, { ...this.authOpts, expectPeerRank: peerRank }, this.local).catch((e: Error) => {
      throw new Error(`cannot open the return connection to rank ${peerRank} at ${open.addr}: ${e.message}`);
    });
    if (socket.destroyed) {
      back.socket.destroy();
      throw new Error('connection closed while opening the return connection');
    }
    writeControl(back.socket, { t: 'open', dir: 'rev' } satisfies OpenMsg);
    return new TcpLink(socket, { sock: back.socket, parser: back.parser }, { sock: socket, framer }, this.opts.rank, peerRank, this.opts);
  }

  async connect(address: string, peerRank: number): Promise<Link> {
    const fail = (e: unknown) => new Error(`cannot connect to rank ${peerRank} at ${address}: ${(e as Error).message}`);
    if (this.dual && !this.server) await this.startServer(true); // somewhere for the peer to connect back to
    let r: Awaited<ReturnType<typeof dial>>;
    try {
      r = await dial(address, { ...this.authOpts, expectPeerRank: peerRank < 0 ? undefined : peerRank }, this.local);
    } catch (e) {
      throw fail(e);
    }
    const { socket, parser, peerRank: got } = r;
    if (!this.dual) return this.track(new TcpLink(socket, { sock: socket, parser }, null, this.opts.rank, got, this.opts));
    try {
      const back = new Promise<{ socket: net.Socket; framer: Framer }>((resolve, reject) => {
        if (this.awaitingRev.has(got)) reject(new Error(`already connecting to rank ${got}`));
        else this.awaitingRev.set(got, { resolve, reject });
      });
      const onGone = () => this.awaitingRev.get(got)?.reject(new Error('connection closed before the link opened'));
      socket.once('close', onGone);
      writeControl(socket, { t: 'open', dir: 'fwd', addr: this.address! } satisfies OpenMsg);
      const w = await withTimeout(back, this.handshakeMs, `return connection from rank ${got}`).finally(() => {
        this.awaitingRev.delete(got);
        socket.off('close', onGone);
      });
      return this.track(new TcpLink(w.socket, { sock: socket, parser }, { sock: w.socket, framer: w.framer }, this.opts.rank, got, this.opts));
    } catch (e) {
      socket.destroy();
      throw fail(e);
    }
  }

  async close(): Promise<void> {
    for (const l of [...this.links]) l.close();
    for (const w of this.awaitingRev.values()) w.reject(new Error('transport closed'));
    for (const s of this.pending) s.destroy();
    const servers = [this.server, this.localServer].filter((x): x is net.Server => x !== null);
    this.server = this.localServer = null;
    // Accepted sockets whose peer never closes them are destroyed by the links' linger timers.
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
