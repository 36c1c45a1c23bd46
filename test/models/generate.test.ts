import { describe, expect, it } from 'vitest';
import * as W from '../../src/node.ts';
import { DecoderLM, DEFAULT_DECODER, generate, sampleToken } from '../../src/models/index.ts';
import { useDevice } from '../helpers/device.ts';

useDevice();

describe('generation with a KV cache', () => {
  it('greedy decoding with the cache equals recomputing the whole sequence each step', async () => {
    const model = new DecoderLM({ ...DEFAULT_DECODER, vocabSize: 50, dim: 32, layers: 2, heads: 4, kvHeads: 2, ffnDim: 48, seed: 3, initStd: 0.2, maxSeqLen: 64 });
    const prompt = [3, 17, 5, 42, 8];
    const cached = await generate(model, prompt, { maxNewTokens: 8, temperature: 0 });
    const seq = [...prompt];
    const naive: number[] = [];
    for (let i = 0; i < 8; i++) {
      const T = seq.length;
      const logits = await W.scopeAsync(async () => {
        const l = W.noGrad(() =>
          model.forward({
            ids: W.tensor(seq, [T], 'i32'),
            targets: W.full([T], -100, 'i32'),
            positions: W.tensor(seq.map((_, j) => j), [T], 'i32'),
            cuSeqlens: [0, T],
          }),
        );
        return Array.from(await W.narrow(l, 0, T - 1, 1).toArray());
      });
      const next = logits.indexOf(Math.max(...logits));
      naive.push(next);
      seq.push(next);
    }
    expect(cached).toEqual(naive);
    model.dispose();
  });

  it('sampling honours temperature, top-k and top-p', () => {
    const logits = [0, 5, 4.9, -3];
    const r = () => 0.999;
    expect(sampleToken(logits, { maxNewTokens: 1, temperature: 0 }, r)).toBe(1);
    expect(sampleToken(logits, { maxNewTokens: 1, topK: 1 }, r)).toBe(1);
    // top-p 0.5 keeps only the most likely token.
    expect(sampleToken(logits, { maxNewTokens: 1, topP: 0.5 }, r)).toBe(1);
    // With top-k 2 and a high draw, the second token is chosen.
    expect(sampleToken(logits, { maxNewTokens: 1, topK: 2 }, r)).toBe(2);
  });
});
