// The in-process transport's shared-memory rings, on one thread (two ranks as
// async tasks): payloads that wrap around the ring's end, frames sent before
// the peer's ring arrived, order between queued data and control messages,
// and backpressure when the reader stops.
import { describe, expect, it } from 'vitest';
import { FrameType } from '../../transports/frame.ts';
import { InProcLink, InProcTransport, createInProcFabric } from '../../transports/inproc.ts';
import type { FrameSink, Link, TransportOptions } from '../../transports/types.ts';

const header = (n: number, seq: number) => ({ type: FrameType.Data, group: 1, seq, step: 0, op: 1, dtype: 4, redop: 0, flags: 0, count: n, aux: 0 });
function payload(n: number, salt: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + salt * 7 + 1) & 255;
  return b;
}

/** What the receiving rank saw, in arrival order. */
interface Seen {
  msgs: Map<number, Uint8Array>;
  order: string[];
  /** Bytes of each message arrived so far. */
  bytes: Map<number, number>;
  done: Map<number, () => void>;
}

async function pair(opts: Partial<TransportOptions> = {}) {
  const seen: Seen = { msgs: new Map(), order: [], bytes: new Map(), done: new Map() };
  const sink: FrameSink = {
    place: (_l, h) => {
      let m = seen.msgs.get(h.seq);
      if (!m) seen.msgs.set(h.seq, (m = new Uint8Array(h.total)));
      return m.subarray(h.offset, h.offset + h.length);
    },
    arrived: (_l, h) => {
      seen.bytes.set(h.seq, (seen.bytes.get(h.seq) ?? 0) + h.length);
      if (h.offset + h.length === h.total) {
        seen.order.push(`data ${h.seq}`);
        seen.done.get(h.seq)?.();
      }
    },
    control: (_l, body) => seen.order.push(`control ${JSON.stringify(body)} after ${seen.bytes.get(1) ?? 0} bytes of 1`),
  };
  const quiet: FrameSink = { place: (_l, h) => new Uint8Array(h.length), arrived() {}, control() {} };
  const [p0, p1] = createInProcFabric(2);
  const t0 = new InProcTransport({ rank: 0, secret: new Uint8Array(0), sink, ...opts }, p0!);
  const t1 = new InProcTransport({ rank: 1, secret: new Uint8Array(0), sink: quiet, ...opts }, p1!);
  let accepted!: Link;
  const got = new Promise<void>((r) => t0.listen((l) => ((accepted = l), r())));
  const sender = (await t1.connect('inproc:0', 0)) as InProcLink;
  await got;
  const arrival = (seq: number) => new Promise<void>((r) => seen.done.set(seq, r));
  return { seen, sender, receiver: accepted, arrival, close: () => Promise.all([t1.close(), t0.close()]) };
}

describe('in-process links (shared-memory rings)', () => {
  it('carries messages of every size intact, wrapping around the ring, in order', async () => {
    // 3 MiB + 5 frames against a ring of 2 × maxFrame: frames straddle its end.
    const { seen, sender, arrival, close } = await pair({ chunkBytes: (3 << 20) + 5, maxFrame: (3 << 20) + 4096 });
    const sizes = [0, 1, 70_000, (3 << 20) + 5, 11 << 20, 1, (7 << 20) + 3, 25 << 20, 4096];
    const round = async (base: number) => {
      const msgs = sizes.map((n, i) => payload(n, base + i));
      const arrived = sizes.map((_, i) => arrival(base + i));
      // Sent back to back, not awaited one by one (their frames interleave).
      await Promise.all(msgs.map((m, i) => sender.send(header(m.length, base + i), m)));
      await Promise.all(arrived);
      for (let i = 0; i < sizes.length; i++) expect(Buffer.from(seen.msgs.get(base + i)!).equals(Buffer.from(msgs[i]!)), `message ${base + i} (${sizes[i]} bytes)`).toBe(true);
    };
    // Right after connecting, the peer's ring has not arrived: the first frames are transferred copies.
    await round(0);
    const first = { ...sender.sent };
    expect(first.transferred).toBeGreaterThan(0);
    // Once it has, every payload goes through the ring (~47 MiB through 6 MiB: it wraps many times).
    await round(100);
    expect(sender.sent.transferred).toBe(first.transferred);
    expect(sender.sent.ring - first.ring).toBe(1 + 1 + 1 + 4 + 1 + 3 + 9 + 1);
    expect(seen.order.length).toBe(2 * sizes.length);
    await close();
  });

  it('a stopped reader holds the sender at the ring size; a control message waits behind queued frames', async () => {
    const { seen, sender, receiver, arrival, close } = await pair();
    // Let the ring arrive, then stop reading.
    const first = arrival(0);
    await sender.send(header(16, 0), payload(16, 0));
    await first;
    await new Promise((r) => setTimeout(r, 20));
    receiver.pause();
    const big = payload(40 << 20, 1);
    let sent = false;
    const send = sender.send(header(big.length, 1), big).then(() => (sent = true));
    sender.sendControl({ sent: 'during 1' });
    await new Promise((r) => setTimeout(r, 300));
    expect(sent).toBe(false); // 40 MiB cannot all be in an 8 MiB ring
    expect(seen.order).toEqual(['data 0']);
    const last = arrival(1);
    receiver.resume();
    await send;
    await last;
    await new Promise((r) => setTimeout(r, 20));
    expect(Buffer.from(seen.msgs.get(1)!).equals(Buffer.from(big))).toBe(true);
    expect(sender.sent).toEqual({ ring: 40 + 1, transferred: 1 }); // 1 MiB frames
    // The ring holds 8 of the 1 MiB frames; the 9th waits for room, and the
    // control message, sent then, waits behind it (nothing overtakes a queued frame).
    expect(seen.order).toEqual(['data 0', `control {"sent":"during 1"} after ${9 << 20} bytes of 1`, 'data 1']);
    await close();
  });
});
