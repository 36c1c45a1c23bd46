// `webomni launch`: run N local ranks of a distributed job (and take part in
// a multi-node one); `webomni comm-check`: a quick all-reduce across the job,
// to verify a launch setup end to end.
import type { Command } from 'commander';

function int(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`"${v}" is not an integer`);
  return n;
}

export function register(program: Command): void {
  program
    .command('launch')
    .description('spawn N local ranks of a distributed job: webomni launch --nproc N [--nnodes M --node-rank R --master ADDR:PORT] -- <webomni command | script.ts>')
    .requiredOption('--nproc <n>', 'ranks to start on this node', int)
    .option('--nnodes <m>', 'number of nodes', int, 1)
    .option('--node-rank <r>', 'this node\'s index', int, 0)
    .option('--master <addr:port>', 'rendezvous store address (served by node 0)', '127.0.0.1:0')
    .option('--transport <name>', 'peer transport: tcp, ws', 'tcp')
    .option('--host <addr>', 'interface the ranks listen on (default: loopback, or the one that reaches --master)')
    .argument('<command...>', 'what each rank runs (after --)')
    .allowUnknownOption()
    .action(async (command: string[], opts: { nproc: number; nnodes: number; nodeRank: number; master: string; transport: string; host?: string }) => {
      const { launch } = await import('../../dist/launcher.ts');
      process.exitCode = await launch({ ...opts, command });
    });

  program
    .command('comm-check')
    .description('all-reduce across the job (run under `webomni launch` or a scheduler) and verify the result')
    .option('--mib <n>', 'all-reduce size in MiB', Number, 4)
    .action(async (opts: { mib: number }) => {
      const { initFromEnv } = await import('../../dist/init.ts');
      const world = await initFromEnv();
      const n = Math.max(1, Math.floor((opts.mib * 1024 * 1024) / 4));
      const buf = new Float32Array(n).fill(world.rank + 1);
      const t0 = performance.now();
      await world.allReduce(buf);
      const ms = performance.now() - t0;
      const want = (world.size * (world.size + 1)) / 2;
      const ok = buf.every((v) => v === want);
      // Which links this rank has, e.g. "links: 1 unix, 2 tcp" (unix: same-host peers of a tcp job).
      const media = new Map<string, number>();
      for (const l of world.comm.links.values()) media.set(l.medium, (media.get(l.medium) ?? 0) + 1);
      const links = [...media].map(([m, k]) => `${k} ${m}`).join(', ') || 'none';
      console.log(`comm-check rank ${world.rank}/${world.size}: all-reduce of ${opts.mib} MiB ${ok ? 'ok' : 'WRONG'} (${ms.toFixed(1)} ms; links: ${links})`);
      await world.barrier();
      await world.shutdown();
      if (!ok) process.exitCode = 1;
    });
}
