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
    .option('--image <file>', 'an image (PNG) for an omnimodal checkpoint to describe')
    .option('--audio <file>', 'a WAV clip for an omnimodal checkpoint to transcribe')
    .option('--max-tokens <n>', 'tokens to generate', (v) => parseInt(v, 10), 60)
    .option('--temperature <t>', 'sampling temperature (0 = greedy)', parseFloat, 0.8)
    .option('--top-k <k>', 'keep the k most likely tokens', (v) => parseInt(v, 10), 40)
    .option('--top-p <p>', 'nucleus sampling threshold', parseFloat, 0.95)
    .option('--seed <n>', 'sampling seed', (v) => parseInt(v, 10), 0)
    .action(async (opts: { checkpoint: string; prompt: string; image?: string; audio?: string; maxTokens: number; temperature: number; topK: number; topP: number; seed: number }) => {
      const dir = await resolveCheckpoint(opts.checkpoint);
      if (opts.image || opts.audio) {
        await generateFromMediaFile(dir, opts);
        return;
      }
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

async function generateFromMediaFile(dir: string, opts: { image?: string; audio?: string; maxTokens: number; temperature: number; seed: number }): Promise<void> {
  if (opts.image && opts.audio) throw new Error('give --image or --audio, not both');
  const [modality, file] = opts.image ? ['image', opts.image] : ['audio', opts.audio!];
  if (!existsSync(file)) throw new Error(`${modality} file not found: ${file}`);
  const { initDevice } = await import('../../node.ts');
  const { loadCheckpoint } = await import('../../checkpoint/manager.ts');
  const { assignParameters } = await import('../../checkpoint/tensors.ts');
  const { loadTokenizer } = await import('../../data/node.ts');
  const { validateConfig } = await import('../../train/config-io.ts');
  const { OmniRunSchema, omniModelConfig, omniFeedForward, generateFromMedia, loadPlugins } = await import('../../train/omni.ts');
  const { OmniModel } = await import('../../models/omni.ts');
  const { createNodeMediaLoader } = await import('../../data/multimodal/node.ts');
  const device = await initDevice();
  try {
    const ck = await loadCheckpoint(dir);
    const raw = (ck.manifest.state as { config?: { model?: { llm?: unknown } } }).config;
    if (!raw?.model?.llm) throw new Error(`${dir} is a text-only model: --${modality} needs an omnimodal checkpoint`);
    const cfg = validateConfig(OmniRunSchema, raw, `${dir}/manifest.json (config)`);
    await loadPlugins(cfg.plugins);
    const tokPath = [join(dirname(dirname(dir)), 'tokenizer.json'), cfg.tokenizer.path].find((p) => p && existsSync(p));
    if (!tokPath) throw new Error(`no tokenizer.json next to the run of ${dir}`);
    const tokenizer = loadTokenizer(tokPath);
    const model = new OmniModel(omniModelConfig(cfg, tokenizer.vocabSize), omniFeedForward(cfg));
    if (!model.modalities().includes(modality)) throw new Error(`the checkpoint's model has no ${modality} encoder (it has: ${model.modalities().join(', ')})`);
    assignParameters(model.namedParameters(), ck.tensors.model, (n, t) => model.setParam(n, t), { source: `${dir}/model.safetensors` });
    model.eval();
    const media = createNodeMediaLoader({ image: cfg.data.image, audio: cfg.data.audio });
    const input = await media.load({ type: modality, path: file } as never, file);
    const text = await generateFromMedia(model, tokenizer, modality, input, { maxNewTokens: opts.maxTokens, temperature: opts.temperature, seed: opts.seed });
    console.log(text);
  } finally {
    device.destroy();
  }
}
