// `webomni train --config <file> [--resume [dir]] [--<key.path> <value> ...]`
import type { Command } from 'commander';
import { readFileSync, existsSync } from 'node:fs';
import { applyOverrides, parseConfigText, validateConfig, ConfigError } from '../../train/config-io.ts';
import { RunSchema, type RunConfig } from '../../train/schema.ts';
import type { OmniRunConfig } from '../../train/omni.ts';

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

function readRaw(path: string, overrides: Array<[string, string]>): Record<string, unknown> {
  if (!existsSync(path)) throw new ConfigError(`config file not found: ${path}`);
  return applyOverrides(parseConfigText(readFileSync(path, 'utf8'), path), overrides);
}

export function loadRunConfig(path: string, overrides: Array<[string, string]>): RunConfig {
  return validateConfig(RunSchema, readRaw(path, overrides), path);
}

/** An omnimodal config has `model.llm` (+ `model.encoders`); a text LM config has the LLM at `model`. */
export type AnyRunConfig = { kind: 'lm'; cfg: RunConfig } | { kind: 'omni'; cfg: OmniRunConfig };

export async function loadAnyConfig(path: string, overrides: Array<[string, string]>): Promise<AnyRunConfig> {
  const raw = readRaw(path, overrides);
  const model = raw.model as Record<string, unknown> | undefined;
  if (model && typeof model === 'object' && 'llm' in model) {
    const { OmniRunSchema } = await import('../../train/omni.ts');
    return { kind: 'omni', cfg: validateConfig(OmniRunSchema, raw, path) };
  }
  return { kind: 'lm', cfg: validateConfig(RunSchema, raw, path) };
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
      const any = await loadAnyConfig(opts.config, collectOverrides(cmd.args));
      const { initDevice } = await import('../../node.ts');
      const device = await initDevice();
      console.log(`webomni train '${any.cfg.name}' on ${device.adapter.description || device.adapter.vendor}`);
      const runOpts = { resume: opts.resume, stopAtStep: opts.stopAtStep, profileSteps: opts.profile };
      try {
        if (any.kind === 'omni') {
          const { runOmni } = await import('../../train/omni.ts');
          const r = await runOmni(device, any.cfg, runOpts);
          printOmniSummary(r.summary, r.run.runDir);
          r.run.trainer.dispose();
        } else {
          const { runLm } = await import('../../train/lm.ts');
          const r = await runLm(device, any.cfg, runOpts);
          console.log(
            `done: step ${r.step}, train loss ${r.lastLoss.toFixed(4)}, validation loss ${r.valLoss?.toFixed(4) ?? '—'}, ` +
              `${Math.round(r.tokensPerSecond)} tokens/s, ${r.seconds.toFixed(1)} s`,
          );
          r.run.trainer.dispose();
        }
      } finally {
        device.destroy();
      }
    });
}

export function printOmniSummary(s: import('../../train/omni.ts').OmniSummary, runDir: string): void {
  const pct = (v: number | null) => (v === null ? '—' : `${(100 * v).toFixed(1)}%`);
  console.log('');
  console.log(`caption accuracy (held-out images)   ${pct(s.captionAccuracy)}`);
  console.log(`spoken-word accuracy (held-out)      ${pct(s.speechAccuracy)}`);
  console.log(`text validation loss                 ${s.textValLoss?.toFixed(4) ?? '—'}`);
  console.log(`validation loss (all sources)        ${s.valLoss?.toFixed(4) ?? '—'}`);
  console.log(`tokens/s                             ${Math.round(s.tokensPerSecond)}`);
  console.log(`wall time                            ${s.wallSeconds.toFixed(0)} s`);
  console.log(`report                               ${runDir}/report.html (summary.json, metrics.jsonl)`);
}
