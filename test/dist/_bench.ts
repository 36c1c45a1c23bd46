import { initFromEnv } from '/work/main/src/dist/init.ts';
const w = await initFromEnv();
const sizes = [16 << 20, 64 << 20];
for (const bytes of sizes) {
  const buf = new Float32Array(bytes / 4);
  await w.allReduce(buf); await w.allReduce(buf);
  const it = 5;
  await w.barrier();
  const t0 = performance.now();
  for (let i = 0; i < it; i++) await w.allReduce(buf);
  const dt = (performance.now() - t0) / it / 1000;
  const n = w.size;
  if (w.rank === 0) console.log(`allReduce ${bytes >> 20} MiB: ${(dt * 1000).toFixed(1)} ms busbw ${((bytes / dt) * 2 * (n - 1) / n / 1e9).toFixed(2)} GB/s`);
}
await w.shutdown();
