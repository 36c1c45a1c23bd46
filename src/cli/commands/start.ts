// `webomni start`: the main job run by `npm start` on the built-in default config:
// train the omnimodal MoE model (configs/omni-fashion-tiny.yaml) on the committed data and
// report held-out caption / spoken-word accuracy, text loss and throughput. Any LM or omni
// config can be given instead. `webomni demo` keeps the small spiral demo.
import type { Command } from 'commander';
import { collectOverrides, loadAnyConfig, printOmniSummary } from './train.ts';

export const DEFAULT_CONFIG = 'configs/omni-fashion-tiny.yaml';

export function register(program: Command): void {
  program
    .command('start')
    .description(`run the built-in default job: train ${DEFAULT_CONFIG} and report what it learned`)
    .option('-c, --config <file>', 'config to run instead of the default', DEFAULT_CONFIG)
    .option('--fresh', 'ignore checkpoints of an earlier run of the same config')
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .action(async (opts: { config: string; fresh?: boolean }, cmd: Command) => {
      const any = await loadAnyConfig(opts.config, collectOverrides(cmd.args));
      const { initDevice } = await import('../../node.ts');
      const device = await initDevice();
      console.log(`webomni: training '${any.cfg.name}' on ${device.adapter.description || device.adapter.vendor} (${device.adapter.architecture || 'GPU'})`);
      // A finished earlier run is not retrained: resuming finds step == steps and only reports.
      const runOpts = { resume: !opts.fresh };
      try {
        if (any.kind === 'omni') {
          const { runOmni } = await import('../../train/omni.ts');
          const r = await runOmni(device, any.cfg, runOpts);
          printOmniSummary(r.summary, r.run.runDir);
          r.run.trainer.dispose();
          return;
        }
        const { runLm } = await import('../../train/lm.ts');
        const { generate } = await import('../../models/index.ts');
        const r = await runLm(device, any.cfg, runOpts);
        const { model, tokenizer } = r.run;
        const prompt = 'The jury said';
        const ids = await generate(model, [...(tokenizer.bosId !== undefined ? [tokenizer.bosId] : []), ...tokenizer.encode(prompt)], {
          maxNewTokens: 40,
          temperature: 0.8,
          topK: 40,
          seed: any.cfg.seed,
          stopIds: tokenizer.eosId !== undefined ? [tokenizer.eosId] : [],
        });
        console.log('');
        console.log(`validation loss   ${r.valLoss?.toFixed(4) ?? '—'}`);
        console.log(`train loss        ${r.lastLoss.toFixed(4)}`);
        console.log(`tokens/s          ${Math.round(r.tokensPerSecond)}`);
        console.log(`sample            ${prompt}${tokenizer.decode(ids)}`);
        console.log(`run directory     ${r.run.runDir} (metrics.jsonl, checkpoints/)`);
        r.run.trainer.dispose();
      } finally {
        device.destroy();
      }
    });

  program
    .command('demo')
    .description('train a small MLP on the three-spirals problem (a quick check that training works)')
    .option('--steps <n>', 'training steps', (v) => parseInt(v, 10), 600)
    .option('--hidden <n>', 'hidden width', (v) => parseInt(v, 10), 64)
    .option('--lr <x>', 'learning rate', parseFloat, 0.01)
    .option('--seed <n>', 'random seed', (v) => parseInt(v, 10), 0)
    .action(async (opts: { steps: number; hidden: number; lr: number; seed: number }) => {
      const { initDevice } = await import('../../node.ts');
      const { trainSpirals } = await import('../../train/spiral-demo.ts');
      const device = await initDevice();
      try {
        const r = await trainSpirals(device, { ...opts, pointsPerClass: 200, log: (l) => console.log(l) });
        if (!(r.loss < 0.5)) process.exitCode = 1;
      } finally {
        device.destroy();
      }
    });
}
