// `webomni start`: the main job run by `npm start` on the built-in default config.
// Until the training workflow lands this is the spiral-classification demo.
import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('start')
    .description('run the built-in default job (currently: train an MLP on the three-spirals problem)')
    .option('--steps <n>', 'training steps', (v) => parseInt(v, 10), 600)
    .option('--hidden <n>', 'hidden width', (v) => parseInt(v, 10), 64)
    .option('--lr <x>', 'learning rate', parseFloat, 0.01)
    .option('--seed <n>', 'random seed', (v) => parseInt(v, 10), 0)
    .action(async (opts: { steps: number; hidden: number; lr: number; seed: number }) => {
      const { initDevice } = await import('../../node.ts');
      const { trainSpirals } = await import('../../train/spiral-demo.ts');
      const device = await initDevice();
      console.log(`webomni: ${device.adapter.description || device.adapter.vendor} (${device.adapter.architecture || 'unknown'})`);
      try {
        const r = await trainSpirals(device, { ...opts, pointsPerClass: 200, log: (l) => console.log(l) });
        if (!(r.loss < 0.5)) process.exitCode = 1;
      } finally {
        device.destroy();
      }
    });
}
