// Behaviour common to stream links (TCP, WebSocket, in-process): message
// fragmentation, frame dispatch to the sink, heartbeats and liveness, and the
// single 'close' event. Subclasses only move bytes.
import { EventEmitter } from 'node:events';
import { FrameType, HEADER_BYTES, ProtocolError, emptyHeader, encodeHeader, type FrameHeader } from './frame.ts';
import { pack, unpack } from './auth.ts';
import { DEFAULTS, LinkClosedError, type FrameSink, type Link, type LinkMedium, type MessageHeader, type TransportName, type TransportOptions } from './types.ts';

const MAX_CONTROL = 1 << 20;
/** The write-only connection of a pair went away: wait this long for the read side to say why (Bye, EOF). */
const GRACE_MS = 300;

export abstract class LinkBase extends EventEmitter implements Link {
  abstract readonly transport: TransportName;
  abstract readonly medium: LinkMedium;
  closed = false;
  protected readonly chunkBytes: number;
  protected readonly maxFrame: number;
  protected readonly log: (m: string) => void;
  private lastRecv = Date.now();
  private lastSend = Date.now();
  private paused = false;
  private timer: NodeJS.Timeout | undefined;
  private closeErr: Error | null = null;
  private graceTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly localRank: number,
    readonly peerRank: number,
    protected readonly sink: FrameSink,
    opts: TransportOptions,
  ) {
    super();
    this.maxFrame = opts.maxFrame ?? DEFAULTS.maxFrame;
    this.chunkBytes = Math.min(opts.chunkBytes ?? DEFAULTS.chunkBytes, this.maxFrame);
    this.log = opts.log ?? (() => {});
    const hb = opts.heartbeatMs ?? DEFAULTS.heartbeatMs;
    const live = opts.livenessMs ?? DEFAULTS.livenessMs;
    // Heartbeats keep the peer's liveness clock moving while we have nothing to send;
    // the check catches a peer that is stopped (SIGSTOP) or cut off without a FIN.
    this.timer = setInterval(() => {
      const now = Date.now();
      if (this.closed) return;
      if (!this.paused && now - this.lastRecv > live) {
        this.destroy(new LinkClosedError(this.peerRank, `rank ${this.peerRank} sent nothing for ${now - this.lastRecv} ms (liveness timeout ${live} ms): stopped, hung or unreachable`));
        return;
      }
      if (now - this.lastSend >= hb) this.sendFrame(emptyHeader(FrameType.Heartbeat), null);
    }, Math.max(10, Math.min(hb, live / 2)));
    this.timer.unref();
  }

  // ---- byte movers implemented by each transport ----
  /** Queue one frame; returns a promise resolved when it has been handed off (payload reusable). */
  protected abstract writeFrame(header: Buffer, payload: Uint8Array | null): Promise<void>;
  /** True while the outgoing queue is above its high-water mark. */
  protected abstract congested(): boolean;
  /** Resolves when the outgoing queue drains (or the link closes). */
  protected abstract drained(): Promise<void>;
  protected abstract pauseInput(): void;
  protected abstract resumeInput(): void;
  /** Ends the underlying connection; `graceful` lets queued bytes go first. */
  protected abstract teardown(graceful: boolean): void;

  // ---- sending ----
  private sendFrame(h: FrameHeader, payload: Uint8Array | null): Promise<void> {
    this.lastSend = Date.now();
    return this.writeFrame(encodeHeader(h), payload);
  }

  async send(m: MessageHeader, payload: Uint8Array): Promise<void> {
    if (this.closed) throw this.closedError();
    const total = payload.byteLength;
    if (total > 0xffffffff) throw new RangeError(`message of ${total} bytes exceeds the 4 GiB per-message limit`);
    let last: Promise<void> | undefined;
    let offset = 0;
    do {
      const length = Math.min(this.chunkBytes, total - offset);
      const h: FrameHeader = { ...m, total, offset, length };
      last = this.sendFrame(h, length > 0 ? payload.subarray(offset, offset + length) : null);
      offset += length;
      // Backpressure: never queue more than the transport's high-water mark.
      if (this.congested()) await this.drained();
      if (this.closed) throw this.closedError();
    } while (offset < total);
    await last;
  }

  sendControl(body: unknown): void {
    if (this.closed) return;
    const p = pack(body);
    const h = emptyHeader(FrameType.Control);
    h.length = h.total = p.length;
    this.sendFrame(h, p).catch(() => {});
  }

  // ---- receiving (called by subclasses) ----
  protected touch(): void {
    this.lastRecv = Date.now();
  }

  /**
   * Decides where the payload of `h` goes. Returns a buffer of exactly
   * h.length bytes (or null when there is no payload).
   */
  protected beginFrame(h: FrameHeader): Uint8Array | null {
    this.lastRecv = Date.now();
    switch (h.type) {
      case FrameType.Data:
      case FrameType.P2P:
        return this.sink.place(this, h);
      case FrameType.Control:
        if (h.length > MAX_CONTROL) throw new ProtocolError(`oversize control message: ${h.length} bytes`);
        return Buffer.allocUnsafe(h.length);
      case FrameType.Heartbeat:
      case FrameType.Credit:
      case FrameType.Bye:
        return null;
      default:
        throw new ProtocolError(`unexpected ${FrameType[h.type]} frame after the handshake`);
    }
  }

  protected endFrame(h: FrameHeader, buf: Uint8Array | null): void {
    switch (h.type) {
      case FrameType.Data:
      case FrameType.P2P:
        this.sink.arrived(this, h);
        return;
      case FrameType.Control: {
        let body: unknown;
        try {
          body = unpack(buf!);
        } catch {
          throw new ProtocolError('malformed control message (not msgpack)');
        }
        this.sink.control(this, body);
        return;
      }
      case FrameType.Bye:
        this.finish(null);
        return;
      default:
        return;
    }
  }

  /** A peer broke the protocol: log the reason and drop the connection; never throw. */
  protected protocolFailure(err: unknown): void {
    const msg = err instanceof Error ? err.message : String(err);
    this.log(`closing link to rank ${this.peerRank}: ${msg}`);
    this.destroy(new LinkClosedError(this.peerRank, `link to rank ${this.peerRank} closed: ${msg}`));
  }

  // ---- flow control hooks ----
  pause(): void {
    if (this.paused || this.closed) return;
    this.paused = true;
    this.pauseInput();
  }
  resume(): void {
    if (!this.paused || this.closed) return;
    this.paused = false;
    this.lastRecv = Date.now();
    this.resumeInput();
  }

  // ---- lifecycle ----
  close(reason = 'closed by local rank'): void {
    if (this.closed) return;
    this.sendFrame(emptyHeader(FrameType.Bye), null).catch(() => {});
    this.finish(null, reason);
  }

  destroy(err: Error): void {
    this.finish(err);
  }

  /**
   * Reports the link lost when `sock` closes, ends or fails; returns the
   * reporting function (for other signs, e.g. a WebSocket close frame). For
   * the write-only connection of a pair (`writeOnly`) that is only a hint:
   * the peer's Bye, or its death, shows on the read side in order with its
   * data, so the loss is reported after GRACE_MS unless the read side says first.
   */
  protected watchConnection(sock: EventEmitter, writeOnly: boolean): (detail: string) => void {
    const lost = (detail: string) => {
      if (this.closed) return;
      if (!writeOnly) return this.connectionLost(detail);
      this.graceTimer ??= setTimeout(() => this.connectionLost(detail), GRACE_MS);
      this.graceTimer.unref();
    };
    sock.on('close', () => lost('socket closed'));
    sock.on('end', () => lost('peer closed the connection'));
    sock.on('error', (e: Error) => lost(e.message));
    return lost;
  }

  /** Called by subclasses when the connection ends underneath us. */
  protected connectionLost(detail: string): void {
    if (this.closed) return;
    this.finish(new LinkClosedError(this.peerRank, `connection to rank ${this.peerRank} lost (${detail}): the rank died or disconnected`));
  }

  private finish(err: Error | null, _reason?: string): void {
    if (this.closed) return;
    this.closed = true;
    this.closeErr = err;
    clearInterval(this.timer);
    clearTimeout(this.graceTimer);
    this.teardown(err === null);
    this.emit('close', err);
  }

  protected closedError(): Error {
    return this.closeErr ?? new LinkClosedError(this.peerRank, `link to rank ${this.peerRank} is closed`);
  }
}

export { HEADER_BYTES };
