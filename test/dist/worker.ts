// One rank of a multi-process test: `node --import tsx test/dist/worker.ts <scenario>`.
// Identity and store come from the environment (as under `webomni launch`);
// prints one line `RESULT <json>` and exits 0, or `ERROR <json>` and exits 1.
import { initFromEnv } from '../../src/dist/init.ts';
import { runScenario } from './run-scenario.ts';

const scenario = process.argv[2] ?? 'collectives';
const t0 = Date.now();
try {
  const world = await initFromEnv();
  const report = await runScenario(scenario, world);
  // What each link runs over (unix, tcp, ws), so tests can check which path they exercised.
  const media = [...world.comm.links.values()].map((l) => l.medium);
  process.stdout.write(`RESULT ${JSON.stringify({ ...report, media })}\n`);
  await world.shutdown();
  process.exit(0);
} catch (e) {
  const err = e as Error & { failedRank?: number };
  process.stdout.write(`ERROR ${JSON.stringify({ rank: Number(process.env.RANK), name: err.name, message: err.message, failedRank: err.failedRank, elapsedMs: Date.now() - t0 })}\n`);
  process.exit(1);
}
