// Failure semantics with real processes: a killed rank, a stopped rank, and a
// live rank facing a wrong secret, a corrupted frame, an oversize frame and an
// unknown message type. Each case checks the error, its timing, and that no
// process survives.
import { afterAll, describe, expect, it } from 'vitest';
import { encodeHeader, emptyHeader, FrameType, HEADER_BYTES } from '../../transports/frame.ts';
import { TcpTransport } from '../../transports/tcp.ts';
import { WsTransport } from '../../transports/ws.ts';
import { OP_BINARY, wsHeader } from '../../transports/wsframe.ts';
import type { FrameSink, Link } from '../../transports/types.ts';
import { StoreClient } from '../../src/dist/store.ts';
import { alive, killAll, startJob, type Job } from './harness.ts';

afterAll(killAll);

async function finish(job: Job): Promise<void> {
  await job.cleanup();
  await new Promise((r) => setTimeout(r, 50));
  for (const p of job.procs) expect(alive(p.pid!), `pid ${p.pid} survived`).toBe(false);
}

describe.each(['tcp', 'ws'] as const)('a rank dies (%s)', (transport) => {
  it('SIGKILL during an all-reduce fails every other rank naming it, within 2× the heartbeat', async () => {
    const heartbeat = 1000;
    const job = await startJob({ n: 3, transport, scenario: 'fault', env: { WEBOMNI_HEARTBEAT_MS: String(heartbeat), WEBOMNI_LIVENESS_MS: '30000' } });
    try {
      await job.ticked([0, 1, 2], 2);
      const t0 = Date.now();
      job.kill(1, 'SIGKILL');
      const outs = await job.outputs;
      expect(outs[1]!.signal).toBe('SIGKILL');
      for (const r of [0, 2]) {
        const o = outs[r]!;
        expect(o.error, o.stderr).toBeDefined();
        expect(o.error!.name).toBe('PeerFailureError');
        expect(o.error!.failedRank).toBe(1);
        expect(o.error!.message).toMatch(/all_reduce\(float32, count=1048576, sum\) #\d+ on group "world".* rank 1 (failed|is gone)/);
        expect(o.code).toBe(1);
        expect(o.errorAt! - t0).toBeLessThanOrEqual(2 * heartbeat);
      }
    } finally {
      await finish(job);
    }
  }, 60_000);
});

describe('a rank stops', () => {
  it('SIGSTOP is detected by the liveness timeout on every other rank', async () => {
    const liveness = 1500;
    const job = await startJob({ n: 3, scenario: 'fault', env: { WEBOMNI_HEARTBEAT_MS: '250', WEBOMNI_LIVENESS_MS: String(liveness) } });
    try {
      await job.ticked([0, 1, 2], 2);
      const t0 = Date.now();
      job.kill(2, 'SIGSTOP');
      const outs = await Promise.race([
        Promise.all([0, 1].map((r) => new Promise<void>((res) => { const poll = setInterval(() => { if (job.procs[r]!.exitCode !== null) { clearInterval(poll); res(); } }, 20); }))),
        new Promise((r) => setTimeout(r, 15_000)),
      ]).then(() => { job.kill(2, 'SIGKILL'); return job.outputs; });
      for (const r of [0, 1]) {
        const o = outs[r]!;
        expect(o.error, o.stderr).toBeDefined();
        expect(o.error!.name).toBe('PeerFailureError');
        expect(o.error!.failedRank).toBe(2);
        expect(o.error!.message).toMatch(/rank 2 sent nothing for \d+ ms \(liveness timeout 1500 ms\)/);
        const dt = o.errorAt! - t0;
        expect(dt).toBeGreaterThanOrEqual(liveness - 300);
        expect(dt).toBeLessThanOrEqual(liveness + 2000);
      }
    } finally {
      await finish(job);
    }
  }, 60_000);
});

/** Plays rank 1 of a 2-rank job against a real rank-0 process, authenticating with `secret`. */
async function fakeRank1(job: Job, transport: 'tcp' | 'ws', secret: Buffer): Promise<Link> {
  const store = await new StoreClient(job.storeAddress, { secret: Buffer.from(job.secret, 'hex'), rank: 1 }).connect();
  await store.compareSet('webomni/world_size', null, 2);
  const addr = String(await store.get('webomni/addr/0'));
  await store.close();
  const sink: FrameSink = { place: (_l, h) => new Uint8Array(h.length), arrived() {}, control() {} };
  const t = transport === 'tcp' ? new TcpTransport({ rank: 1, secret, sink }) : new WsTransport({ rank: 1, secret, sink });
  return t.connect(addr, 0);
}

/** Writes bytes on the link's connection: as they are (tcp), or as one binary WebSocket message (ws, masked with a zero key as a client). */
function rawWrite(link: Link, bytes: Buffer): void {
  const l = link as unknown as { socket: { write(b: Buffer): void } };
  l.socket.write(link.transport === 'ws' ? Buffer.concat([wsHeader(OP_BINARY, bytes.length, Buffer.alloc(4)), bytes]) : bytes);
}

function header(type: number, length: number): Buffer {
  const h = emptyHeader(FrameType.Data);
  h.length = length;
  h.total = length;
  const b = encodeHeader(h);
  b.writeUInt8(type, 3);
  return b;
}

describe.each(['tcp', 'ws'] as const)('a live rank and a misbehaving peer (%s)', (transport) => {
  it('a wrong secret is refused with a logged reason; the rank keeps serving', async () => {
    const job = await startJob({ n: 2, transport, scenario: 'fault', skip: [1], env: { WEBOMNI_DIST_TIMEOUT_MS: '20000' } });
    try {
      await expect(fakeRank1(job, transport, Buffer.alloc(32, 9))).rejects.toThrow(/rejected our authentication \(wrong job secret\?\)/);
      // Same rank, right secret: accepted, and the all-reduce loop runs with us.
      const link = await fakeRank1(job, transport, Buffer.from(job.secret, 'hex'));
      expect(link.peerRank).toBe(0);
      link.destroy(new Error('test done'));
      const [o] = await job.outputs;
      expect(o!.stderr).toMatch(/rejected peer connection from .*HMAC check failed for claimed rank 1 \(wrong job secret\)/);
      expect(o!.error!.message).toMatch(/rank 1/);
    } finally {
      await finish(job);
    }
  }, 60_000);

  it.each([
    ['a corrupted frame', () => Buffer.alloc(HEADER_BYTES, 0xab), /malformed header: bad magic 0xabab/],
    ['an oversize frame', () => header(FrameType.Data, 64 << 20), /oversize frame: 67108864 bytes > limit/],
    ['an unknown message type', () => header(99, 0), /unknown message type 99/],
  ])('%s closes the link with a logged reason and fails the rank cleanly, naming the peer', async (_name, bytes, reason) => {
    const job = await startJob({ n: 2, transport, scenario: 'fault', skip: [1], env: { WEBOMNI_DIST_TIMEOUT_MS: '20000' } });
    try {
      const link = await fakeRank1(job, transport, Buffer.from(job.secret, 'hex'));
      await new Promise((r) => setTimeout(r, 200));
      const t0 = Date.now();
      rawWrite(link, bytes());
      const [o] = await job.outputs;
      expect(o!.stderr).toMatch(new RegExp(`closing link to rank 1: ${reason.source}`));
      expect(o!.error!.name).toBe('PeerFailureError');
      expect(o!.error!.failedRank).toBe(1);
      expect(o!.error!.message).toMatch(reason);
      expect(o!.code).toBe(1); // our error path, not a crash
      expect(o!.stderr).not.toMatch(/Uncaught|unhandled/i);
      expect(o!.errorAt! - t0).toBeLessThan(2000);
    } finally {
      await finish(job);
    }
  }, 60_000);
});

describe('a live rank and a peer sending malformed WebSocket frames', () => {
  const key = Buffer.alloc(4);
  const data = (len: number) => Buffer.concat([header(FrameType.Data, len), Buffer.alloc(len)]);
  const big = Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0x04, 0, 0, 0, 0, 0, 0, 0]); // 64 MiB binary frame, masked
  it.each([
    ['a text message', () => Buffer.concat([wsHeader(0x1, 5, key), Buffer.from('hello')]), /unexpected text WebSocket message/],
    ['a fragmented message', () => { const b = Buffer.concat([wsHeader(OP_BINARY, 40, key), header(FrameType.Heartbeat, 0)]); b[0] = 0x02; return b; }, /fragmented WebSocket message/],
    ['reserved bits', () => { const b = Buffer.concat([wsHeader(OP_BINARY, 40, key), header(FrameType.Heartbeat, 0)]); b[0]! |= 0x40; return b; }, /malformed WebSocket frame: reserved bits set/],
    ['an unmasked client frame', () => Buffer.concat([wsHeader(OP_BINARY, 40, null), header(FrameType.Heartbeat, 0)]), /unmasked WebSocket frame from a client/],
    ['an oversize WebSocket frame', () => big, /oversize WebSocket message: 67108864 bytes > limit/],
    ['a length disagreeing with the frame header', () => Buffer.concat([wsHeader(OP_BINARY, 40 + 100, key), data(99), Buffer.alloc(1)]), /malformed WebSocket message: 140 bytes, but its frame header announces 99 payload bytes/],
    ['an unknown opcode', () => Buffer.concat([wsHeader(0x5, 0, key)]), /unknown WebSocket opcode 5/],
  ])('%s closes the link with a logged reason, never a crash', async (_name, bytes, reason) => {
    const job = await startJob({ n: 2, transport: 'ws', scenario: 'fault', skip: [1], env: { WEBOMNI_DIST_TIMEOUT_MS: '20000' } });
    try {
      const link = await fakeRank1(job, 'ws', Buffer.from(job.secret, 'hex'));
      await new Promise((r) => setTimeout(r, 200));
      (link as unknown as { socket: { write(b: Buffer): void } }).socket.write(bytes());
      const [o] = await job.outputs;
      expect(o!.stderr).toMatch(new RegExp(`closing link to rank 1: ${reason.source}`));
      expect(o!.error!.name).toBe('PeerFailureError');
      expect(o!.error!.failedRank).toBe(1);
      expect(o!.code).toBe(1);
      expect(o!.stderr).not.toMatch(/Uncaught|unhandled/i);
    } finally {
      await finish(job);
    }
  }, 60_000);
});
