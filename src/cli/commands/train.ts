// `webomni train --config <file> [--resume [dir]] [--<key.path> <value> ...]`
import type { Command } from 'commander';
import { readFileSync, existsSync } from 'node:fs';
import { applyOverrides, parseConfigText, validateConfig, ConfigError } from '../../train/config-io.ts';
import { RunSchema, type RunConfig } from '../../train/schema.ts';

/** Split `--a.b value` pairs (unknown to commander) into overrides. */
export function collectOverrides(args: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith('--')) throw new ConfigError(`unexpected argument '${a}' (overrides look like --train.lr 3e-4)`);
    const eq = a.indexOf('=');
    if (eq > 0) out.push([a.slice(2, eq), a.slice(eq + 1)]);
    else {
      if (i + 1 >= args.length) throw new ConfigError(`override ${a} needs a value`);
      out.push([a.slice(2), args[++i]]);
    }
  }
  return out;
}

export function loadRunConfig(path: string, overrides: Array<[string, string]>): RunConfig {
  if (!existsSync(path)) throw new ConfigError(`config file not found: ${path}`);
  const raw = parseConfigText(readFileSync(path, 'utf8'), path);
  return validateConfig(RunSchema, applyOverrides(raw, overrides), path);
}

export function register(program: Command): void {
  program
    .command('train')
    .description('train a model from a config file (YAML or JSON); dotted overrides like --train.lr 3e-4')
    .requiredOption('-c, --config <file>', 'run config (.yaml, .yml or .json)')
    .option('--resume [checkpoint]', 'resume from the latest complete checkpoint of the run, or from the given directory')
    .option('--profile <steps>', 'time every kernel with GPU timestamps over this many steps and print a table', (v) => parseInt(v, 10))
    .option('--stop-at-step <n>', 'stop after this step with a checkpoint (continue later with --resume)', (v) => parseInt(v, 10))
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .action(async (opts: { config: string; resume?: string | boolean; stopAtStep?: number; profile?: number }, cmd: Command) => {
      const cfg = loadRunConfig(opts.config, collectOverrides(cmd.args));
      const { initDevice } = await import('../../node.ts');
      const { runLm } = await import('../../train/lm.ts');
      const device = await initDevice();
      console.log(`webomni train '${cfg.name}' on ${device.adapter.description || device.adapter.vendor}`);
      try {
        const r = await runLm(device, cfg, { resume: opts.resume, stopAtStep: opts.stopAtStep, profileSteps: opts.profile });
        console.log(
          `done: step ${r.step}, train loss ${r.lastLoss.toFixed(4)}, validation loss ${r.valLoss?.toFixed(4) ?? '—'}, ` +
            `${Math.round(r.tokensPerSecond)} tokens/s, ${r.seconds.toFixed(1)} s`,
        );
        r.run.trainer.dispose();
      } finally {
        device.destroy();
      }
    });
}
