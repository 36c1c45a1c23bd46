// RFC 6455 framing for WebSocket links once the handshake is done. `ws` does
// the HTTP upgrade and carries the HMAC handshake; then the link reads and
// writes the socket itself, because `ws` hands over every message as a fresh
// Buffer (concatenated from the socket's reads), which the link then had to
// copy again into the receive the collective posted. Here:
//  - every WebSocket message is one binary frame (FIN set, opcode 2) holding
//    exactly one of our frames (40-byte header + payload), so the WebSocket
//    payload length and our header's length must agree;
//  - reads go through the same scheme as TCP's onread parser: a small staging
//    buffer while headers are expected, and, for a payload, the exact
//    unfilled range of its destination, so the kernel writes tensor bytes
//    where they belong;
//  - client-to-server frames are masked as RFC 6455 requires; on a trusted
//    link the key is all zero (XOR with it is the identity, so neither side
//    touches the bytes); otherwise a random key per frame, and the receiver
//    unmasks in place;
//  - ping is answered with pong, close ends the connection; text, continuation,
//    fragmented, reserved-bit, wrongly masked, oversize or inconsistent frames
//    are protocol errors: the caller closes the connection with the reason.
import { createRequire } from 'node:module';
import { HEADER_BYTES, ProtocolError, decodeHeader, type FrameHeader } from './frame.ts';
import type { FrameHandler } from './framer.ts';

type BufferUtil = { mask(src: Uint8Array, key: Uint8Array, out: Uint8Array, offset: number, length: number): void; unmask(buf: Uint8Array, key: Uint8Array): void };
let bufferUtil: BufferUtil | null = null;
try {
  bufferUtil = createRequire(import.meta.url)('bufferutil') as BufferUtil;
} catch {
  bufferUtil = null;
}

export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

const STAGE = 16 * 1024;
/** A payload at least this large means the next headers are read on their own. */
const LARGE = 4 * 1024;

/** XOR `buf` with `key`, starting at key byte `phase` (in place). */
export function applyMask(buf: Uint8Array, key: Uint8Array, phase: number): void {
  if (buf.length === 0) return;
  const k = phase % 4 === 0 ? key : Uint8Array.of(key[phase % 4]!, key[(phase + 1) % 4]!, key[(phase + 2) % 4]!, key[(phase + 3) % 4]!);
  if (bufferUtil !== null && buf.length >= 32) {
    bufferUtil.unmask(buf, k);
    return;
  }
  for (let i = 0; i < buf.length; i++) buf[i]! ^= k[i & 3]!;
}

/** A masked copy of `src` (the caller's bytes are never modified). */
export function maskedCopy(src: Uint8Array, key: Uint8Array, phase: number): Buffer {
  const out = Buffer.allocUnsafe(src.length);
  out.set(src);
  applyMask(out, key, phase);
  return out;
}

/** WebSocket frame header (FIN set) for a payload of `len` bytes. */
export function wsHeader(opcode: number, len: number, key: Uint8Array | null): Buffer {
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const h = Buffer.allocUnsafe(2 + ext + (key ? 4 : 0));
  h[0] = 0x80 | opcode;
  h[1] = (key ? 0x80 : 0) | (ext === 0 ? len : ext === 2 ? 126 : 127);
  if (ext === 2) h.writeUInt16BE(len, 2);
  else if (ext === 8) {
    h.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    h.writeUInt32BE(len >>> 0, 6);
  }
  if (key) h.set(key, 2 + ext);
  return h;
}

export interface WsControl {
  /** A ping arrived: answer with a pong carrying `payload`. */
  ping(payload: Buffer): void;
  /** The peer sent a close frame. */
  close(code: number, reason: string): void;
}

export class WsFrameReader {
  private readonly stage = Buffer.allocUnsafe(STAGE);
  private stHead = 0;
  private stFill = 0;
  /** Opcode of the WebSocket frame being read; -1 while its header is expected. */
  private wsOp = -1;
  private wsLen = 0;
  private readonly key = Buffer.alloc(4);
  /** The current frame has a non-zero masking key. */
  private masked = false;
  /** Payload bytes of the current WebSocket frame consumed so far (mask phase). */
  private payPos = 0;
  private cur: FrameHeader | null = null;
  private target: Uint8Array | null = null;
  private filled = 0;
  private stopped = false;
  private lastLarge = false;
  private lastWsHeader = 2;
  private discard: Uint8Array | null = null;
  private handed: 'stage' | 'payload' = 'stage';
  private draining = false;
  onActivity: () => void = () => {};
  onError: (e: unknown) => void = () => {};

  constructor(
    private readonly maxFrame: number,
    private readonly handler: FrameHandler,
    /** True on the server side: frames from a client must be masked (RFC 6455 §5.1). */
    private readonly expectMasked: boolean,
    private readonly control: WsControl,
  ) {}

  /** For net.Socket's `onread`. */
  get onread(): { buffer: () => Uint8Array; callback: (n: number, buf: Uint8Array) => boolean } {
    return { buffer: () => this.next(), callback: (n) => this.read(n) };
  }

  /** Bytes that did not come through onread (read before it was installed, or 'data' events). Returns false once stopped. */
  feed(chunk: Uint8Array): boolean {
    let at = 0;
    while (at < chunk.length && !this.stopped) {
      const b = this.next();
      const k = Math.min(b.length, chunk.length - at);
      b.set(chunk.subarray(at, at + k));
      at += k;
      if (!this.read(k)) break;
    }
    return !this.stopped;
  }

  /** From now on read and drop everything (after an orderly close, until the peer's EOF). */
  discardRest(): void {
    this.draining = true;
    this.stopped = true;
  }

  /** The buffer the next read goes into (never empty). */
  private next(): Uint8Array {
    if (this.draining) return this.stage;
    const h = this.cur;
    if (h !== null && !this.stopped && this.stHead === this.stFill) {
      this.handed = 'payload';
      const dest = this.target ?? this.discardOf(h.length);
      return dest.subarray(this.filled, h.length);
    }
    this.handed = 'stage';
    if (this.stHead === this.stFill) this.stHead = this.stFill = 0;
    else if (STAGE - this.stFill < 64) {
      this.stage.copyWithin(0, this.stHead, this.stFill);
      this.stFill -= this.stHead;
      this.stHead = 0;
    }
    const staged = this.stFill - this.stHead;
    // After a large frame, read just the next headers so its payload lands in place.
    const want = this.lastLarge && h === null ? (this.wsOp < 0 ? this.lastWsHeader : 0) + HEADER_BYTES - staged : STAGE - this.stFill;
    return this.stage.subarray(this.stFill, this.stFill + Math.max(1, Math.min(want, STAGE - this.stFill)));
  }

  private discardOf(n: number): Uint8Array {
    if (this.discard === null || this.discard.length < n) this.discard = new Uint8Array(n);
    return this.discard;
  }

  private read(n: number): boolean {
    if (this.draining) return true;
    try {
      this.onActivity();
      if (this.handed === 'payload') {
        const h = this.cur!;
        if (this.masked) applyMask((this.target ?? this.discard!).subarray(this.filled, this.filled + n), this.key, this.payPos);
        this.filled += n;
        this.payPos += n;
        if (this.filled === h.length) this.complete();
      } else {
        this.stFill += n;
      }
      this.parse();
    } catch (e) {
      this.stopped = true;
      this.onError(e);
      return false;
    }
    // A frame handler may have closed the link (discardRest) while we were inside this read.
    return this.draining || !this.stopped;
  }

  private parse(): void {
    const s = this.stage;
    while (!this.stopped && this.stHead < this.stFill) {
      const i = this.stHead;
      const avail = this.stFill - i;
      if (this.wsOp < 0) {
        if (avail < 2) return;
        const b0 = s[i]!;
        const b1 = s[i + 1]!;
        const len7 = b1 & 0x7f;
        const ext = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
        const m = (b1 & 0x80) !== 0;
        const hl = 2 + ext + (m ? 4 : 0);
        if (avail < hl) return;
        if (b0 & 0x70) throw new ProtocolError('malformed WebSocket frame: reserved bits set (no extension was negotiated)');
        const op = b0 & 0x0f;
        if (op === 0x1) throw new ProtocolError('unexpected text WebSocket message');
        if (op === 0x0) throw new ProtocolError('unexpected WebSocket continuation frame (fragmented messages are not used)');
        if (op !== OP_BINARY && op !== OP_CLOSE && op !== OP_PING && op !== OP_PONG) throw new ProtocolError(`unknown WebSocket opcode ${op}`);
        if (!(b0 & 0x80)) throw new ProtocolError('fragmented WebSocket message (every message must be a single frame)');
        if (m !== this.expectMasked) throw new ProtocolError(m ? 'masked WebSocket frame from the server' : 'unmasked WebSocket frame from a client');
        let len = len7;
        if (ext === 2) len = s.readUInt16BE(i + 2);
        else if (ext === 8) len = s.readUInt32BE(i + 2) * 2 ** 32 + s.readUInt32BE(i + 6);
        if (op === OP_BINARY) {
          if (len > this.maxFrame + HEADER_BYTES) throw new ProtocolError(`oversize WebSocket message: ${len} bytes > limit ${this.maxFrame + HEADER_BYTES}`);
          if (len < HEADER_BYTES) throw new ProtocolError(`malformed WebSocket message: ${len} bytes, shorter than a frame header`);
        } else if (len > 125) {
          throw new ProtocolError(`malformed WebSocket control frame: ${len} bytes (at most 125)`);
        }
        if (m) {
          s.copy(this.key, 0, i + 2 + ext, i + hl);
          this.masked = (this.key[0]! | this.key[1]! | this.key[2]! | this.key[3]!) !== 0;
        } else {
          this.masked = false;
        }
        this.wsOp = op;
        this.wsLen = len;
        this.payPos = 0;
        this.lastWsHeader = hl;
        this.stHead += hl;
        continue;
      }
      if (this.wsOp !== OP_BINARY) {
        // Control frame: small, handled once it is all here.
        if (avail < this.wsLen) return;
        const p = Buffer.from(s.subarray(i, i + this.wsLen));
        if (this.masked) applyMask(p, this.key, 0);
        this.stHead += this.wsLen;
        const op = this.wsOp;
        this.wsOp = -1;
        if (op === OP_PING) this.control.ping(p);
        else if (op === OP_CLOSE) {
          this.stopped = true;
          this.control.close(p.length >= 2 ? p.readUInt16BE(0) : 1005, p.length > 2 ? p.subarray(2).toString('utf8') : '');
        }
        continue;
      }
      if (this.cur === null) {
        if (avail < HEADER_BYTES) return;
        const hb = s.subarray(i, i + HEADER_BYTES);
        if (this.masked) applyMask(hb, this.key, 0);
        this.stHead += HEADER_BYTES;
        this.payPos = HEADER_BYTES;
        const h = decodeHeader(hb, this.maxFrame);
        if (h.length !== this.wsLen - HEADER_BYTES) {
          throw new ProtocolError(`malformed WebSocket message: ${this.wsLen} bytes, but its frame header announces ${h.length} payload bytes`);
        }
        this.cur = h;
        this.filled = 0;
        this.lastLarge = h.length >= LARGE;
        this.target = this.handler.begin(h);
        if (this.target !== null && this.target.length !== h.length) {
          throw new Error(`internal: frame destination has ${this.target.length} bytes, frame ${h.length}`);
        }
        if (h.length === 0) this.complete();
      } else {
        const h = this.cur;
        const k = Math.min(h.length - this.filled, avail);
        const src = s.subarray(i, i + k);
        if (this.masked) applyMask(src, this.key, this.payPos);
        if (this.target !== null) this.target.set(src, this.filled);
        this.filled += k;
        this.stHead += k;
        this.payPos += k;
        if (this.filled === h.length) this.complete();
      }
    }
  }

  private complete(): void {
    const h = this.cur!;
    const t = this.target;
    this.cur = null;
    this.target = null;
    this.wsOp = -1;
    if (this.handler.end(h, t) === false) this.stopped = true;
  }
}
