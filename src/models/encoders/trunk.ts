// The transformer trunk every built-in encoder shares: `layers` bidirectional pre-norm
// blocks (no causal mask, no RoPE: encoders add learned positions) from the trunk config.
import { ModuleList } from '../../nn/module.ts';
import { TransformerBlock } from '../../nn/block.ts';
import type { Generator } from '../../ops/creation.ts';
import type { EncoderTrunkConfig } from './schema.ts';

export function encoderBlocks(c: EncoderTrunkConfig, gen: Generator): ModuleList<TransformerBlock> {
  const blocks = new ModuleList<TransformerBlock>();
  for (let i = 0; i < c.layers; i++) {
    blocks.push(
      new TransformerBlock({
        dim: c.dim,
        heads: c.heads,
        kvHeads: c.kvHeads,
        ffnDim: c.ffnDim,
        mlp: c.mlp,
        norm: c.norm,
        normEps: c.normEps,
        causal: false,
        rope: false,
        bias: c.attnBias,
        generator: gen,
        initStd: c.initStd,
      }),
    );
  }
  return blocks;
}
