// Sampling from a decoder LM with a key/value cache: the prompt runs once through flash
// attention, then each new token costs one row of attention per layer.

import { Tensor } from '../tensor/tensor.ts';
import { scope, scopeAsync } from '../tensor/scope.ts';
import { noGrad } from '../autograd/mode.ts';
import { narrow } from '../ops/index.ts';
import type { DecoderLM } from './decoder.ts';
import type { KVCache } from '../nn/attention.ts';

export interface SampleOptions {
  maxNewTokens: number;
  /** 0 = greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  /** Stop when one of these ids is produced (it is not returned). */
  stopIds?: number[];
  onToken?: (id: number) => void;
  /**
   * Embeddings [prompt.length, dim] to use for the prompt instead of looking up its ids
   * (multimodal prompts whose placeholder rows hold encoder outputs).
   */
  promptEmbeddings?: Tensor;
}

/** Pick the next token from logits with temperature, top-k and nucleus (top-p) filtering. */
export function sampleToken(logits: ArrayLike<number>, o: SampleOptions, rand: () => number): number {
  const temp = o.temperature ?? 1;
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  if (temp <= 0) return best;
  let idx = Array.from({ length: logits.length }, (_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
  if (o.topK && o.topK > 0) idx = idx.slice(0, o.topK);
  const maxL = logits[idx[0]];
  let probs = idx.map((i) => Math.exp((logits[i] - maxL) / temp));
  let total = probs.reduce((a, b) => a + b, 0);
  probs = probs.map((p) => p / total);
  if (o.topP !== undefined && o.topP < 1) {
    let cum = 0;
    let keepN = 0;
    while (keepN < probs.length && cum < o.topP) cum += probs[keepN++];
    idx = idx.slice(0, Math.max(1, keepN));
    probs = probs.slice(0, idx.length);
    total = probs.reduce((a, b) => a + b, 0);
    probs = probs.map((p) => p / total);
  }
  let r = rand();
  for (let i = 0; i < probs.length; i++) {
    r -= probs[i];
    if (r <= 0) return idx[i];
  }
  return idx[idx.length - 1];
}

function mulberry(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Continue `prompt` (token ids) by up to maxNewTokens; returns the new ids. */
export async function generate(model: DecoderLM, prompt: number[], o: SampleOptions): Promise<number[]> {
  if (prompt.length === 0) throw new Error('generate: the prompt must contain at least one token');
  if (o.promptEmbeddings && o.promptEmbeddings.shape[0] !== prompt.length) {
    throw new Error(`generate: promptEmbeddings has ${o.promptEmbeddings.shape[0]} rows for a prompt of ${prompt.length} tokens`);
  }
  const capacity = Math.min(model.config.maxSeqLen, prompt.length + o.maxNewTokens);
  if (prompt.length > capacity) throw new Error(`generate: prompt of ${prompt.length} tokens exceeds model.maxSeqLen (${model.config.maxSeqLen})`);
  const caches: KVCache[] = model.layers.items.map((b) => b.attn.newCache(capacity));
  const rand = mulberry(o.seed ?? 0);
  const out: number[] = [];
  try {
    let ids = prompt;
    let pos = 0;
    while (out.length < o.maxNewTokens && pos + ids.length <= capacity) {
      const logits = await scopeAsync(async () => {
        const row = noGrad(() =>
          scope(() => {
            const t = ids.length;
            const idT = Tensor.fromArray(ids, [t], 'i32');
            const posT = Tensor.fromArray(Array.from({ length: t }, (_, i) => pos + i), [t], 'i32');
            let h = pos === 0 && o.promptEmbeddings ? o.promptEmbeddings : model.embed_tokens.forward(idT);
            model.layers.items.forEach((block, i) => (h = block.forwardCached(h, posT, caches[i])));
            const last = narrow(h, 0, t - 1, 1);
            return model.logits(model.norm.forward(last));
          }),
        );
        return row.toArray();
      });
      pos += ids.length;
      const next = sampleToken(logits, o, rand);
      if (o.stopIds?.includes(next)) break;
      out.push(next);
      o.onToken?.(next);
      ids = [next];
    }
  } finally {
    for (const c of caches) {
      c.k.dispose();
      c.v.dispose();
    }
  }
  return out;
}
