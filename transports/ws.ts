// WebSocket transport on `ws`: the same frame stream as TCP, one of our frames
// (header + payload) per binary WebSocket frame (wsframe.ts). `ws` does the
// upgrade; permessage-deflate is off on both sides; on trusted links the
// connector uses an all-zero mask, which the reader recognises and skips (no
// copy, no XOR); elsewhere bufferutil does the masking. A link is two
// connections, one per direction (WsLink). Ranks of one host and network
// namespace upgrade over an abstract Unix socket instead of loopback TCP,
// exactly as the tcp transport's same-host links do (local.ts); the WebSocket
// protocol on the connections is unchanged.
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { acceptHandshake, connectHandshake, ReplayGuard } from './auth.ts';
import { LOOPBACK, formatAddress, parseAddress } from './address.ts';
import { listenLocal, localHostKey, localLinksEnabled, localPathFor, splitLocal, withLocal } from './local.ts';
import { randomBytes } from 'node:crypto';
import { FrameType, HEADER_BYTES, ProtocolError, emptyHeader, encodeHeader } from './frame.ts';
import { Framer } from './framer.ts';
import { HandshakeChannel, MAX_HANDSHAKE_FRAME, withTimeout } from './handshake-io.ts';
import { LinkBase } from './link.ts';
import { OP_BINARY, OP_CLOSE, OP_PONG, WsFrameReader, maskedCopy, wsHeader } from './wsframe.ts';
import { DEFAULTS, type Link, type Transport, type TransportOptions } from './types.ts';

const HIGH_WATER = 8 * 1024 * 1024;
const zeroMask = (mask: Buffer) => mask.fill(0);

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

function feed(framer: Framer, data: WebSocket.RawData): void {
  if (Array.isArray(data)) for (const b of data) framer.push(b);
  else framer.push(Buffer.isBuffer(data) ? data : Buffer.from(data));
}

/**
 * Makes an existing socket read with `onread` semantics (the kernel copies
 * into buffers we pick), as net.connect({ onread }) does for sockets Node
 * creates. Node only exposes that option at construction; the socket here was
 * created by the HTTP server or client, so this sets the same internal fields
 * the constructor would and hands the first buffer to the handle. Returns
 * false (the caller then reads 'data' events) if this Node lacks them.
 */
function installOnread(sock: Socket, onread: { buffer: () => Uint8Array; callback: (n: number, buf: Uint8Array) => boolean }): boolean {
  const syms = Object.getOwnPropertySymbols(sock);
  const sym = (d: string) => syms.find((x) => x.description === d);
  const kBuffer = sym('kBuffer');
  const kBufferCb = sym('kBufferCb');
  const kBufferGen = sym('kBufferGen');
  const handle = (sock as unknown as { _handle?: { useUserBuffer?: (b: Uint8Array) => void } })._handle;
  if (!kBuffer || !kBufferCb || !kBufferGen || typeof handle?.useUserBuffer !== 'function') return false;
  const rec = sock as unknown as Record<symbol, unknown>;
  const first = onread.buffer();
  rec[kBuffer] = first;
  rec[kBufferGen] = onread.buffer;
  rec[kBufferCb] = onread.callback;
  handle.useUserBuffer(first);
  return true;
}

/**
 * Takes the socket away from `ws` after the handshake: its listeners go, and
 * bytes already read into the socket (none in the protocol below) are returned.
 */
function takeSocket(ws: WebSocket): { sock: Socket; held: Buffer[] } {
  const sock = (ws as unknown as { _socket?: Socket })._socket;
  if (!sock) throw new Error('websocket has no socket');
  for (const ev of ['data', 'end', 'close', 'error', 'drain', 'timeout']) {
    for (const l of sock.listeners(ev)) if (/^socketOn/.test((l as { name?: string }).name ?? '')) sock.removeListener(ev, l as (...a: unknown[]) => void);
  }
  sock.pause();
  const held: Buffer[] = [];
  for (let c: Buffer | null; (c = sock.read() as Buffer | null) !== null; ) held.push(c);
  return { sock, held };
}

const ZERO_KEY = Buffer.alloc(4);
const LINGER_MS = 5000;

/** One authenticated WebSocket of a link, with the handshake's framer (to check nothing was read past it). */
export interface WsHalf {
  ws: WebSocket;
  framer: Framer;
}

/**
 * A link is two WebSocket connections, both opened by the connecting rank:
 * `fwd` carries the connector's frames, `rev` the acceptor's, so each
 * socket streams bulk data one way (as the tcp transport's pairs do). One
 * connection carrying both directions stalled over loopback TCP: the receive
 * queue of a socket that is also sending bulk data overflowed (nstat:
 * TcpExtRcvPruned, TCPRcvQDrop) and the dropped segments waited for a
 * 200 ms retransmission timeout, in 4 of 9 runs of 64 MiB all-reduces.
 *
 * After the `ws` handshakes and our HMAC exchange, the link owns both sockets
 * (see wsframe.ts). To hand over cleanly, the accepting side sends nothing on
 * `rev` until the connecting side's first frame on it (a heartbeat sent as
 * soon as it owns the socket) has arrived, so neither side's `ws` can have
 * read link bytes before the link took the socket.
 */
export class WsLink extends LinkBase {
  readonly transport = 'ws' as const;
  /** 'unix' over same-host sockets (local.ts; they have no remote port), else 'tcp'. */
  readonly medium: 'unix' | 'tcp';
  /** The connection our frames are written to (owned by the link after the handshake). */
  readonly socket: Socket;
  /** The connection the peer's frames arrive on. */
  private readonly rxSocket: Socket;
  private readonly client: boolean;
  /** Client frames: masked; the key is zero on trusted links (no XOR on either side). */
  private readonly zeroMask: boolean;
  private open: boolean;
  private openGate!: () => void;
  private readonly ready: Promise<void>;
  private readers: WsFrameReader[] = [];

  /** `tx`/`rx`: the connections this side writes and reads (connector: fwd/rev; acceptor: rev/fwd). */
  constructor(tx: WsHalf, rx: WsHalf, side: 'accept' | 'connect', trusted: boolean, localRank: number, peerRank: number, opts: TransportOptions) {
    super(localRank, peerRank, opts.sink, opts);
    this.client = side === 'connect';
    this.zeroMask = trusted;
    this.open = this.client;
    this.ready = this.open ? Promise.resolve() : new Promise<void>((r) => (this.openGate = r));
    const txs = takeSocket(tx.ws);
    const rxs = takeSocket(rx.ws);
    this.socket = txs.sock;
    this.rxSocket = rxs.sock;
    this.medium = txs.sock.remotePort === undefined ? 'unix' : 'tcp';
    if (tx.framer.hasBacklog || rx.framer.hasBacklog) {
      queueMicrotask(() => this.protocolFailure(new ProtocolError('data arrived before the link took over the connection')));
      return;
    }
    const started = [this.attach(rxs, false), this.attach(txs, true)];
    if (started.includes(false)) return;
    // The connector owns both sockets now: tell the acceptor on each (its gate for rev).
    if (this.client) {
      for (const s of [this.socket, this.rxSocket]) this.writeOn(s, encodeHeader(emptyHeader(FrameType.Heartbeat)), null).catch(() => {});
    }
    if (!this.closed) for (const s of [this.rxSocket, this.socket]) s.resume();
  }

  /** Reads one of the link's sockets; frames on the write side (a heartbeat, control frames) are parsed too. Returns false if the link closed. */
  private attach({ sock, held }: { sock: Socket; held: Buffer[] }, isTx: boolean): boolean {
    sock.setNoDelay(true);
    const lost = this.watchConnection(sock, isTx);
    const reader = new WsFrameReader(
      this.maxFrame,
      {
        begin: (h) => {
          if (isTx && !this.open) {
            this.open = true;
            this.openGate();
          }
          return this.beginFrame(h);
        },
        end: (h, b) => {
          this.endFrame(h, b);
          return !this.closed;
        },
      },
      !this.client,
      {
        ping: (p) => this.writeControlFrame(OP_PONG, p),
        close: (code, reason) => lost(`websocket closed, code ${code}${reason ? ` "${reason}"` : ''}`),
      },
    );
    this.readers.push(reader);
    reader.onActivity = () => this.touch();
    reader.onError = (e) => this.protocolFailure(e);
    const inPlace = installOnread(sock, reader.onread);
    if (!inPlace) sock.on('data', (c: Buffer) => !this.closed && reader.feed(c));
    for (const c of held) if (!reader.feed(c)) return false;
    return !this.closed;
  }

  private key(): Buffer | null {
    if (!this.client) return null;
    return this.zeroMask ? ZERO_KEY : randomBytes(4);
  }

  private writeControlFrame(op: number, payload: Uint8Array): void {
    const s = this.socket;
    if (s.destroyed || !s.writable) return;
    const key = this.key();
    const p = key && !this.zeroMask ? maskedCopy(payload, key, 0) : payload;
    s.cork();
    s.write(wsHeader(op, p.length, key));
    if (p.length) s.write(p);
    s.uncork();
  }

  protected writeFrame(header: Buffer, payload: Uint8Array | null): Promise<void> {
    if (!this.open) return this.ready.then(() => (this.closed ? undefined : this.writeFrame(header, payload)));
    return this.writeOn(this.socket, header, payload);
  }

  private writeOn(s: Socket, header: Buffer, payload: Uint8Array | null): Promise<void> {
    return new Promise((resolve) => {
      if (s.destroyed || !s.writable) return resolve();
      const key = this.key();
      let h: Uint8Array = header;
      let p = payload;
      if (key && !this.zeroMask) {
        h = maskedCopy(header, key, 0);
        if (p) p = maskedCopy(p, key, HEADER_BYTES);
      }
      // WebSocket header, frame header and payload leave in one writev (no copy).
      s.cork();
      s.write(wsHeader(OP_BINARY, HEADER_BYTES + (p?.length ?? 0), key));
      if (p) {
        s.write(h);
        s.write(p, () => resolve());
      } else {
        s.write(h, () => resolve());
      }
      s.uncork();
    });
  }
  protected congested(): boolean {
    return !this.open || this.socket.writableLength > HIGH_WATER;
  }
  private drainWait: Promise<void> | null = null;
  protected drained(): Promise<void> {
    if (!this.open) return this.ready;
    const raw = this.socket;
    this.drainWait ??= new Promise<void>((resolve) => {
      const done = () => {
        raw.off('drain', done);
        raw.off('close', done);
        this.drainWait = null;
        resolve();
      };
      raw.on('drain', done);
      raw.on('close', done);
    });
    return this.drainWait;
  }
  protected pauseInput(): void {
    this.rxSocket.pause();
  }
  protected resumeInput(): void {
    this.rxSocket.resume();
  }
  protected teardown(graceful: boolean): void {
    if (!this.open) this.openGate?.();
    const socks = [this.socket, this.rxSocket];
    if (!graceful) {
      for (const s of socks) s.destroy();
      return;
    }
    // Our Bye (queued by the caller), a close frame, then FIN on the write
    // side. Both sockets keep reading (and dropping) to the peer's FIN, which
    // is answered with ours, so they close as soon as the peer has seen our
    // Bye; a peer that never closes is cut off after LINGER_MS.
    const reason = Buffer.from([0x03, 0xe8, ...Buffer.from('bye')]);
    this.writeControlFrame(OP_CLOSE, reason);
    this.socket.end();
    for (const r of this.readers) r.discardRest();
    for (const s of socks) {
      if (s.destroyed) continue;
      s.once('end', () => s.end());
      s.pause();
      s.resume();
    }
    const t = setTimeout(() => socks.forEach((s) => s.destroy()), LINGER_MS);
    t.unref();
  }
}

export async function authenticateWs(
  ws: WebSocket,
  side: 'accept' | 'connect',
  opts: TransportOptions & { replay: ReplayGuard; expectPeerRank?: number },
): Promise<{ peerRank: number; framer: Framer }> {
  ws.binaryType = 'fragments';
  // Handshake frames travel as one message each (header + msgpack body).
  const ch = new HandshakeChannel((b) => ws.send(b, { binary: true }), side === 'accept' ? 1 : 2);
  const framer = new Framer(MAX_HANDSHAKE_FRAME, ch);
  const onMsg = (data: WebSocket.RawData) => {
    try {
      feed(framer, data);
    } catch (e) {
      ch.fail(e as Error);
    }
  };
  const onClose = (code: number) => ch.fail(new Error(`websocket closed during the handshake (code ${code})`));
  const onError = (e: Error) => ch.fail(e);
  ws.on('message', onMsg);
  ws.on('close', onClose);
  ws.on('error', onError);
  try {
    const cfg = { secret: opts.secret, localRank: opts.rank, purpose: 'peer' as const };
    const run = side === 'accept' ? acceptHandshake(ch, { ...cfg, replay: opts.replay }) : connectHandshake(ch, { ...cfg, expectPeerRank: opts.expectPeerRank });
    const { peerRank } = await withTimeout(run, opts.handshakeMs ?? DEFAULTS.handshakeMs, 'handshake');
    return { peerRank, framer };
  } finally {
    ws.pause();
    ws.off('message', onMsg);
    ws.off('close', onClose);
    ws.off('error', onError);
  }
}

/** Answers plain HTTP requests on a peer listener: only upgrades are served. */
function upgradeOnly(_req: IncomingMessage, res: import('node:http').ServerResponse): void {
  res.writeHead(426, { 'content-type': 'text/plain' });
  res.end('webomni peer endpoint: WebSocket upgrades only\n');
}

/** Which half of a link a connection is, from its upgrade request: `/link?dir=fwd|rev&pair=<16 hex>`. */
function halfOf(url: string | undefined): { dir: 'fwd' | 'rev'; pair: string } | null {
  const m = /^\/link\?dir=(fwd|rev)&pair=([0-9a-f]{16})$/.exec(url ?? '');
  return m ? { dir: m[1] as 'fwd' | 'rev', pair: m[2]! } : null;
}

export class WsTransport extends EventEmitter implements Transport {
  readonly name = 'ws' as const;
  private wss: WebSocketServer | null = null;
  /** The TCP listener and, when same-host links are on, the abstract-socket one. */
  private servers: Server[] = [];
  private readonly links = new Set<Link>();
  private readonly replay = new ReplayGuard();
  /** Peer links between ranks of one host and network namespace go over Unix sockets (local.ts). */
  private readonly local: boolean;
  /** Accepted halves waiting for the other half of their link, by `${peerRank}|${pair}`. */
  private readonly halves = new Map<string, { half: WsHalf; dir: 'fwd' | 'rev'; timer: NodeJS.Timeout }>();

  constructor(private readonly opts: TransportOptions) {
    super();
    this.local = localLinksEnabled(opts.localLinks) && localHostKey() !== null;
  }

  private get maxPayload(): number {
    return (this.opts.maxFrame ?? DEFAULTS.maxFrame) + HEADER_BYTES;
  }

  private track(link: Link): Link {
    this.links.add(link);
    link.once('close', () => this.links.delete(link));
    return link;
  }

  /** An HTTP server that hands every upgrade request to the WebSocket server. */
  private httpServer(wss: WebSocketServer): Server {
    const server = createServer(upgradeOnly);
    server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)));
    this.servers.push(server);
    return server;
  }

  async listen(onLink: (link: Link) => void): Promise<string> {
    const host = this.opts.host ?? LOOPBACK;
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: this.maxPayload, clientTracking: false });
    this.wss = wss;
    wss.on('connection', (ws, req) => {
      const remote = req.socket.remoteAddress === undefined ? 'a same-host socket' : formatAddress(req.socket.remoteAddress, req.socket.remotePort ?? 0);
      ws.on('error', () => {});
      const reject = (err: Error) => {
        const reason = `rejected peer connection from ${remote}: ${err.message}`;
        this.opts.log?.(reason);
        this.emit('reject', reason, remote);
        ws.terminate();
      };
      const half = halfOf(req.url);
      if (!half) return reject(new ProtocolError(`unexpected upgrade request "${(req.url ?? '').slice(0, 100)}" (expected /link?dir=fwd|rev&pair=…)`));
      authenticateWs(ws, 'accept', { ...this.opts, replay: this.replay })
        .then(({ peerRank, framer }) => {
          const link = this.pairHalf({ ws, framer }, half, peerRank, reject);
          if (link) onLink(this.track(link));
        })
        .catch(reject);
    });
    const tcp = this.httpServer(wss);
    const port = await new Promise<number>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(0, host, () => {
        tcp.off('error', reject);
        resolve((tcp.address() as { port: number }).port);
      });
    });
    return withLocal(`ws://${formatAddress(host, port)}/`, this.local ? await this.listenLocal(wss) : null);
  }

  /**
   * An authenticated half of a link from `peerRank`: held until the other
   * half (same pair nonce) arrives, then the link, or null while waiting.
   * A half left alone past the handshake timeout, or a second half of the
   * same direction, is refused through `reject`.
   */
  private pairHalf(mine: WsHalf, half: { dir: 'fwd' | 'rev'; pair: string }, peerRank: number, reject: (e: Error) => void): WsLink | null {
    const key = `${peerRank}|${half.pair}`;
    const other = this.halves.get(key);
    if (!other) {
      const ms = this.opts.handshakeMs ?? DEFAULTS.handshakeMs;
      const timer = setTimeout(() => {
        if (this.halves.get(key)?.half !== mine) return;
        this.halves.delete(key);
        reject(new Error(`rank ${peerRank} opened one connection of a link but not the other within ${ms} ms`));
      }, ms);
      timer.unref();
      this.halves.set(key, { half: mine, dir: half.dir, timer });
      mine.ws.once('close', () => {
        if (this.halves.get(key)?.half !== mine) return;
        clearTimeout(timer);
        this.halves.delete(key);
      });
      return null;
    }
    this.halves.delete(key);
    clearTimeout(other.timer);
    if (other.dir === half.dir) {
      other.half.ws.terminate();
      reject(new ProtocolError(`rank ${peerRank} opened two ${half.dir} connections for one link`));
      return null;
    }
    const [fwd, rev] = half.dir === 'fwd' ? [mine, other.half] : [other.half, mine];
    // The acceptor writes on rev and reads fwd.
    return new WsLink(rev, fwd, 'accept', false, this.opts.rank, peerRank, this.opts);
  }

  /** The same-host endpoint (local.ts), or null (peers then use TCP) if it cannot bind. */
  private async listenLocal(wss: WebSocketServer): Promise<{ key: string; name: string } | null> {
    const server = this.httpServer(wss);
    const endpoint = await listenLocal(server, this.opts.log);
    if (!endpoint) this.servers = this.servers.filter((x) => x !== server);
    return endpoint;
  }

  async connect(address: string, peerRank: number): Promise<Link> {
    const path = this.local ? localPathFor(address) : null;
    if (path !== null) {
      // A peer that stopped listening there (or a namespace mix-up) still has its TCP address.
      const link = await this.dial(address, peerRank, path).catch((e: Error & { beforeOpen?: boolean }) => {
        if (e.beforeOpen) return null;
        throw e;
      });
      if (link) return link;
    }
    return this.dial(address, peerRank, null);
  }

  /** Opens both connections of a link to the peer (over `path`, a same-host socket, when given), each authenticated. */
  private async dial(address: string, peerRank: number, path: string | null): Promise<Link> {
    const { host, port } = parseAddress(splitLocal(address).tcp);
    const trusted = this.opts.trustedLink ?? (path !== null || isLoopback(host));
    const pair = randomBytes(8).toString('hex');
    const fail = (e: unknown) => new Error(`cannot connect to rank ${peerRank} at ${address}: ${(e as Error).message}`);
    const open = async (dir: 'fwd' | 'rev', expect: number) => {
      const ws = new WebSocket(`ws://${formatAddress(host, port)}/link?dir=${dir}&pair=${pair}`, {
        perMessageDeflate: false,
        maxPayload: this.maxPayload,
        ...(trusted ? { generateMask: zeroMask } : {}),
        ...(path !== null ? { createConnection: () => netConnect({ path }) } : {}),
      });
      // Listen for the challenge before 'open': it can arrive in the same packet
      // as the HTTP upgrade response and be emitted before an awaited 'open' resumes us.
      const auth = authenticateWs(ws, 'connect', { ...this.opts, replay: this.replay, expectPeerRank: expect < 0 ? undefined : expect });
      auth.catch(() => {});
      try {
        await new Promise<void>((resolve, reject) => {
          ws.once('open', resolve);
          ws.once('error', reject);
        });
      } catch (e) {
        throw Object.assign(fail(e), { beforeOpen: true });
      }
      ws.on('error', () => {});
      try {
        const { framer, peerRank: got } = await auth;
        return { half: { ws, framer } as WsHalf, got };
      } catch (e) {
        ws.terminate();
        throw fail(e);
      }
    };
    const fwd = await open('fwd', peerRank);
    let rev: Awaited<ReturnType<typeof open>>;
    try {
      rev = await open('rev', fwd.got);
    } catch (e) {
      fwd.half.ws.terminate();
      throw e;
    }
    return this.track(new WsLink(fwd.half, rev.half, 'connect', trusted, this.opts.rank, fwd.got, this.opts));
  }

  async close(): Promise<void> {
    for (const l of [...this.links]) l.close();
    for (const { half, timer } of this.halves.values()) {
      clearTimeout(timer);
      half.ws.terminate();
    }
    this.halves.clear();
    const servers = this.servers;
    this.servers = [];
    this.wss?.close();
    this.wss = null;
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
