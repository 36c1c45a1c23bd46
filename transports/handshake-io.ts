// Adapts a frame stream to the HandshakeIO used by auth.ts: handshake frames
// are small msgpack bodies, queued until the handshake code asks for them.
import { FrameType, ProtocolError, emptyHeader, encodeHeader, type FrameHeader } from './frame.ts';
import { pack, unpack, type HandshakeIO } from './auth.ts';
import type { FrameHandler } from './framer.ts';

export const MAX_HANDSHAKE_FRAME = 4096;

export class HandshakeChannel implements HandshakeIO, FrameHandler {
  private queue: { type: FrameType; body: unknown }[] = [];
  private waiter: { resolve: (f: { type: FrameType; body: unknown }) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  private sentAuth = false;
  /** Frames expected before the stream switches to link mode. */
  private remaining: number;

  constructor(
    private readonly write: (frame: Buffer) => void,
    expectedFrames: number,
  ) {
    this.remaining = expectedFrames;
  }

  send(type: FrameType, body: unknown): void {
    if (type === FrameType.Auth) this.sentAuth = true;
    const p = pack(body);
    const h = emptyHeader(type);
    h.length = h.total = p.length;
    this.write(Buffer.concat([encodeHeader(h), p]));
  }

  receive(): Promise<{ type: FrameType; body: unknown }> {
    if (this.failure) return Promise.reject(this.failure);
    const f = this.queue.shift();
    if (f) return Promise.resolve(f);
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  fail(err: Error): void {
    // A listener that drops us right after our Auth did not accept our MAC.
    if (this.sentAuth && /closed during the handshake/.test(err.message)) {
      err = new Error(`the listener rejected our authentication (wrong job secret?): ${err.message}`);
    }
    this.failure ??= err;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(err);
  }

  begin(h: FrameHeader): Uint8Array | null {
    if (h.type !== FrameType.Challenge && h.type !== FrameType.Auth && h.type !== FrameType.AuthOk) {
      throw new ProtocolError(`${FrameType[h.type] ?? h.type} frame before authentication`);
    }
    if (h.length > MAX_HANDSHAKE_FRAME) throw new ProtocolError(`oversize handshake frame: ${h.length} bytes`);
    return Buffer.allocUnsafe(h.length);
  }

  end(h: FrameHeader, payload: Uint8Array | null): boolean {
    let body: unknown;
    try {
      body = unpack(payload ?? new Uint8Array(0));
    } catch {
      throw new ProtocolError('malformed handshake message (not msgpack)');
    }
    const f = { type: h.type, body };
    const w = this.waiter;
    this.waiter = null;
    if (w) w.resolve(f);
    else this.queue.push(f);
    // Stop parsing after the last handshake frame: what follows belongs to the link.
    return --this.remaining > 0;
  }
}

/** Rejects after `ms` unless `p` settles first. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new ProtocolError(`${what} timed out after ${ms} ms`)), ms);
      t.unref();
    }),
  ]).finally(() => clearTimeout(t));
}
