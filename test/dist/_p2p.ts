import { initFromEnv } from '/work/main/src/dist/init.ts';
const w = await initFromEnv();
const bytes = 64 << 20;
const buf = new Uint8Array(bytes);
const dst = new Uint8Array(bytes);
for (const bi of [false, true]) {
  await w.barrier();
  const t0 = performance.now();
  const it = 10;
  for (let i = 0; i < it; i++) {
    const ops = [];
    if (w.rank === 0 || bi) ops.push(w.send(buf, 1 - w.rank));
    if (w.rank === 1 || bi) ops.push(w.recv(dst, 1 - w.rank));
    await Promise.all(ops);
  }
  await w.barrier();
  const dt = (performance.now() - t0) / 1000;
  if (w.rank === 0) console.log(bi ? 'bidir' : 'unidir', ((it * bytes) / dt / 1e9).toFixed(2), 'GB/s');
}
await w.shutdown();
