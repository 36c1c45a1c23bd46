// Ranks as threads of one process over the in-process transport:
// `node --import tsx test/dist/threads.ts <scenario> <nranks>`. The main thread
// serves the store; each worker thread is one rank. Prints one RESULT line per rank.
import { randomBytes } from 'node:crypto';
import { Worker, isMainThread, workerData, type MessagePort } from 'node:worker_threads';
import { createInProcFabric, type InProcLink } from '../../transports/inproc.ts';
import { initProcessGroup } from '../../src/dist/init.ts';
import { StoreServer } from '../../src/dist/store.ts';
import { runScenario } from './run-scenario.ts';

interface Data {
  rank: number;
  worldSize: number;
  scenario: string;
  store: string;
  secret: Uint8Array;
  ports: Map<number, MessagePort>;
}

if (isMainThread) {
  const scenario = process.argv[2] ?? 'collectives';
  const n = Number(process.argv[3] ?? 2);
  const secret = randomBytes(32);
  const server = new StoreServer({ secret });
  const store = await server.start();
  const fabric = createInProcFabric(n);
  let failed = 0;
  await Promise.all(
    fabric.map(
      (ports, rank) =>
        new Promise<void>((resolve) => {
          const data: Data = { rank, worldSize: n, scenario, store, secret, ports };
          // Worker threads do not inherit tsx's loader: register it first, then load this file.
          const boot = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(import.meta.url)}); })`;
          const w = new Worker(boot, { eval: true, workerData: data, transferList: [...ports.values()] });
          w.on('error', (e) => {
            failed++;
            process.stdout.write(`ERROR ${JSON.stringify({ rank, message: e.message })}\n`);
          });
          w.on('exit', (code) => {
            if (code !== 0) failed++;
            resolve();
          });
        }),
    ),
  );
  await server.close();
  process.exit(failed ? 1 : 0);
} else {
  const d = workerData as Data;
  const world = await initProcessGroup({ rank: d.rank, worldSize: d.worldSize, secret: d.secret, storeAddress: d.store, transport: 'inproc', inprocPorts: d.ports });
  const report = await runScenario(d.scenario, world);
  // Payload frames each link sent through the peer's shared ring and as transferred copies.
  const sent = [...world.comm.links.values()].map((l) => (l as InProcLink).sent);
  process.stdout.write(`RESULT ${JSON.stringify({ ...report, sent })}\n`);
  await world.shutdown();
}
