import { describe, expect, it } from 'vitest';
import * as W from '../../src/node.ts';
import { expectClose, randomData, rng } from '../helpers/check.ts';
import { useDevice } from '../helpers/device.ts';
import { preprocessAudio, preprocessImage } from '../../src/data/multimodal/index.ts';

const dev = useDevice();

const VISION: W.VisionEncoderConfigInput = { imageSize: 8, patchSize: 2, channels: 3, dim: 16, layers: 2, heads: 2, ffnDim: 32, merge: true, seed: 1 };
const AUDIO: W.AudioEncoderConfigInput = { nMels: 16, convChannels: 8, dim: 16, layers: 1, heads: 2, ffnDim: 32, maxSeconds: 2, seed: 2 };

function hostImage(seed: number, c = 3, h = 8, w = 8): W.HostImage {
  return { data: Float32Array.from(randomData(c * h * w, rng(seed))), channels: c, height: h, width: w };
}

function clip(n: number, seed: number): W.AudioEncoderInput {
  const r = rng(seed);
  const f = 200 + 3000 * r();
  return { samples: Float32Array.from({ length: n }, (_, i) => 0.5 * Math.sin((2 * Math.PI * f * i) / 16000) + 0.05 * (r() * 2 - 1)), sampleRate: 16000 };
}

/** Gradients of L = Σ w·encode(inputs) for every parameter, plus finite-difference checks on a few elements. */
async function checkGradients<I>(enc: W.ModalityEncoder<I>, inputs: I[], fdParams: Array<[string, number]>) {
  const out = enc.encode(inputs);
  const w = Float32Array.from(randomData(out.embeddings.size, rng(77)));
  W.backward(out.embeddings, W.tensor(w, out.embeddings.shape));
  const named = new Map(enc.namedParameters());
  const grads = new Map<string, Float32Array>();
  for (const [name, p] of named) {
    expect(p.grad, `gradient of ${name}`).toBeTruthy();
    const g = (await p.grad!.toArray()) as Float32Array;
    expect(g.some((x) => x !== 0), `gradient of ${name} is non-zero`).toBe(true);
    expect(g.every(Number.isFinite), `gradient of ${name} is finite`).toBe(true);
    grads.set(name, g);
  }
  for (const [name, idx] of fdParams) {
    const p = named.get(name)!;
    expect(p, name).toBeTruthy();
    const orig = (await p.toArray())[idx];
    const lossAt = async (v: number) => {
      dev.device.write(p.storage.buffer, (p.offset + idx) * 4, new Float32Array([v]));
      return W.noGrad(() => W.scope(() => enc.encode(inputs).embeddings)).toArray().then((y) => {
        let s = 0;
        for (let i = 0; i < y.length; i++) s += y[i] * w[i];
        return s;
      });
    };
    const h = 1e-2;
    const fd = ((await lossAt(orig + h)) - (await lossAt(orig - h))) / (2 * h);
    await lossAt(orig);
    const g = grads.get(name)![idx];
    if (process.env.DEBUG_FD) console.log(name, idx, g, fd);
    expect(Math.abs(g - fd), `${name}[${idx}]: backward ${g} vs finite differences ${fd}`).toBeLessThan(1e-2 * (1 + Math.abs(fd)));
  }
  for (const p of named.values()) {
    p.grad?.release();
    p.grad = null;
  }
  return out;
}

describe('vision encoder', () => {
  it('shapes and token counts (with and without 2×2 merging) match tokenCount', async () => {
    for (const merge of [true, false]) {
      const enc = new W.VisionEncoder({ ...VISION, merge });
      const imgs = [hostImage(1), hostImage(2), hostImage(3)];
      const per = enc.tokenCount(imgs[0]);
      expect(per).toBe(merge ? 4 : 16);
      const out = W.noGrad(() => enc.encode(imgs));
      expect(out.embeddings.shape).toEqual([3 * per, 16]);
      expect(out.tokenCounts).toEqual(imgs.map((im) => enc.tokenCount(im)));
      expect(out.cuSeqlens).toEqual([0, per, 2 * per, 3 * per]);
      expect(enc.outDim).toBe(16);
      expect((await out.embeddings.toArray()).every(Number.isFinite)).toBe(true);
      enc.dispose();
    }
  });

  it('gradients reach every parameter and match finite differences', async () => {
    const enc = new W.VisionEncoder(VISION);
    const names = enc.namedParameters().map(([n]) => n);
    expect(names).toContain('patch_embed.weight');
    expect(names).toContain('pos_embed');
    expect(names).toContain('blocks.1.attn.q_proj.weight');
    expect(names).toContain('merger.weight');
    expect(names).toContain('norm.weight');
    await checkGradients(enc, [hostImage(4), hostImage(5)], [
      ['patch_embed.weight', 7],
      ['pos_embed', 21],
      ['blocks.1.attn.v_proj.weight', 40],
      ['merger.weight', 100],
    ]);
    enc.dispose();
  });

  it('images never attend to each other: changing image 2 leaves image 1 unchanged', async () => {
    const enc = new W.VisionEncoder({ ...VISION, merge: false });
    const a = await W.noGrad(() => enc.encode([hostImage(10), hostImage(11), hostImage(12)])).embeddings.toArray();
    const b = await W.noGrad(() => enc.encode([hostImage(10), hostImage(99), hostImage(12)])).embeddings.toArray();
    const per = 16 * 16;
    expect(Array.from(b.slice(0, per))).toEqual(Array.from(a.slice(0, per)));
    expect(Array.from(b.slice(2 * per))).toEqual(Array.from(a.slice(2 * per)));
    expect(Array.from(b.slice(per, 2 * per))).not.toEqual(Array.from(a.slice(per, 2 * per)));
    enc.dispose();
  });

  it('tensor inputs [C, H, W] give the same rows as host images, and the batch path forwardPixels too', async () => {
    const enc = new W.VisionEncoder(VISION);
    const imgs = [hostImage(20), hostImage(21)];
    const host = await W.noGrad(() => enc.encode(imgs)).embeddings.toArray();
    const tens = imgs.map((im) => W.tensor(im.data, [3, 8, 8]));
    const fromT = await W.noGrad(() => enc.encode([tens[0], imgs[1]])).embeddings.toArray();
    expect(Array.from(fromT)).toEqual(Array.from(host));
    enc.dispose();
  });

  it('bad images: wrong size, size not divisible by the patch, wrong channel count, bad host data', () => {
    const enc = new W.VisionEncoder(VISION);
    expect(() => enc.tokenCount(hostImage(1, 3, 9, 8))).toThrow(/image size 9×8 is not divisible by the patch size 2 \(this encoder takes 8×8 images\)/);
    expect(() => enc.tokenCount(hostImage(1, 3, 10, 8))).toThrow(/image size 10×8 differs from this encoder's image size 8×8/);
    expect(() => enc.encode([hostImage(1), hostImage(2, 1, 8, 8)])).toThrow(/vision encoder, image 1: image has 1 channels, but this encoder takes 3/);
    expect(() => enc.tokenCount({ data: new Float32Array(10), channels: 3, height: 8, width: 8 })).toThrow(/host image has 10 values/);
    expect(() => enc.tokenCount(W.zeros([8, 8]))).toThrow(/an image tensor must be \[C, H, W\], got \[8, 8\]/);
    expect(() => enc.encode([])).toThrow(/needs at least one image \(use dummy\(\) for none\)/);
    enc.dispose();
  });
});

describe('audio encoder', () => {
  it('shapes and token counts match tokenCount (1 s → 100 frames → 50 tokens; lengths not multiples of the hop)', async () => {
    const enc = new W.AudioEncoder(AUDIO);
    const clips = [clip(16000, 1), clip(4321, 2), clip(1000, 3), clip(201, 4)];
    expect(clips.map((c) => enc.tokenCount(c))).toEqual([50, 14, 3, 1]);
    const out = W.noGrad(() => enc.encode(clips));
    expect(out.embeddings.shape).toEqual([68, 16]);
    expect(out.tokenCounts).toEqual([50, 14, 3, 1]);
    expect(out.cuSeqlens).toEqual([0, 50, 64, 67, 68]);
    expect(enc.maxTokens).toBe(100);
    expect((await out.embeddings.toArray()).every(Number.isFinite)).toBe(true);
    enc.dispose();
  });

  it('gradients reach every parameter and match finite differences', async () => {
    const enc = new W.AudioEncoder(AUDIO);
    const names = enc.namedParameters().map(([n]) => n);
    for (const n of ['conv1.weight', 'conv1.bias', 'conv2.weight', 'conv2.bias', 'pos_embed', 'blocks.0.mlp.up_proj.weight', 'norm.bias']) expect(names).toContain(n);
    await checkGradients(enc, [clip(3200, 5), clip(1999, 6)], [
      ['conv1.weight', 11],
      ['conv2.weight', 50],
      ['pos_embed', 16 * 3 + 2],
      ['blocks.0.attn.v_proj.weight', 30],
    ]);
    enc.dispose();
  });

  it('clips never see each other (convolutions and attention): changing clip 2 leaves clip 1 unchanged', async () => {
    const enc = new W.AudioEncoder(AUDIO);
    const a = await W.noGrad(() => enc.encode([clip(3200, 7), clip(2400, 8), clip(1600, 9)])).embeddings.toArray();
    const b = await W.noGrad(() => enc.encode([clip(3200, 7), clip(2400, 42), clip(1600, 9)])).embeddings.toArray();
    const [n1, n2] = [10 * 16, 8 * 16];
    expect(Array.from(b.slice(0, n1))).toEqual(Array.from(a.slice(0, n1)));
    expect(Array.from(b.slice(n1 + n2))).toEqual(Array.from(a.slice(n1 + n2)));
    expect(Array.from(b.slice(n1, n1 + n2))).not.toEqual(Array.from(a.slice(n1, n1 + n2)));
    enc.dispose();
  });

  it('cepstral front end (mfcc + cmn): gradients match finite differences; a louder clip gives the same output', async () => {
    const cfg = { ...AUDIO, mfcc: 8, cmn: true };
    const enc = new W.AudioEncoder(cfg);
    await checkGradients(enc, [clip(3200, 5), clip(1999, 6)], [
      ['conv1.weight', 5],
      ['blocks.0.attn.v_proj.weight', 30],
    ]);
    // Gain is a constant offset of the log-mel frame (whisper normalisation is relative to the
    // clip's max), i.e. only cepstral coefficient 0 moves, and the clip mean removes it.
    const c = clip(3200, 11);
    const louder = { ...c, samples: c.samples.map((v) => 4 * v) };
    const a = await W.noGrad(() => enc.encode([c])).embeddings.toArray();
    const b = await W.noGrad(() => enc.encode([louder])).embeddings.toArray();
    expectClose(b, a, 2e-4, 2e-3, 'mfcc+cmn output under gain');
    const plain = new W.AudioEncoder(AUDIO);
    const pa = await W.noGrad(() => plain.encode([c])).embeddings.toArray();
    const pb = await W.noGrad(() => plain.encode([louder])).embeddings.toArray();
    expect(Math.max(...pa.map((v, i) => Math.abs(v - pb[i])))).toBeGreaterThan(1e-2);
    expect(() => new W.AudioEncoder({ ...AUDIO, mfcc: 17 })).toThrow(/mfcc 17 exceeds nMels 16/);
    enc.dispose();
    plain.dispose();
  });

  it('conv2d stem: same token counts as the conv1d stem; gradients reach every parameter and match finite differences', async () => {
    const enc = new W.AudioEncoder({ ...AUDIO, stem: 'conv2d', convChannels: 4 });
    const names = enc.namedParameters().map(([n]) => n);
    for (const n of ['conv1.weight', 'conv1.bias', 'conv2.weight', 'conv2.bias', 'stem_proj.weight', 'stem_proj.bias']) expect(names).toContain(n);
    // 16 mel bins → 8 → 4 after the two frequency strides; 4 bins × 4 channels feed stem_proj.
    expect(enc.namedParameters().find(([n]) => n === 'stem_proj.weight')![1].shape).toEqual([16, 16]);
    const clips = [clip(16000, 1), clip(4321, 2), clip(201, 4)];
    expect(clips.map((c) => enc.tokenCount(c))).toEqual([50, 14, 1]);
    const out = W.noGrad(() => enc.encode(clips));
    expect(out.embeddings.shape).toEqual([65, 16]);
    await checkGradients(enc, [clip(3200, 5), clip(1999, 6)], [
      ['conv1.weight', 4],
      ['conv2.weight', 50],
      ['stem_proj.weight', 37],
      ['blocks.0.attn.v_proj.weight', 30],
    ]);
    enc.dispose();
  });

  it('stemStride 4 halves the tokens (1 s → 25) for both stems, and encode agrees with tokenCount', async () => {
    for (const stem of ['conv1d', 'conv2d'] as const) {
      const enc = new W.AudioEncoder({ ...AUDIO, stem, stemStride: 4 });
      const clips = [clip(16000, 1), clip(4321, 2), clip(201, 4)];
      expect(clips.map((c) => enc.tokenCount(c))).toEqual([25, 7, 1]);
      const out = W.noGrad(() => enc.encode(clips));
      expect(out.tokenCounts).toEqual([25, 7, 1]);
      expect(out.embeddings.shape).toEqual([33, 16]);
      expect(enc.maxTokens).toBe(50);
      enc.dispose();
    }
    expect(() => new W.AudioEncoder({ ...AUDIO, stemStride: 0 })).toThrow(/stemStride/);
  });

  it('specAugment masks zero the drawn mel bands and frames in training, and are ignored in eval mode', async () => {
    const enc = new W.AudioEncoder(AUDIO);
    const plain = [clip(3200, 21), clip(2000, 22)];
    // Clip 0: band of 3 bins at ⌊0.5·(16 − 3 + 1)⌋ = 7 and frames [⌊0.25·(20 − 4 + 1)⌋ = 4, 8);
    // clip 1: a 9-frame span capped at ⌊0.2 · 12⌋ = 2 frames, starting at ⌊0.99·11⌋ = 10 (its last two).
    const masks: W.SpecMask[] = [
      { freq: [{ at: 0.5, width: 3 }], time: [{ at: 0.25, width: 4 }], timeFraction: 0.5 },
      { freq: [], time: [{ at: 0.99, width: 9 }], timeFraction: 0.2 },
    ];
    const masked = plain.map((c, i) => ({ ...c, specMask: masks[i] }));
    const { mel, frames } = W.noGrad(() => W.logMelFromClips(plain.map((c) => c.samples), enc.mel));
    expect(frames).toEqual([20, 12]);
    const m = (await mel.toArray()) as Float32Array;
    for (let f = 0; f < 20; f++) for (let c = 7; c < 10; c++) m[f * 16 + c] = 0;
    for (let f = 4; f < 8; f++) m.fill(0, f * 16, (f + 1) * 16);
    m.fill(0, (20 + 10) * 16, (20 + 12) * 16);
    const want = await W.noGrad(() => enc.forwardMel(W.tensor(m, [32, 16]), frames)).embeddings.toArray();
    const got = await W.noGrad(() => enc.encode(masked)).embeddings.toArray();
    expectClose(got, want, 1e-5, 1e-4, 'masked encode vs hand-masked log-mel');
    const unmasked = await W.noGrad(() => enc.encode(plain)).embeddings.toArray();
    expect(Math.max(...got.map((v, i) => Math.abs(v - unmasked[i])))).toBeGreaterThan(1e-3);
    enc.eval();
    expect(Array.from(await W.noGrad(() => enc.encode(masked)).embeddings.toArray())).toEqual(Array.from(unmasked));
    enc.train();
    await checkGradients(enc, masked, [
      ['conv1.weight', 3 * 7 + 1],
      ['conv1.weight', 40],
    ]);
    enc.dispose();
  });

  it('bad clips: empty, too short, too long, sample rate mismatch', () => {
    const enc = new W.AudioEncoder(AUDIO);
    expect(() => enc.encode([clip(1000, 1), { samples: new Float32Array(0) }])).toThrow(/audio encoder, clip 1: audio clip is empty/);
    expect(() => enc.tokenCount({ samples: new Float32Array(150) })).toThrow(/audio clip has 150 samples; at least 201 are needed/);
    expect(() => enc.tokenCount({ samples: new Float32Array(16000), sampleRate: 44100 })).toThrow(/sample rate 44100 Hz does not match the encoder's 16000 Hz/);
    expect(() => enc.tokenCount({ samples: new Float32Array(40000) })).toThrow(/gives 125 tokens, more than the 100 positions of this encoder \(config maxSeconds 2\)/);
    expect(() => enc.encode([])).toThrow(/needs at least one clip/);
    enc.dispose();
  });
});

describe('dummy forward (a batch without the modality)', () => {
  for (const modality of ['image', 'audio'] as const) {
    it(`${modality}: every encoder and projector parameter gets a gradient, all exactly zero`, async () => {
      const enc = W.createEncoder(modality, modality === 'image' ? VISION : AUDIO);
      const proj = new W.Projector({ inDim: enc.outDim, hidden: 24, outDim: 32 });
      const d = enc.dummy();
      expect(d.tokenCounts.length).toBe(1);
      expect(d.embeddings.shape).toEqual([d.tokenCounts[0], 16]);
      expect((await d.embeddings.toArray()).every((x) => x === 0)).toBe(true);
      const zero = W.zeroContribution(proj.forward(d.embeddings));
      expect(await zero.item()).toBe(0);
      W.backward(zero);
      const all = [...enc.namedParameters(), ...proj.namedParameters().map(([n, t]) => [`projector.${n}`, t] as [string, W.Tensor])];
      expect(all.length).toBeGreaterThan(10);
      for (const [name, p] of all) {
        expect(p.grad, `gradient of ${name}`).toBeTruthy();
        const g = await p.grad!.toArray();
        expect(g.every((x) => x === 0), `gradient of ${name} is all zeros`).toBe(true);
      }
      enc.dispose();
      proj.dispose();
    });
  }
});

describe('memory and a realistic tiny batch', () => {
  it('forward + backward in a scope: pool live bytes flat across steps (both encoders)', async () => {
    const vis = new W.VisionEncoder(VISION);
    const aud = new W.AudioEncoder(AUDIO);
    const step = async () => {
      await W.scopeAsync(async () => {
        for (const out of [vis.encode([hostImage(1), hostImage(2)]), aud.encode([clip(3000, 1), clip(1700, 2)]), vis.dummy(), aud.dummy()]) {
          W.backward(W.zeroContribution(out.embeddings));
        }
        await dev.device.sync();
      });
      for (const p of [...vis.parameters(), ...aud.parameters()]) {
        p.grad?.release();
        p.grad = null;
      }
    };
    await step();
    const live = dev.device.pool.snapshot.liveBytes;
    for (let i = 0; i < 3; i++) await step();
    expect(dev.device.pool.snapshot.liveBytes).toBe(live);
    vis.dispose();
    aud.dispose();
  });

  it('16 images 28×28 and 8 one-second clips: forward + backward (timed)', async () => {
    const vis = new W.VisionEncoder({ imageSize: 28, patchSize: 4, channels: 1, dim: 64, layers: 2, heads: 4 });
    const aud = new W.AudioEncoder({ dim: 64, layers: 2, heads: 4 });
    const imgs = Array.from({ length: 16 }, (_, i) => hostImage(100 + i, 1, 28, 28));
    const clips = Array.from({ length: 8 }, (_, i) => clip(16000, 200 + i));
    for (const [name, enc, inputs, tokens] of [
      ['vision', vis, imgs, 16 * 49],
      ['audio', aud, clips, 8 * 50],
    ] as const) {
      const times: number[] = [];
      for (let it = 0; it < 2; it++) {
        const t0 = performance.now();
        await W.scopeAsync(async () => {
          const out = (enc as W.ModalityEncoder<unknown>).encode(inputs as unknown[]);
          expect(out.embeddings.shape).toEqual([tokens, 64]);
          W.backward(out.embeddings, W.onesLike(out.embeddings));
          await dev.device.sync();
        });
        times.push(performance.now() - t0);
        for (const p of enc.parameters()) {
          p.grad?.release();
          p.grad = null;
        }
      }
      console.log(`${name} encoder forward+backward (${tokens} tokens): ${times.map((t) => t.toFixed(0)).join(' / ')} ms (first includes pipeline compiles)`);
    }
    vis.dispose();
    aud.dispose();
  });
});

describe('projector, registry and configs', () => {
  it('projector maps encoder rows to the LLM width (Linear → GELU → Linear) with gradients', async () => {
    const proj = new W.Projector({ inDim: 4, hidden: 6, outDim: 3, seed: 3 });
    const xd = randomData(5 * 4, rng(1));
    const x = W.tensor(xd, [5, 4]);
    const y = proj.forward(x);
    expect(y.shape).toEqual([5, 3]);
    // Host float64 recomputation from the parameters.
    const [w1, b1, w2, b2] = await Promise.all(['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias'].map((n) => new Map(proj.namedParameters()).get(n)!.toArray()));
    const erf = (z: number) => {
      let s = 0;
      for (let i = 0; i < 1000; i++) s += Math.exp(-(((z * (i + 0.5)) / 1000) ** 2));
      return ((2 / Math.sqrt(Math.PI)) * s * z) / 1000;
    };
    const got = await y.toArray();
    for (let r = 0; r < 5; r++) {
      const h = Array.from({ length: 6 }, (_, j) => {
        let s = b1[j];
        for (let k = 0; k < 4; k++) s += w1[j * 4 + k] * xd[r * 4 + k];
        return 0.5 * s * (1 + erf(s / Math.SQRT2));
      });
      for (let o = 0; o < 3; o++) {
        let s = b2[o];
        for (let j = 0; j < 6; j++) s += w2[o * 6 + j] * h[j];
        expect(Math.abs(got[r * 3 + o] - s)).toBeLessThan(1e-4);
      }
    }
    W.backward(y, W.tensor(randomData(15, rng(2)), [5, 3]));
    for (const [n, p] of proj.namedParameters()) expect((await p.grad!.toArray()).some((v) => v !== 0), n).toBe(true);
    proj.dispose();
  });

  it("the data pipeline's preprocessed images and clips are encoder inputs as they are", async () => {
    const img = preprocessImage({ width: 5, height: 7, channels: 3, data: new Uint8Array(5 * 7 * 3).fill(200) }, { size: 8, channels: 3 });
    const wav = preprocessAudio({ sampleRate: 8000, channels: [Float32Array.from({ length: 4000 }, (_, i) => Math.sin(i / 5))] } as never, { sampleRate: 16000 });
    const vis = new W.VisionEncoder(VISION);
    const aud = new W.AudioEncoder(AUDIO);
    expect(vis.tokenCount(img)).toBe(4);
    expect(aud.tokenCount(wav)).toBe(25); // 0.5 s at 8 kHz → 8000 samples at 16 kHz → 50 frames
    expect(W.noGrad(() => vis.encode([img])).embeddings.shape).toEqual([4, 16]);
    expect(W.noGrad(() => aud.encode([wav])).embeddings.shape).toEqual([25, 16]);
    vis.dispose();
    aud.dispose();
  });

  it('registry: built-ins registered, createEncoder builds by name, clear errors', () => {
    expect(W.registeredEncoders()).toEqual(expect.arrayContaining(['audio', 'image']));
    const enc = W.createEncoder('image', VISION);
    expect(enc).toBeInstanceOf(W.VisionEncoder);
    expect(enc.modality).toBe('image');
    enc.dispose();
    expect(() => W.createEncoder('video', {})).toThrow(/no encoder registered for modality 'video' \(registered: .*audio.*image/);
    expect(() => W.registerEncoder('image', () => new W.VisionEncoder(VISION))).toThrow(/modality 'image' is already registered/);
    expect(() => W.registerEncoder('Bad Name', () => new W.VisionEncoder(VISION))).toThrow(/invalid modality name/);
  });

  it('configs: defaults, and errors naming the key', () => {
    const enc = new W.AudioEncoder({ dim: 16, layers: 0, heads: 2, maxSeconds: 1, nMels: 8 });
    expect(enc.config).toMatchObject({ sampleRate: 16000, nFft: 400, winLength: 400, hopLength: 160, melScale: 'slaney', convChannels: 16, kvHeads: 2, ffnDim: 64 });
    enc.dispose();
    expect(() => new W.VisionEncoder({ ...VISION, imageSize: 9 })).toThrow(/invalid vision encoder config: imageSize: image size 9×9 must be a multiple of patchSize 2/);
    expect(() => new W.VisionEncoder({ ...VISION, imageSize: 6 })).toThrow(/merge: 2×2 merging needs an even patch grid, got 3×3/);
    expect(() => new W.VisionEncoder({ ...VISION, patchsize: 2 } as never)).toThrow(/invalid vision encoder config: .*patchsize/);
    expect(() => new W.AudioEncoder({ ...AUDIO, dim: 15 })).toThrow(/heads: dim 15 must be divisible by heads 2/);
    expect(() => new W.Projector({ inDim: 4, hidden: 0, outDim: 2 })).toThrow(/invalid projector config: hidden/);
  });
});
