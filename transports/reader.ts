// Frame parser for sockets read with node:net's `onread` option: instead of
// Node allocating a fresh buffer per read and the parser copying it again
// (the 'data' event path, ~2× slower on loopback here), the kernel copies
// bytes straight into the buffer this parser hands out for the next read:
//  - while a header is expected, a small staging buffer (frames that fit in it
//    are parsed from there, so small messages cost one read for many frames);
//  - while a payload is expected, the exact remaining range of the frame's
//    destination (a slice of a receive the collective posted), so a tensor
//    fragment crosses user space zero times after the kernel's copy.
// After a large frame the next header is read on its own (40 bytes), so the
// following payload again lands directly in place.
// Same FrameHandler contract as Framer (begin → destination, end → continue?).
import { HEADER_BYTES, decodeHeader, type FrameHeader } from './frame.ts';
import type { FrameHandler } from './framer.ts';

const STAGE = 16 * 1024;
/** A payload at least this large means the next header is read alone. */
const LARGE = 4 * 1024;

export class OnReadParser {
  private readonly stage = Buffer.allocUnsafe(STAGE);
  /** Valid bytes in `stage` are [stHead, stFill). */
  private stHead = 0;
  private stFill = 0;
  private cur: FrameHeader | null = null;
  private target: Uint8Array | null = null;
  private filled = 0;
  private stopped = false;
  private lastLarge = false;
  private discard: Uint8Array | null = null;
  /** After the link closed: bytes are read and dropped until the peer's EOF. */
  private dropping = false;
  /** What the last buffer handed to the socket was: the staging tail, or a payload range. */
  private handed: 'stage' | 'payload' = 'stage';
  /** Called (before any parsing) for every read; a throw closes the connection via onError. */
  onActivity: () => void = () => {};
  onError: (e: unknown) => void = () => {};

  constructor(
    private maxFrame: number,
    private handler: FrameHandler,
  ) {}

  /** The `onread` option for net.connect / new net.Socket. */
  get onread(): { buffer: () => Uint8Array; callback: (n: number, buf: Uint8Array) => boolean } {
    return { buffer: () => this.next(), callback: (n) => this.read(n) };
  }

  /** Switches handler (after a handshake) and parses bytes held while stopped. Returns false if it stopped again. */
  setHandler(h: FrameHandler, maxFrame?: number): boolean {
    this.handler = h;
    if (maxFrame !== undefined) this.maxFrame = maxFrame;
    this.stopped = false;
    try {
      this.parse();
    } catch (e) {
      this.onError(e);
      return false;
    }
    return !this.stopped;
  }

  /**
   * Reads and drops everything from now on (the socket must be resumed), so
   * the peer's EOF is seen and the connection closes at once instead of
   * waiting out a linger timer with unread bytes in the kernel.
   */
  dropRest(): void {
    this.dropping = true;
    this.stopped = false;
  }

  /** The buffer the next read goes into (never empty). */
  private next(): Uint8Array {
    if (this.dropping) return this.stage;
    const h = this.cur;
    if (h !== null && !this.stopped && this.stHead === this.stFill) {
      this.handed = 'payload';
      const dest = this.target ?? this.discardOf(h.length);
      return dest.subarray(this.filled, h.length);
    }
    this.handed = 'stage';
    if (this.stHead === this.stFill) this.stHead = this.stFill = 0;
    else if (STAGE - this.stFill < HEADER_BYTES) {
      this.stage.copyWithin(0, this.stHead, this.stFill);
      this.stFill -= this.stHead;
      this.stHead = 0;
    }
    // Header alone after a large frame (its payload then lands in place), else a batch.
    const want = this.lastLarge && this.cur === null ? Math.max(1, HEADER_BYTES - (this.stFill - this.stHead)) : STAGE - this.stFill;
    return this.stage.subarray(this.stFill, this.stFill + Math.max(1, Math.min(want, STAGE - this.stFill)));
  }

  private discardOf(n: number): Uint8Array {
    if (this.discard === null || this.discard.length < n) this.discard = new Uint8Array(n);
    return this.discard;
  }

  /** onread callback: `n` bytes landed in the buffer from next(). Returns false to pause the socket. */
  private read(n: number): boolean {
    if (this.dropping) return true;
    try {
      this.onActivity();
      if (this.handed === 'payload') {
        this.filled += n;
        if (this.filled === this.cur!.length) this.complete();
      } else {
        this.stFill += n;
      }
      this.parse();
    } catch (e) {
      this.onError(e);
      return false;
    }
    return !this.stopped;
  }

  /** Consumes staged bytes: headers, and payload bytes that came with them. */
  private parse(): void {
    while (!this.stopped && this.stHead < this.stFill) {
      const avail = this.stFill - this.stHead;
      if (this.cur === null) {
        if (avail < HEADER_BYTES) return;
        const h = decodeHeader(this.stage.subarray(this.stHead, this.stHead + HEADER_BYTES), this.maxFrame);
        this.stHead += HEADER_BYTES;
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
        if (this.target !== null) this.target.set(this.stage.subarray(this.stHead, this.stHead + k), this.filled);
        this.filled += k;
        this.stHead += k;
        if (this.filled === h.length) this.complete();
      }
    }
  }

  private complete(): void {
    const h = this.cur!;
    const t = this.target;
    this.cur = null;
    this.target = null;
    if (this.handler.end(h, t) === false) this.stopped = true;
  }
}
