// WebSocket transport on `ws`: the same frame stream as TCP, carried in binary
// WebSocket messages (a header message, then the payload as its own message so
// tensor bytes are never concatenated). permessage-deflate is off on both sides;
// on trusted links the connector uses an all-zero mask, which `ws` recognises
// and skips (no copy, no XOR); elsewhere bufferutil does the masking.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { acceptHandshake, connectHandshake, ReplayGuard } from './auth.ts';
import { LOOPBACK, formatAddress, parseAddress } from './address.ts';
import { HEADER_BYTES } from './frame.ts';
import { Framer } from './framer.ts';
import { HandshakeChannel, MAX_HANDSHAKE_FRAME, withTimeout } from './handshake-io.ts';
import { LinkBase } from './link.ts';
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

export class WsLink extends LinkBase {
  readonly transport = 'ws' as const;
  private readonly raw: Socket | undefined;
  constructor(
    private readonly ws: WebSocket,
    framer: Framer,
    localRank: number,
    peerRank: number,
    opts: TransportOptions,
  ) {
    super(localRank, peerRank, opts.sink, opts);
    // The underlying net.Socket gives us 'drain' for backpressure.
    this.raw = (ws as unknown as { _socket?: Socket })._socket;
    ws.on('close', (code, reason) => this.connectionLost(`websocket closed, code ${code}${reason.length ? ` "${reason}"` : ''}`));
    ws.on('error', (e) => {
      this.log(`websocket to rank ${peerRank}: ${e.message}`);
      this.connectionLost(e.message);
    });
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
    ws.on('message', (data) => {
      if (this.closed) return;
      this.touch();
      try {
        feed(framer, data);
      } catch (e) {
        this.protocolFailure(e);
      }
    });
    ws.resume();
  }

  protected writeFrame(header: Buffer, payload: Uint8Array | null): Promise<void> {
    return new Promise((resolve) => {
      if (this.ws.readyState !== WebSocket.OPEN) return resolve();
      const done = () => resolve();
      if (payload === null) {
        this.ws.send(header, { binary: true }, done);
      } else {
        this.ws.send(header, { binary: true });
        this.ws.send(payload, { binary: true }, done);
      }
    });
  }
  protected congested(): boolean {
    return this.ws.bufferedAmount > HIGH_WATER;
  }
  private drainWait: Promise<void> | null = null;
  protected drained(): Promise<void> {
    const raw = this.raw;
    if (!raw) return new Promise((r) => setImmediate(r));
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
    this.ws.pause();
  }
  protected resumeInput(): void {
    this.ws.resume();
  }
  protected teardown(graceful: boolean): void {
    if (graceful) this.ws.close(1000, 'bye');
    else this.ws.terminate();
  }
}

async function authenticateWs(
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

export class WsTransport extends EventEmitter implements Transport {
  readonly name = 'ws' as const;
  private server: WebSocketServer | null = null;
  private readonly links = new Set<Link>();
  private readonly replay = new ReplayGuard();

  constructor(private readonly opts: TransportOptions) {
    super();
  }

  private get maxPayload(): number {
    return (this.opts.maxFrame ?? DEFAULTS.maxFrame) + HEADER_BYTES;
  }

  private track(link: Link): Link {
    this.links.add(link);
    link.once('close', () => this.links.delete(link));
    return link;
  }

  listen(onLink: (link: Link) => void): Promise<string> {
    const host = this.opts.host ?? LOOPBACK;
    return new Promise((resolve, reject) => {
      const server = new WebSocketServer({ host, port: 0, perMessageDeflate: false, maxPayload: this.maxPayload, clientTracking: false });
      this.server = server;
      server.once('error', reject);
      server.on('listening', () => {
        server.off('error', reject);
        const a = server.address() as { port: number };
        resolve(`ws://${formatAddress(host, a.port)}/`);
      });
      server.on('connection', (ws, req) => {
        const remote = formatAddress(req.socket.remoteAddress ?? '?', req.socket.remotePort ?? 0);
        ws.on('error', () => {});
        authenticateWs(ws, 'accept', { ...this.opts, replay: this.replay }).then(
          ({ peerRank, framer }) => onLink(this.track(new WsLink(ws, framer, this.opts.rank, peerRank, this.opts))),
          (err: Error) => {
            const reason = `rejected peer connection from ${remote}: ${err.message}`;
            this.opts.log?.(reason);
            this.emit('reject', reason, remote);
            ws.terminate();
          },
        );
      });
    });
  }

  async connect(address: string, peerRank: number): Promise<Link> {
    const { host, port } = parseAddress(address);
    const trusted = this.opts.trustedLink ?? isLoopback(host);
    const ws = new WebSocket(`ws://${formatAddress(host, port)}/`, {
      perMessageDeflate: false,
      maxPayload: this.maxPayload,
      ...(trusted ? { generateMask: zeroMask } : {}),
    });
    // Listen for the challenge before 'open': it can arrive in the same packet
    // as the HTTP upgrade response and be emitted before an awaited 'open' resumes us.
    const auth = authenticateWs(ws, 'connect', { ...this.opts, replay: this.replay, expectPeerRank: peerRank < 0 ? undefined : peerRank });
    auth.catch(() => {});
    try {
      await new Promise<void>((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
    } catch (e) {
      throw new Error(`cannot connect to rank ${peerRank} at ${address}: ${(e as Error).message}`);
    }
    ws.on('error', () => {});
    try {
      const { framer, peerRank: got } = await auth;
      return this.track(new WsLink(ws, framer, this.opts.rank, got, this.opts));
    } catch (e) {
      ws.terminate();
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
