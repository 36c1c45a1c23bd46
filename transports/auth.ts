// Mutual HMAC challenge-response over a per-job secret, run on every
// connection (peer links and the rendezvous store) before any data flows.
//
//   listener  -> connector : Challenge { nonce: Ns }
//   connector -> listener  : Auth      { rank, purpose, nonce: Nc, mac: HMAC(secret, "c" | purpose | Ns | Nc | rank) }
//   listener  -> connector : AuthOk    { rank, mac: HMAC(secret, "s" | purpose | Nc | Ns | rank) }
//
// Ns is fresh per connection, so a recorded Auth replayed on a new connection
// fails the MAC; the listener also remembers recent client nonces so such a
// replay is logged as a replay rather than as a wrong secret.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Packr } from 'msgpackr';
import { FrameType, ProtocolError } from './frame.ts';

const packr = new Packr({ useRecords: false });
export const pack = (v: unknown): Buffer => packr.pack(v);
export const unpack = (b: Uint8Array): unknown => packr.unpack(b);

export type Purpose = 'peer' | 'store';

export interface HandshakeIO {
  send(type: FrameType, body: unknown): void;
  /** Next handshake frame; rejects when the connection closes or the handshake times out. */
  receive(): Promise<{ type: FrameType; body: unknown }>;
}

export class AuthError extends Error {
  override name = 'AuthError';
}

/** Remembers recently seen connector nonces (bounded) to name replays. */
export class ReplayGuard {
  private seen = new Set<string>();
  constructor(private readonly capacity = 4096) {}
  /** Returns false if the nonce was already used. */
  admit(nonce: Uint8Array): boolean {
    const k = Buffer.from(nonce).toString('hex');
    if (this.seen.has(k)) return false;
    this.seen.add(k);
    if (this.seen.size > this.capacity) this.seen.delete(this.seen.values().next().value as string);
    return true;
  }
}

function mac(secret: Uint8Array, role: 'c' | 's', purpose: Purpose, a: Uint8Array, b: Uint8Array, rank: number): Buffer {
  const h = createHmac('sha256', secret);
  h.update(`webomni-v1|${role}|${purpose}|${rank}|`);
  h.update(a);
  h.update(b);
  return h.digest();
}

function macEqual(a: unknown, b: Buffer): boolean {
  return a instanceof Uint8Array && a.length === b.length && timingSafeEqual(a, b);
}

function asRecord(body: unknown, what: string): Record<string, unknown> {
  if (typeof body !== 'object' || body === null) throw new ProtocolError(`malformed ${what}`);
  return body as Record<string, unknown>;
}

function bytes(v: unknown, n: number, what: string): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length !== n) throw new ProtocolError(`malformed ${what}`);
  return v;
}

async function expect(io: HandshakeIO, type: FrameType, what: string): Promise<Record<string, unknown>> {
  const f = await io.receive();
  if (f.type !== type) throw new ProtocolError(`handshake: expected ${what}, got frame type ${FrameType[f.type] ?? f.type}`);
  return asRecord(f.body, what);
}

/** Listener side. Returns the authenticated rank of the connector. */
export async function acceptHandshake(
  io: HandshakeIO,
  cfg: { secret: Uint8Array; localRank: number; purpose: Purpose; replay: ReplayGuard },
): Promise<{ peerRank: number }> {
  const ns = randomBytes(32);
  io.send(FrameType.Challenge, { v: 1, nonce: ns });
  const m = await expect(io, FrameType.Auth, 'auth message');
  const nc = bytes(m.nonce, 32, 'auth nonce');
  const rank = m.rank;
  if (typeof rank !== 'number' || !Number.isInteger(rank) || rank < -1 || rank > 1 << 20) throw new ProtocolError('malformed auth rank');
  if (m.purpose !== cfg.purpose) throw new AuthError(`connector wants purpose "${String(m.purpose)}", this listener serves "${cfg.purpose}"`);
  const ok = macEqual(m.mac, mac(cfg.secret, 'c', cfg.purpose, ns, nc, rank));
  const fresh = cfg.replay.admit(nc);
  if (!ok) throw new AuthError(fresh ? `HMAC check failed for claimed rank ${rank} (wrong job secret)` : `replayed handshake (claimed rank ${rank})`);
  io.send(FrameType.AuthOk, { rank: cfg.localRank, mac: mac(cfg.secret, 's', cfg.purpose, nc, ns, cfg.localRank) });
  return { peerRank: rank };
}

/** Connector side. Verifies the listener knows the secret too. */
export async function connectHandshake(
  io: HandshakeIO,
  cfg: { secret: Uint8Array; localRank: number; purpose: Purpose; expectPeerRank?: number },
): Promise<{ peerRank: number }> {
  const c = await expect(io, FrameType.Challenge, 'challenge');
  const ns = bytes(c.nonce, 32, 'challenge nonce');
  const nc = randomBytes(32);
  io.send(FrameType.Auth, { rank: cfg.localRank, purpose: cfg.purpose, nonce: nc, mac: mac(cfg.secret, 'c', cfg.purpose, ns, nc, cfg.localRank) });
  const ok = await expect(io, FrameType.AuthOk, 'auth confirmation');
  const rank = ok.rank;
  if (typeof rank !== 'number') throw new ProtocolError('malformed auth confirmation');
  if (!macEqual(ok.mac, mac(cfg.secret, 's', cfg.purpose, nc, ns, rank))) {
    throw new AuthError(`listener failed to prove the job secret (claimed rank ${rank})`);
  }
  if (cfg.expectPeerRank !== undefined && rank !== cfg.expectPeerRank) {
    throw new AuthError(`connected to rank ${rank}, expected rank ${cfg.expectPeerRank}`);
  }
  return { peerRank: rank };
}
