// Incremental parser for the frame stream of a byte-stream connection.
// Headers are decoded as soon as their 40 bytes are in; payload bytes are
// copied straight into whatever buffer the handler chose for that frame, so
// a tensor fragment crosses user space exactly once.
import { HEADER_BYTES, decodeHeader, type FrameHeader } from './frame.ts';

export interface FrameHandler {
  /** Destination for the payload (exactly h.length bytes) or null if none. */
  begin(h: FrameHeader): Uint8Array | null;
  /** Payload complete. Return false to stop parsing (bytes after it are kept for the next handler). */
  end(h: FrameHeader, payload: Uint8Array | null): boolean | void;
}

export class Framer {
  private readonly hdr = Buffer.alloc(HEADER_BYTES);
  private hdrFill = 0;
  private cur: FrameHeader | null = null;
  private target: Uint8Array | null = null;
  private filled = 0;
  private stopped = false;
  private backlog: Buffer[] = [];

  constructor(
    private maxFrame: number,
    private handler: FrameHandler,
  ) {}

  /** True if bytes arrived after the handler stopped (held for the next handler). */
  get hasBacklog(): boolean {
    return this.backlog.length > 0;
  }

  /** Switches handler (after a handshake) and replays bytes held while stopped. */
  setHandler(h: FrameHandler, maxFrame?: number): void {
    this.handler = h;
    if (maxFrame !== undefined) this.maxFrame = maxFrame;
    this.stopped = false;
    const held = this.backlog;
    this.backlog = [];
    for (const b of held) this.push(b);
  }

  /** Feeds bytes; throws ProtocolError on a bad header (caller closes the connection). */
  push(chunk: Buffer): void {
    if (this.stopped) {
      this.backlog.push(chunk);
      return;
    }
    const len = chunk.length;
    let i = 0;
    while (i < len) {
      if (this.cur === null) {
        const n = Math.min(HEADER_BYTES - this.hdrFill, len - i);
        chunk.copy(this.hdr, this.hdrFill, i, i + n);
        this.hdrFill += n;
        i += n;
        if (this.hdrFill < HEADER_BYTES) return;
        this.hdrFill = 0;
        const h = decodeHeader(this.hdr, this.maxFrame);
        this.cur = h;
        this.filled = 0;
        this.target = this.handler.begin(h);
        if (this.target !== null && this.target.length !== h.length) {
          throw new Error(`internal: frame destination has ${this.target.length} bytes, frame ${h.length}`);
        }
        if (h.length === 0 && !this.complete(chunk, i)) return;
      } else {
        const h = this.cur;
        const n = Math.min(h.length - this.filled, len - i);
        if (this.target !== null) this.target.set(chunk.subarray(i, i + n), this.filled);
        this.filled += n;
        i += n;
        if (this.filled === h.length && !this.complete(chunk, i)) return;
      }
    }
  }

  private complete(chunk: Buffer, i: number): boolean {
    const h = this.cur!;
    const t = this.target;
    this.cur = null;
    this.target = null;
    if (this.handler.end(h, t) === false) {
      this.stopped = true;
      if (i < chunk.length) this.backlog.push(chunk.subarray(i));
      return false;
    }
    return true;
  }
}
