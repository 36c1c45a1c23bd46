// ViT-style vision encoder:
//   images [N, C, H, W] → patchify (p×p, ops/patch.ts) → Linear(C·p·p → dim)
//   → + learned 2-D positions [gh·gw, dim] (one row per grid cell, row-major)
//   → blocks (bidirectional attention without RoPE; each image its own document, so
//     images never attend to each other) → optional 2×2 merge (concat 4 neighbours →
//     Linear(4·dim → dim)) → final norm → rows [N·tokensPerImage, dim].
// Rows of one image are row-major over its (merged) patch grid. Every image must have
// the configured size (the position table is learned for that grid).

import { Tensor, fmtShape } from '../../tensor/tensor.ts';
import { Module, ModuleList } from '../../nn/module.ts';
import { Linear } from '../../nn/linear.ts';
import { makeNorm, type LayerNorm, type RMSNorm } from '../../nn/norm.ts';
import { TransformerBlock } from '../../nn/block.ts';
import type { SequenceLayout } from '../../nn/attention.ts';
import { Generator, zeros } from '../../ops/creation.ts';
import { add, concat, mulScalar, patchify, permute, reshape } from '../../ops/index.ts';
import { registerEncoder } from '../registry.ts';
import { encoderBlocks } from './trunk.ts';
import { VisionEncoderSchema, parseEncoderConfig, type VisionEncoderConfig, type VisionEncoderConfigInput } from './schema.ts';
import { EncoderInputError, cumulativeCounts, type EncoderOutput, type ImageEncoderInput, type ModalityEncoder } from './types.ts';

/** [C, H, W] of an image input, checked for consistency (host only). */
export function imageDims(input: ImageEncoderInput): [number, number, number] {
  if (input instanceof Tensor) {
    if (input.rank !== 3) throw new EncoderInputError(`an image tensor must be [C, H, W], got ${fmtShape(input.shape)}`);
    if (input.dtype !== 'f32') throw new EncoderInputError(`an image tensor must be f32, got ${input.dtype}`);
    return [input.shape[0], input.shape[1], input.shape[2]];
  }
  const { data, channels, height, width } = input;
  if (!(data instanceof Float32Array)) throw new EncoderInputError('host image data must be a Float32Array');
  if (data.length !== channels * height * width) {
    throw new EncoderInputError(`host image has ${data.length} values, but channels·height·width = ${channels}·${height}·${width} = ${channels * height * width}`);
  }
  return [channels, height, width];
}

/** Per-image positions restarting at 0 (i32 [n·len]): unused without RoPE but part of the layout. */
function positionsFor(counts: readonly number[]): Tensor {
  const total = counts.reduce((a, b) => a + b, 0);
  const pos = new Int32Array(total);
  let k = 0;
  for (const c of counts) for (let i = 0; i < c; i++) pos[k++] = i;
  return Tensor.fromArray(pos, [total], 'i32');
}

export class VisionEncoder extends Module implements ModalityEncoder<ImageEncoderInput> {
  readonly modality = 'image';
  readonly config: VisionEncoderConfig;
  readonly patch_embed: Linear;
  readonly blocks: ModuleList<TransformerBlock>;
  readonly merger: Linear | null;
  readonly norm: RMSNorm | LayerNorm;
  /** Patch grid (before merging). */
  readonly grid: [number, number];
  readonly tokensPerImage: number;

  constructor(config: VisionEncoderConfigInput | VisionEncoderConfig) {
    super();
    const c = (this.config = parseEncoderConfig('vision encoder', VisionEncoderSchema, config));
    const gen = new Generator(c.seed);
    const p = c.patchSize;
    this.grid = [c.imageSize[0] / p, c.imageSize[1] / p];
    const cells = this.grid[0] * this.grid[1];
    this.tokensPerImage = c.merge ? cells / 4 : cells;
    this.patch_embed = this.child('patch_embed', new Linear(c.channels * p * p, c.dim, { generator: gen, initStd: c.initStd }));
    this.param('pos_embed', gen.normal([cells, c.dim], 0, c.initStd));
    this.blocks = this.child('blocks', encoderBlocks(c, gen));
    this.merger = c.merge ? this.child('merger', new Linear(4 * c.dim, c.dim, { generator: gen, initStd: c.initStd })) : null;
    this.norm = this.child('norm', makeNorm(c.norm, c.dim, c.normEps));
  }

  get outDim(): number {
    return this.config.dim;
  }

  get pos_embed(): Tensor {
    return this.getParam('pos_embed');
  }

  /** Host-side: tokens one image becomes; throws EncoderInputError for a wrong size or channel count. */
  tokenCount(input: ImageEncoderInput): number {
    this.checkDims(imageDims(input));
    return this.tokensPerImage;
  }

  private checkDims([ch, h, w]: [number, number, number]): void {
    const c = this.config;
    const [eh, ew] = c.imageSize;
    if (ch !== c.channels) throw new EncoderInputError(`image has ${ch} channels, but this encoder takes ${c.channels} (config channels)`);
    if (h % c.patchSize !== 0 || w % c.patchSize !== 0) {
      throw new EncoderInputError(`image size ${h}×${w} is not divisible by the patch size ${c.patchSize} (this encoder takes ${eh}×${ew} images)`);
    }
    if (h !== eh || w !== ew) throw new EncoderInputError(`image size ${h}×${w} differs from this encoder's image size ${eh}×${ew} (config imageSize)`);
  }

  encode(inputs: readonly ImageEncoderInput[]): EncoderOutput {
    if (inputs.length === 0) throw new EncoderInputError('vision encoder: encode() needs at least one image (use dummy() for none)');
    inputs.forEach((im, i) => {
      try {
        this.checkDims(imageDims(im));
      } catch (e) {
        if (e instanceof EncoderInputError) throw new EncoderInputError(`vision encoder, image ${i}: ${e.message}`);
        throw e;
      }
    });
    const { channels: C, imageSize } = this.config;
    const [H, W] = imageSize;
    let pixels: Tensor;
    if (inputs.every((im) => !(im instanceof Tensor))) {
      const all = new Float32Array(inputs.length * C * H * W);
      inputs.forEach((im, i) => all.set((im as { data: Float32Array }).data, i * C * H * W));
      pixels = Tensor.fromArray(all, [inputs.length, C, H, W]);
    } else {
      const parts = inputs.map((im) => (im instanceof Tensor ? reshape(im, [1, C, H, W]) : Tensor.fromArray(im.data, [1, C, H, W])));
      pixels = parts.length === 1 ? parts[0] : concat(parts, 0);
    }
    return this.forwardPixels(pixels);
  }

  /** The encoder on a batch tensor [N, C, H, W] of configured-size images. */
  forwardPixels(pixels: Tensor): EncoderOutput {
    const c = this.config;
    if (pixels.rank !== 4) throw new EncoderInputError(`vision encoder: pixels must be [N, C, H, W], got ${fmtShape(pixels.shape)}`);
    const [N, ch, h, w] = pixels.shape;
    this.checkDims([ch, h, w]);
    const [gh, gw] = this.grid;
    const L = gh * gw;
    const D = c.dim;
    let x = this.patch_embed.forward(patchify(pixels, c.patchSize)); // [N·L, D]
    x = reshape(add(reshape(x, [N, L, D]), this.pos_embed), [N * L, D]);
    const counts = new Array<number>(N).fill(L);
    const layout: SequenceLayout = { positions: positionsFor(counts), cuSeqlens: cumulativeCounts(counts) };
    for (const block of this.blocks) x = block.forward(x, layout);
    if (this.merger) {
      // [N, gh, gw, D] viewed as [N, D, gh, gw]: 2×2 patches of it concatenate 4 neighbours.
      const grid = permute(reshape(x, [N, gh, gw, D]), [0, 3, 1, 2]);
      x = this.merger.forward(patchify(grid, 2)); // [N·(gh/2)·(gw/2), D]
    }
    x = this.norm.forward(x);
    const tokenCounts = new Array<number>(N).fill(this.tokensPerImage);
    return { embeddings: x, tokenCounts, cuSeqlens: cumulativeCounts(tokenCounts) };
  }

  /** One all-zero image through the whole encoder, times 0 (see ModalityEncoder.dummy). */
  dummy(): EncoderOutput {
    const [H, W] = this.config.imageSize;
    const out = this.forwardPixels(zeros([1, this.config.channels, H, W]));
    return { ...out, embeddings: mulScalar(out.embeddings, 0) };
  }
}

registerEncoder('image', (config) => new VisionEncoder(config as VisionEncoderConfigInput));
