// In-process tests over real loopback sockets: the rendezvous store's
// operations and timeouts, the handshake's replay protection, frame header
// validation, and the router's bound on early (unposted) data.
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeHeader, emptyHeader, encodeHeader, FrameType, HEADER_BYTES } from '../../transports/frame.ts';
import { TcpTransport } from '../../transports/tcp.ts';
import { parseAddress } from '../../transports/address.ts';
import { localHostKey, splitLocal, withLocal } from '../../transports/local.ts';
import type { FrameSink, Link } from '../../transports/types.ts';
import { Router } from '../../src/dist/router.ts';
import { OnReadParser } from '../../transports/reader.ts';
import WebSocket from 'ws';
import { ReplayGuard } from '../../transports/auth.ts';
import { WsTransport, authenticateWs } from '../../transports/ws.ts';
import { OP_BINARY, OP_PING, WsFrameReader, maskedCopy, wsHeader } from '../../transports/wsframe.ts';
import type { FrameHeader } from '../../transports/frame.ts';
import { StoreClient, StoreServer } from '../../src/dist/store.ts';
import { readRankEnv, readJobSecret } from '../../src/dist/env.ts';

const secret = Buffer.alloc(32, 3);
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function store(): Promise<{ server: StoreServer; client: StoreClient }> {
  const server = new StoreServer({ secret, log: () => {} });
  const addr = await server.start();
  const client = await new StoreClient(addr, { secret, rank: 0, timeoutMs: 5000 }).connect();
  cleanups.push(() => client.close(), () => server.close());
  return { server, client };
}

describe('rendezvous store', () => {
  it('set/get/add/wait/compareSet/delete/numKeys', async () => {
    const { client } = await store();
    const late = client.get('k1');
    await client.set('k1', 'v1');
    expect(await late).toBe('v1');
    expect(await client.add('n', 2)).toBe(2);
    expect(await client.add('n', 3)).toBe(5);
    expect(await client.compareSet('c', null, 'a')).toBe('a');
    expect(await client.compareSet('c', 'x', 'b')).toBe('a');
    expect(await client.compareSet('c', 'a', 'b')).toBe('b');
    const bin = new Uint8Array([1, 2, 3]);
    await client.set('bin', bin);
    expect(Buffer.from(await client.get('bin') as Uint8Array)).toEqual(Buffer.from(bin));
    const w = client.wait(['w1', 'w2']);
    await client.set('w1', 1);
    await client.set('w2', 2);
    await w;
    expect(await client.numKeys()).toBe(6);
    expect(await client.delete('c')).toBe(true);
    expect(await client.delete('c')).toBe(false);
  });

  it('waits time out with the key named', async () => {
    const { client } = await store();
    const t0 = Date.now();
    await expect(client.get('never', 200)).rejects.toThrow(/store get\("never"\) timed out after 200 ms/);
    await expect(client.wait(['a', 'b'], 100)).rejects.toThrow(/wait\("a", "b"\) timed out after 100 ms/);
    expect(Date.now() - t0).toBeLessThan(2000);
    // The store still answers afterwards.
    await client.set('a', 1);
    expect(await client.get('a')).toBe(1);
  });

  it('a wrong secret is rejected quickly and the store keeps serving', async () => {
    const { server, client } = await store();
    const reasons: string[] = [];
    server.on('reject', (r) => reasons.push(r));
    const bad = new StoreClient(client.address, { secret: Buffer.alloc(32, 4), rank: 5, timeoutMs: 5000 });
    const t0 = Date.now();
    await expect(bad.connect()).rejects.toThrow(/rejected our authentication/);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(reasons[0]).toMatch(/HMAC check failed for claimed rank 5 \(wrong job secret\)/);
    await client.set('still', 'ok');
    expect(await client.get('still')).toBe('ok');
  });

  it('a malformed or unknown request gets an error reply, not a crash', async () => {
    const { client } = await store();
    const c = client as unknown as { call(r: Record<string, unknown>, what: string): Promise<unknown> };
    await expect(c.call({ op: 'explode', key: 'x' }, 'explode')).rejects.toThrow(/unknown store operation "explode"/);
    await expect(c.call({ op: 'set', key: 42 }, 'set')).rejects.toThrow(/bad set request/);
    expect(await client.add('ok', 1)).toBe(1);
  });
});

describe('handshake and frames', () => {
  const sink: FrameSink = { place: (_l, h) => new Uint8Array(h.length), arrived() {}, control() {} };

  it('a replayed handshake is refused', async () => {
    const server = new TcpTransport({ rank: 0, secret, sink, log: () => {} });
    const reasons: string[] = [];
    server.on('reject', (r) => reasons.push(r));
    const addr = await server.listen(() => {});
    cleanups.push(() => server.close());
    const { port } = parseAddress(splitLocal(addr).tcp);
    // Record what a legitimate connector sends.
    const sent: Buffer[] = [];
    const origWrite = net.Socket.prototype.write;
    const spy = function (this: net.Socket, ...a: unknown[]) {
      if (Buffer.isBuffer(a[0])) sent.push(Buffer.from(a[0]));
      return (origWrite as (...x: unknown[]) => boolean).apply(this, a);
    };
    net.Socket.prototype.write = spy as typeof origWrite;
    const client = new TcpTransport({ rank: 1, secret, sink });
    let link: Link;
    try {
      link = await client.connect(addr, 0);
    } finally {
      net.Socket.prototype.write = origWrite;
    }
    link.close();
    const auth = sent.find((b) => b.length > HEADER_BYTES && b.readUInt8(3) === FrameType.Auth)!;
    expect(auth).toBeDefined();
    // Replay it on a fresh connection: the listener's nonce differs, so it must fail.
    const s = net.connect(port, '127.0.0.1');
    await new Promise((r) => s.once('data', r)); // the new challenge
    s.write(auth);
    await new Promise((r) => s.once('close', r));
    expect(reasons.at(-1)).toMatch(/replayed handshake \(claimed rank 1\)/);
  });

  it('headers round-trip and invalid ones are rejected with a reason', () => {
    const h = { ...emptyHeader(FrameType.Data), group: 7, seq: 9, step: 65537, total: 100, offset: 60, length: 40, op: 1, dtype: 1, redop: 2, count: 25, aux: 3 };
    expect(decodeHeader(encodeHeader(h), 1 << 20)).toEqual(h);
    expect(() => decodeHeader(Buffer.alloc(10), 100)).toThrow(/malformed header: 10 bytes/);
    expect(() => decodeHeader(encodeHeader({ ...h, length: 2000, total: 2000, offset: 0 }), 1000)).toThrow(/oversize frame: 2000 bytes > limit 1000/);
    expect(() => decodeHeader(encodeHeader({ ...h, offset: 90 }), 1 << 20)).toThrow(/beyond message size 100/);
    const bad = encodeHeader(h);
    bad.writeUInt8(200, 3);
    expect(() => decodeHeader(bad, 1 << 20)).toThrow(/unknown message type 200/);
    bad.writeUInt16LE(0x1234, 0);
    expect(() => decodeHeader(bad, 1 << 20)).toThrow(/bad magic 0x1234/);
  });

  it('early data is bounded: the link pauses past the budget and resumes once receives are posted', async () => {
    const calls: string[] = [];
    const link = { peerRank: 1, pause: () => calls.push('pause'), resume: () => calls.push('resume') } as unknown as Link;
    const router = new Router(0, { groupName: String, onControl() {} }, 3000);
    router.addLink(link);
    const frames = [0, 1, 2, 3].map((step) => ({ ...emptyHeader(FrameType.Data), group: 1, seq: 0, step, total: 1000, length: 1000, op: 1, dtype: 4, count: 1000 }));
    for (const h of frames) {
      router.place(link, h).fill(h.step + 1);
      router.arrived(link, h);
    }
    expect(calls).toEqual(['pause']);
    const got = [0, 1, 2, 3].map(() => new Uint8Array(1000));
    await Promise.all(got.map((d, step) => router.recv(FrameType.Data, 1, 1, 0, step, 0, d, 1)));
    expect(got.map((d) => d[999])).toEqual([1, 2, 3, 4]);
    expect(calls).toEqual(['pause', 'resume']);
  });
});

describe('onread parser and reducing receives', () => {
  it('frames split at any read boundary land in their destinations; large payloads are read in place', () => {
    // A stream of frames of mixed sizes (header-only, small, larger than the staging buffer).
    const sizes = [0, 5, 40, 1000, 70_000, 3, 200_000, 0, 17];
    const frames = sizes.map((len, i) => ({ h: { ...emptyHeader(FrameType.Data), step: i, total: len, length: len }, body: Buffer.from(Array.from({ length: len }, (_, j) => (i * 31 + j) & 255)) }));
    const stream = Buffer.concat(frames.flatMap((f) => [encodeHeader(f.h), f.body]));
    const dests = sizes.map((len) => new Uint8Array(len));
    const ended: number[] = [];
    let inPlace = 0;
    const p = new OnReadParser(1 << 20, {
      begin: (h: FrameHeader) => dests[h.step]!,
      end: (h: FrameHeader) => {
        ended.push(h.step);
        return true;
      },
    });
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed);
    const { buffer, callback } = p.onread;
    for (let at = 0; at < stream.length; ) {
      const buf = buffer();
      expect(buf.length).toBeGreaterThan(0);
      if (dests.some((d) => d.buffer === buf.buffer)) inPlace++;
      const k = Math.min(buf.length, stream.length - at, 1 + (rand() % 90_000));
      buf.set(stream.subarray(at, at + k));
      at += k;
      expect(callback(k, buf)).toBe(true);
    }
    expect(ended).toEqual(sizes.map((_, i) => i));
    dests.forEach((d, i) => expect(Buffer.from(d).equals(frames[i]!.body)).toBe(true));
    expect(inPlace).toBeGreaterThan(0);
  });

  it('a reducing receive folds fragments into its buffer, including ones that arrived before it was posted', async () => {
    const link = { peerRank: 1, pause() {}, resume() {} } as unknown as Link;
    const router = new Router(0, { groupName: String, onControl() {} });
    router.addLink(link);
    const frag = (offset: number, vals: number[]) => {
      const h = { ...emptyHeader(FrameType.Data), group: 1, seq: 0, step: 0, total: 16, offset, length: 8, op: 1, dtype: 1, count: 4 };
      router.place(link, h).set(new Uint8Array(new Float32Array(vals).buffer));
      router.arrived(link, h);
    };
    frag(0, [1, 2]); // early: before the receive is posted
    const dest = new Float32Array([10, 20, 30, 40]);
    const add = (d: Uint8Array, s: Uint8Array) => {
      const a = new Float32Array(d.buffer, d.byteOffset, d.length / 4);
      const b = new Float32Array(s.slice().buffer);
      for (let i = 0; i < a.length; i++) a[i]! += b[i]!;
    };
    const done = router.recv(FrameType.Data, 1, 1, 0, 0, 0, new Uint8Array(dest.buffer), 1, add);
    expect(Array.from(dest)).toEqual([11, 22, 30, 40]);
    frag(8, [3, 4]); // posted: lands in the link's staging buffer, then is added
    await done;
    expect(Array.from(dest)).toEqual([11, 22, 33, 44]);
  });
});

describe('WebSocket frames read by the link', () => {
  it.each([
    ['unmasked (server to client)', false, null],
    ['masked with a zero key (trusted link)', true, Buffer.alloc(4)],
    ['masked with a random key', true, Buffer.from([0x12, 0x9a, 0x5c, 0xe7])],
  ] as const)('%s: frames split at any read boundary land in their destinations, pings are answered', (_n, masked, key) => {
    const sizes = [0, 5, 40, 1000, 70_000, 3, 200_000, 0, 17];
    const frames = sizes.map((len, i) => ({ h: { ...emptyHeader(FrameType.Data), step: i, total: len, length: len }, body: Buffer.from(Array.from({ length: len }, (_, j) => (i * 31 + j) & 255)) }));
    const parts: Buffer[] = [];
    frames.forEach((f, i) => {
      const inner = Buffer.concat([encodeHeader(f.h), f.body]);
      parts.push(wsHeader(OP_BINARY, inner.length, key), key ? maskedCopy(inner, key, 0) : inner);
      if (i === 3) parts.push(wsHeader(OP_PING, 4, key), key ? maskedCopy(Buffer.from('ping'), key, 0) : Buffer.from('ping'));
    });
    const stream = Buffer.concat(parts);
    const dests = sizes.map((len) => new Uint8Array(len));
    const ended: number[] = [];
    const pings: string[] = [];
    let inPlace = 0;
    const r = new WsFrameReader(
      1 << 20,
      { begin: (h: FrameHeader) => dests[h.step]!, end: (h: FrameHeader) => (ended.push(h.step), true) },
      masked,
      { ping: (p) => pings.push(p.toString()), close() {} },
    );
    r.onError = (e) => {
      throw e;
    };
    let seed = 11;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed);
    const { buffer, callback } = r.onread;
    for (let at = 0; at < stream.length; ) {
      const buf = buffer();
      expect(buf.length).toBeGreaterThan(0);
      if (dests.some((d) => d.buffer === buf.buffer)) inPlace++;
      const k = Math.min(buf.length, stream.length - at, 1 + (rand() % 90_000));
      buf.set(stream.subarray(at, at + k));
      at += k;
      expect(callback(k, buf)).toBe(true);
    }
    expect(ended).toEqual(sizes.map((_, i) => i));
    dests.forEach((d, i) => expect(Buffer.from(d).equals(frames[i]!.body)).toBe(true));
    expect(pings).toEqual(['ping']);
    expect(inPlace).toBeGreaterThan(0);
  });

  it('an untrusted link (random masks) carries multi-MiB messages intact', async () => {
    const got = new Uint8Array(3 << 20);
    let arrived = 0;
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    const sink: FrameSink = {
      place: (_l, h) => got.subarray(h.offset, h.offset + h.length),
      arrived: (_l, h) => {
        arrived += h.length;
        if (arrived === got.length) done();
      },
      control() {},
    };
    const server = new WsTransport({ rank: 0, secret, sink, log: () => {} });
    const addr = await server.listen(() => {});
    const client = new WsTransport({ rank: 1, secret, sink: { place: (_l, h) => new Uint8Array(h.length), arrived() {}, control() {} }, trustedLink: false });
    cleanups.push(() => client.close(), () => server.close());
    const link = await client.connect(addr, 0);
    const msg = Buffer.from(Array.from({ length: got.length }, (_, i) => (i * 7 + 3) & 255));
    const copy = Buffer.from(msg);
    await link.send({ type: FrameType.Data, group: 1, seq: 0, step: 0, op: 1, dtype: 4, redop: 0, flags: 0, count: msg.length, aux: 0 }, msg);
    await all;
    expect(Buffer.from(got).equals(copy)).toBe(true);
    expect(msg.equals(copy)).toBe(true); // the sender's bytes are not masked in place
  });
});

const TRANSPORTS = { tcp: TcpTransport, ws: WsTransport } as const;

describe.each(['tcp', 'ws'] as const)('same-host links of the %s transport (Unix sockets)', (name) => {
  const Transport = TRANSPORTS[name];
  const header = (n: number) => ({ type: FrameType.Data, group: 1, seq: 0, step: 0, op: 1, dtype: 4, redop: 0, flags: 0, count: n, aux: 0 });
  /** A listener whose sink collects one message of `n` bytes; resolves with the bytes. */
  async function listener(n: number, opts: { localLinks?: boolean } = {}) {
    const got = new Uint8Array(n);
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    let arrived = 0;
    const sink: FrameSink = {
      place: (_l, h) => got.subarray(h.offset, h.offset + h.length),
      arrived: (_l, h) => {
        arrived += h.length;
        if (arrived === n) done();
      },
      control() {},
    };
    const links: Link[] = [];
    const server = new Transport({ rank: 0, secret, sink, log: () => {}, ...opts });
    const addr = await server.listen((l) => links.push(l));
    cleanups.push(() => server.close());
    return { addr, got, all, links };
  }
  async function sendFrom(addr: string, msg: Uint8Array, opts: { localLinks?: boolean } = {}): Promise<Link> {
    const client = new Transport({ rank: 1, secret, sink: { place: (_l, h) => new Uint8Array(h.length), arrived() {}, control() {} }, log: () => {}, ...opts });
    cleanups.unshift(() => client.close()); // before the listeners: their close waits for open connections
    const link = await client.connect(addr, 0);
    await link.send(header(msg.length), msg);
    return link;
  }
  const payload = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 13 + 5) & 255);

  it('ranks of one host and network namespace connect over a Unix socket, both ends', async () => {
    expect(localHostKey()).toMatch(/^[0-9a-f]{16}$/);
    const msg = payload(5 << 20);
    const l = await listener(msg.length);
    expect(splitLocal(l.addr).local?.key).toBe(localHostKey());
    const link = await sendFrom(l.addr, msg);
    await l.all;
    expect(Buffer.from(l.got).equals(msg)).toBe(true);
    expect(link.medium).toBe('unix');
    expect(l.links.map((x) => x.medium)).toEqual(['unix']);
  });

  it('either end can turn them off (WEBOMNI_LOCAL_LINKS=0 / localLinks: false): loopback TCP', async () => {
    const msg = payload(70_000);
    const a = await listener(msg.length, { localLinks: false });
    expect(splitLocal(a.addr).local).toBeNull();
    expect((await sendFrom(a.addr, msg)).medium).toBe('tcp');
    await a.all;
    const b = await listener(msg.length);
    expect((await sendFrom(b.addr, msg, { localLinks: false })).medium).toBe('tcp');
    await b.all;
    expect(Buffer.from(b.got).equals(msg)).toBe(true);
  });

  it('an endpoint of another host, or one that is gone, falls back to TCP', async () => {
    const msg = payload(70_000);
    const l = await listener(msg.length);
    const { tcp, local } = splitLocal(l.addr);
    // Another host (key differs): TCP without trying the socket.
    const otherHost = withLocal(tcp, { key: local!.key === '0'.repeat(16) ? '1'.repeat(16) : '0'.repeat(16), name: local!.name });
    expect((await sendFrom(otherHost, msg)).medium).toBe('tcp');
    await l.all;
    // This host, but nobody listens on that name: TCP after the failed connect.
    const gone = withLocal(tcp, { key: local!.key, name: 'webomni-1-000000000000' });
    const l2 = await listener(msg.length);
    const gone2 = withLocal(splitLocal(l2.addr).tcp, splitLocal(gone).local);
    expect((await sendFrom(gone2, msg)).medium).toBe('tcp');
    await l2.all;
    expect(Buffer.from(l2.got).equals(msg)).toBe(true);
    // A malformed local part is ignored, not trusted.
    expect(splitLocal(`${tcp}+local:zz:../etc`)).toEqual({ tcp, local: null });
  });

  // ws only: its listeners are HTTP servers.
  if (name === 'ws') it('plain HTTP requests on either endpoint get 426 and the listener keeps serving', async () => {
    const msg = payload(70_000);
    const l = await listener(msg.length);
    const { tcp, local } = splitLocal(l.addr);
    const { host, port } = parseAddress(tcp);
    const get = (o: http.RequestOptions) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        http.get({ ...o, path: '/', agent: false }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        }).on('error', reject);
      });
    for (const r of [await get({ host, port }), await get({ socketPath: `\0${local!.name}` })]) {
      expect(r.status).toBe(426);
      expect(r.body).toMatch(/WebSocket upgrades only/);
    }
    expect((await sendFrom(l.addr, msg)).medium).toBe('unix');
    await l.all;
    expect(Buffer.from(l.got).equals(msg)).toBe(true);
  });
});

describe('environment contracts', () => {
  it('reads launcher/torchrun, Open MPI and Slurm variables, in that order of precedence', () => {
    expect(readRankEnv({ RANK: '3', WORLD_SIZE: '8', LOCAL_RANK: '1', MASTER_ADDR: '10.0.0.1', MASTER_PORT: '1234' })).toEqual({ rank: 3, worldSize: 8, localRank: 1, masterAddr: '10.0.0.1', masterPort: 1234, source: 'env' });
    expect(readRankEnv({ OMPI_COMM_WORLD_RANK: '2', OMPI_COMM_WORLD_SIZE: '4', OMPI_COMM_WORLD_LOCAL_RANK: '0', SLURM_PROCID: '9' })).toMatchObject({ rank: 2, worldSize: 4, localRank: 0, source: 'openmpi', masterPort: 29500 });
    expect(readRankEnv({ SLURM_PROCID: '5', SLURM_NTASKS: '6', SLURM_LOCALID: '1', MASTER_ADDR: 'node1' })).toMatchObject({ rank: 5, worldSize: 6, localRank: 1, masterAddr: 'node1', source: 'slurm' });
    expect(readRankEnv({})).toBeNull();
    expect(() => readRankEnv({ RANK: '4', WORLD_SIZE: '4' })).toThrow(/rank 4 is outside the world of 4 ranks/);
    expect(() => readRankEnv({ RANK: '1' })).toThrow(/RANK and WORLD_SIZE must be set together/);
    expect(() => readJobSecret({})).toThrow(/no job secret/);
    expect(readJobSecret({ WEBOMNI_JOB_SECRET: 'ab'.repeat(16) })).toEqual(Buffer.alloc(16, 0xab));
  });
});

describe('ws links: two connections, one per direction', () => {
  const header = (n: number, seq: number) => ({ type: FrameType.Data, group: 1, seq, step: 0, op: 1, dtype: 4, redop: 0, flags: 0, count: n, aux: 0 });
  const payload = (n: number, salt: number) => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = (i * 29 + salt) & 255;
    return b;
  };
  /** A sink collecting one message per seq; `arrival(seq)` resolves when it is complete. */
  function collector() {
    const msgs = new Map<number, Uint8Array>();
    const waiters = new Map<number, () => void>();
    const sink: FrameSink = {
      place: (_l, h) => {
        let m = msgs.get(h.seq);
        if (!m) msgs.set(h.seq, (m = new Uint8Array(h.total)));
        return m.subarray(h.offset, h.offset + h.length);
      },
      arrived: (_l, h) => {
        if (h.offset + h.length === h.total) waiters.get(h.seq)?.();
      },
      control() {},
    };
    return { sink, msgs, arrival: (seq: number) => new Promise<void>((r) => waiters.set(seq, r)) };
  }
  async function server(opts: { handshakeMs?: number } = {}) {
    const c = collector();
    const reasons: string[] = [];
    const t = new WsTransport({ rank: 0, secret, sink: c.sink, log: () => {}, localLinks: false, ...opts });
    t.on('reject', (r: string) => reasons.push(r));
    let onAccept!: (l: Link) => void;
    const accepted = new Promise<Link>((r) => (onAccept = r));
    const addr = await t.listen((l) => onAccept(l));
    cleanups.push(() => t.close());
    return { ...c, t, addr, accepted, reasons };
  }
  /** One authenticated connection of a link, opened by hand. */
  async function half(addr: string, dir: string, pair: string): Promise<WebSocket> {
    const { host, port } = parseAddress(addr);
    const ws = new WebSocket(`ws://${host}:${port}/link?dir=${dir}&pair=${pair}`, { perMessageDeflate: false });
    const auth = authenticateWs(ws, 'connect', { rank: 1, secret, sink: collector().sink, replay: new ReplayGuard(), expectPeerRank: 0 });
    await auth;
    cleanups.unshift(() => ws.terminate());
    return ws;
  }
  const waitFor = async (cond: () => boolean, ms = 3000) => {
    for (const end = Date.now() + ms; !cond() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
  };

  it('each side writes on one connection and reads the other; both directions carry data at once', async () => {
    const s = await server();
    const c = collector();
    const client = new WsTransport({ rank: 1, secret, sink: c.sink, log: () => {}, localLinks: false });
    cleanups.unshift(() => client.close());
    const link = await client.connect(s.addr, 0);
    const acc = await s.accepted;
    type Socks = { socket: net.Socket; rxSocket: net.Socket };
    const [ls, as] = [link as unknown as Socks, acc as unknown as Socks];
    expect(ls.socket).not.toBe(ls.rxSocket);
    // The connector's write connection is the acceptor's read connection, and the other way round.
    expect(ls.socket.localPort).toBe(as.rxSocket.remotePort);
    expect(ls.rxSocket.localPort).toBe(as.socket.remotePort);
    const up = payload(9 << 20, 1);
    const down = payload(7 << 20, 2);
    const arrived = [s.arrival(1), c.arrival(2)];
    await Promise.all([link.send(header(up.length, 1), up), acc.send(header(down.length, 2), down)]);
    await Promise.all(arrived);
    expect(Buffer.from(s.msgs.get(1)!).equals(Buffer.from(up))).toBe(true);
    expect(Buffer.from(c.msgs.get(2)!).equals(Buffer.from(down))).toBe(true);
  });

  it('refuses a request for anything but a link half, before authenticating', async () => {
    const s = await server();
    const { host, port } = parseAddress(s.addr);
    const ws = new WebSocket(`ws://${host}:${port}/other`, { perMessageDeflate: false });
    ws.on('error', () => {});
    await new Promise((r) => ws.once('close', r));
    expect(s.reasons.join('\n')).toMatch(/unexpected upgrade request "\/other"/);
  });

  it('drops a half whose other half never comes, and refuses two halves of one direction', async () => {
    const s = await server({ handshakeMs: 300 });
    const lone = await half(s.addr, 'fwd', '0123456789abcdef');
    const closed = new Promise((r) => lone.once('close', r));
    await closed;
    expect(s.reasons.join('\n')).toMatch(/rank 1 opened one connection of a link but not the other within 300 ms/);
    await half(s.addr, 'rev', 'aaaaaaaaaaaaaaaa');
    await half(s.addr, 'rev', 'aaaaaaaaaaaaaaaa');
    await waitFor(() => s.reasons.length > 1);
    expect(s.reasons[1]).toMatch(/rank 1 opened two rev connections for one link/);
  });
});
