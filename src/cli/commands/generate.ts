// `webomni generate --checkpoint <run or checkpoint dir> --prompt "…"`: sample from a
// trained language model with a KV cache.
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

export async function resolveCheckpoint(path: string): Promise<string> {
  if (existsSync(join(path, 'manifest.json'))) return path;
  const { CheckpointManager } = await import('../../checkpoint/manager.ts');
  const under = existsSync(join(path, 'checkpoints')) ? join(path, 'checkpoints') : path;
  const latest = await new CheckpointManager(under).latest();
  if (!latest) throw new Error(`no complete checkpoint found in ${path}`);
  return latest;
}

export function register(program: Command): void {
  program
    .command('generate')
    .description('generate text from a trained checkpoint')
    .requiredOption('--checkpoint <dir>', 'a checkpoint directory, or a run directory (its latest checkpoint)')
    .option('--prompt <text>', 'text to continue', '')
    .option('--max-tokens <n>', 'tokens to generate', (v) => parseInt(v, 10), 60)
    .option('--temperature <t>', 'sampling temperature (0 = greedy)', parseFloat, 0.8)
    .option('--top-k <k>', 'keep the k most likely tokens', (v) => parseInt(v, 10), 40)
    .option('--top-p <p>', 'nucleus sampling threshold', parseFloat, 0.95)
    .option('--seed <n>', 'sampling seed', (v) => parseInt(v, 10), 0)
    .action(async (opts: { checkpoint: string; prompt: string; maxTokens: number; temperature: number; topK: number; topP: number; seed: number }) => {
      const dir = await resolveCheckpoint(opts.checkpoint);
      const { initDevice } = await import('../../node.ts');
      const { loadCheckpoint } = await import('../../checkpoint/manager.ts');
      const { assignParameters } = await import('../../checkpoint/tensors.ts');
      const { loadTokenizer } = await import('../../data/node.ts');
      const { RunSchema } = await import('../../train/schema.ts');
      const { validateConfig } = await import('../../train/config-io.ts');
      const { decoderConfig } = await import('../../train/lm.ts');
      const { DecoderLM, generate } = await import('../../models/index.ts');
      const device = await initDevice();
      try {
        const ck = await loadCheckpoint(dir);
        const cfg = validateConfig(RunSchema, (ck.manifest.state as { config?: unknown }).config, `${dir}/manifest.json (config)`);
        const tokPath = [join(dirname(dirname(dir)), 'tokenizer.json'), cfg.tokenizer.path].find((p) => p && existsSync(p));
        if (!tokPath) throw new Error(`no tokenizer.json next to the run of ${dir}`);
        const tokenizer = loadTokenizer(tokPath);
        const model = new DecoderLM(decoderConfig(cfg, tokenizer.vocabSize));
        assignParameters(model.namedParameters(), ck.tensors.model, (n, t) => model.setParam(n, t), { source: `${dir}/model.safetensors` });
        const bos = tokenizer.bosId;
        const prompt = [...(bos !== undefined ? [bos] : []), ...tokenizer.encode(opts.prompt)];
        process.stdout.write(opts.prompt);
        const ids: number[] = [];
        let printed = '';
        await generate(model, prompt, {
          maxNewTokens: opts.maxTokens,
          temperature: opts.temperature,
          topK: opts.topK,
          topP: opts.topP,
          seed: opts.seed,
          stopIds: tokenizer.eosId !== undefined ? [tokenizer.eosId] : [],
          onToken: (id) => {
            // Print whole characters only: a token may end inside a UTF-8 sequence.
            ids.push(id);
            const text = tokenizer.decode(ids);
            const stable = text.endsWith('\uFFFD') ? text.slice(0, -1) : text;
            process.stdout.write(stable.slice(printed.length));
            printed = stable;
          },
        });
        process.stdout.write(tokenizer.decode(ids).slice(printed.length) + '\n');
      } finally {
        device.destroy();
      }
    });
}
