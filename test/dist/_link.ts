import { TcpTransport } from '/work/main/transports/tcp.ts';
import { FrameType } from '/work/main/transports/frame.ts';
import type { FrameSink, Link } from '/work/main/transports/types.ts';
import { fork } from 'node:child_process';
const secret = new Uint8Array(32).fill(7);
const total = 512 << 20;
let dest = new Uint8Array(64 << 20); let off = 0;
if (process.argv[2] !== 'child') {
  let got = 0; let t0 = 0;
  const sink: FrameSink = { place: (_l, h) => { if (process.env.FRESH && off + h.length > dest.length) { dest = new Uint8Array(64 << 20); off = 0; } const r = dest.subarray(off % dest.length, off % dest.length + h.length); off += h.length; return r; }, arrived: (_l, h) => { got += h.length; if (got >= total) { console.log('recv', (total / ((performance.now() - t0) / 1000) / 1e9).toFixed(2), 'GB/s'); process.exit(0); } }, control: () => { t0 = performance.now(); } };
  const t = new TcpTransport({ rank: 0, secret, sink });
  const addr = await t.listen(() => {});
  fork(process.argv[1]!, ['child', addr], { execArgv: ['--import', 'tsx'] });
} else {
  const sink: FrameSink = { place: (_l, h) => dest.subarray(0, h.length), arrived: () => {}, control: () => {} };
  const t = new TcpTransport({ rank: 1, secret, sink });
  const link: Link = await t.connect(process.argv[3]!, 0);
  const buf = new Uint8Array(64 << 20);
  link.sendControl({ go: 1 });
  for (let s = 0; s < total; s += buf.length) await link.send({ type: FrameType.P2P, group: 0, seq: s, step: 0, op: 0, dtype: 0, redop: 0, flags: 0, count: 0, aux: 0 }, buf);
}
