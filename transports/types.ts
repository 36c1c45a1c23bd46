// The one interface every transport implements. It is shaped after
// receiver-posted buffers (Gloo's pairs, verbs' recv work requests): the
// transport never decides where data goes; for each incoming fragment it asks
// the FrameSink for the destination bytes and reports when they have landed.
// A zero-copy RDMA transport would implement the same contract by registering
// the sink's destination buffers and turning `send` into RDMA writes.
import type { EventEmitter } from 'node:events';
import type { FrameHeader } from './frame.ts';

/** Fields of a message the sender chooses; offset/length/total are filled by the link. */
export type MessageHeader = Omit<FrameHeader, 'offset' | 'length' | 'total'>;

/** Where incoming data goes: implemented by the process group's router. */
export interface FrameSink {
  /** Destination for one Data/P2P fragment (exactly `h.length` bytes). */
  place(link: Link, h: FrameHeader): Uint8Array;
  /** The fragment's bytes are now in the buffer returned by `place`. */
  arrived(link: Link, h: FrameHeader): void;
  /** A control message (decoded msgpack). */
  control(link: Link, body: unknown): void;
}

/**
 * A connection to one peer rank. Events:
 *  - 'close' (err: Error | null): the link is gone; err is null for an orderly
 *    close by either side, else the reason (peer died, protocol violation, liveness).
 */
export interface Link extends EventEmitter {
  readonly transport: TransportName;
  /**
   * What the bytes travel over, whatever the framing (`transport`): 'unix'
   * (a same-host link between ranks of one host and network namespace,
   * transports/local.ts), 'tcp' or 'inproc'.
   */
  readonly medium: LinkMedium;
  readonly localRank: number;
  readonly peerRank: number;
  readonly closed: boolean;
  /**
   * Sends one message, fragmented into frames of at most the link's frame
   * size. Respects backpressure (waits while the kernel/peer is full). Resolves
   * when `payload` may be reused; rejects if the link closes first.
   */
  send(h: MessageHeader, payload: Uint8Array): Promise<void>;
  /** Sends a small msgpack control message (best effort, ordered with data). */
  sendControl(body: unknown): void;
  /** Stop / restart reading from the peer (used to bound unexpected-message memory). */
  pause(): void;
  resume(): void;
  /** Orderly close (tells the peer); idempotent. */
  close(reason?: string): void;
  /** Immediate teardown with an error, emitted as 'close'. */
  destroy(err: Error): void;
}

export type TransportName = 'tcp' | 'ws' | 'inproc';
export type LinkMedium = 'unix' | 'tcp' | 'inproc';

export interface TransportOptions {
  rank: number;
  /** Per-job secret for the HMAC handshake (ignored by inproc: ports are capabilities). */
  secret: Uint8Array;
  sink: FrameSink;
  /** Interface to bind listeners to; loopback unless given. */
  host?: string;
  /** Largest accepted fragment payload in bytes (default 4 MiB + header slack). */
  maxFrame?: number;
  /** Fragment size used when sending (default 1 MiB; ≤ maxFrame). */
  chunkBytes?: number;
  /** Heartbeat period on idle links (ms). */
  heartbeatMs?: number;
  /** A link that has received nothing for this long is declared dead (ms). */
  livenessMs?: number;
  /** Handshake must complete within this time (ms). */
  handshakeMs?: number;
  /**
   * tcp and ws: peers on this host and network namespace connect over a Unix-domain
   * socket (local.ts). Default on; WEBOMNI_LOCAL_LINKS=0 turns it off.
   */
  localLinks?: boolean;
  /** WebSocket only: skip client-side masking (links on a trusted network). Default true on loopback. */
  trustedLink?: boolean;
  log?: (msg: string) => void;
}

/**
 * Listener + connector for one kind of link. Events:
 *  - 'reject' (reason: string, remote: string): an incoming connection was refused
 *    (bad secret, replay, malformed handshake); the listener keeps serving.
 */
export interface Transport extends EventEmitter {
  readonly name: TransportName;
  /** Starts accepting authenticated peers; returns the address to publish. */
  listen(onLink: (link: Link) => void): Promise<string>;
  /** Connects and authenticates to the rank listening at `address`. */
  connect(address: string, peerRank: number): Promise<Link>;
  /** Closes the listener and every link. */
  close(): Promise<void>;
}

export const DEFAULTS = {
  maxFrame: 4 * 1024 * 1024 + 4096,
  chunkBytes: 1024 * 1024,
  heartbeatMs: 1000,
  livenessMs: 30_000,
  handshakeMs: 10_000,
};

export class LinkClosedError extends Error {
  override name = 'LinkClosedError';
  constructor(readonly peerRank: number, message: string) {
    super(message);
  }
}
