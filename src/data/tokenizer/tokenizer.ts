// Byte-level BPE tokenizer with Hugging Face tokenizer.json load/save. Platform-neutral:
// file access lives in src/data/node.ts.
//
// Round trip: decode(encode(s)) === s for every well-formed JS string (no normalizer).
// JS strings may hold lone surrogates (U+D800..U+DFFF unpaired); they have no UTF-8
// form, so encode() sees them as U+FFFD (as TextEncoder does) and decode returns U+FFFD
// in their place. Arbitrary byte sequences, valid UTF-8 or not, round-trip exactly
// through encodeBytes()/decodeBytes(); decode() of ids whose bytes are not valid UTF-8
// yields U+FFFD for each maximal invalid subpart (WHATWG/Rust "lossy" decoding).

import { BpeModel, MAX_VOCAB } from './bpe.ts';
import { splitUtf8, tokenStringToBytes, utf8 } from './bytes.ts';
import { TokenizerError } from './errors.ts';
import { PreTokenizer, buildNormalizer } from './pretokenize.ts';
import { BOS_TOKEN, EOS_TOKEN, PAD_TOKEN } from './special.ts';

export interface AddedToken {
  id: number;
  content: string;
  special: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
  singleWord?: boolean;
  normalized?: boolean;
}

export interface EncodeOptions {
  /**
   * Recognise special added tokens (e.g. `<|eos|>`, `<image>`) written in the text and
   * emit their ids. Default false: such strings are encoded as ordinary text, so
   * untrusted text cannot inject control tokens. Non-special added tokens always match.
   */
  allowSpecial?: boolean;
  /** Apply the tokenizer.json post_processor template (e.g. Llama-3's BOS). Default false. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop special added tokens from the output. Default false. */
  skipSpecialTokens?: boolean;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
const WORD_CHAR = /[\p{L}\p{N}_]/u;

function parseAddedTokens(v: unknown): AddedToken[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new TokenizerError('added_tokens: expected an array');
  return v.map((t, k) => {
    if (!isObj(t)) throw new TokenizerError(`added_tokens[${k}]: expected an object`);
    if (!Number.isInteger(t.id) || (t.id as number) < 0 || (t.id as number) >= MAX_VOCAB)
      throw new TokenizerError(`added_tokens[${k}].id: expected a non-negative integer, got ${JSON.stringify(t.id)}`);
    if (typeof t.content !== 'string' || t.content === '') throw new TokenizerError(`added_tokens[${k}].content: expected a non-empty string`);
    return {
      id: t.id as number,
      content: t.content,
      special: t.special === true,
      lstrip: t.lstrip === true,
      rstrip: t.rstrip === true,
      singleWord: t.single_word === true,
      normalized: t.normalized === true,
    };
  });
}

function parseMerges(v: unknown): Array<[string, string]> {
  if (!Array.isArray(v)) throw new TokenizerError('model.merges: expected an array');
  return v.map((m, k): [string, string] => {
    if (typeof m === 'string') {
      const i = m.indexOf(' ');
      if (i <= 0 || i === m.length - 1 || m.indexOf(' ', i + 1) >= 0)
        throw new TokenizerError(`model.merges[${k}]: expected "left right", got ${JSON.stringify(m)}`);
      return [m.slice(0, i), m.slice(i + 1)];
    }
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return [m[0], m[1]];
    throw new TokenizerError(`model.merges[${k}]: expected "left right" or ["left", "right"], got ${JSON.stringify(m)}`);
  });
}

/** The `single` template of a TemplateProcessing post-processor, as [prefix ids, suffix ids]. */
function parsePostProcessor(pp: unknown, where = 'post_processor'): [number[], number[]] {
  const none: [number[], number[]] = [[], []];
  if (pp === null || pp === undefined) return none;
  if (!isObj(pp)) throw new TokenizerError(`${where}: expected an object or null`);
  switch (pp.type) {
    case 'ByteLevel':
      return none; // offsets only
    case 'Sequence': {
      if (!Array.isArray(pp.processors)) throw new TokenizerError(`${where}.processors: expected an array`);
      const pre: number[] = [];
      const post: number[] = [];
      pp.processors.forEach((p, k) => {
        const [a, b] = parsePostProcessor(p, `${where}.processors[${k}]`);
        pre.push(...a);
        post.unshift(...b);
      });
      return [pre, post];
    }
    case 'TemplateProcessing': {
      if (!Array.isArray(pp.single)) throw new TokenizerError(`${where}.single: expected an array`);
      const specials = isObj(pp.special_tokens) ? pp.special_tokens : {};
      const pre: number[] = [];
      const post: number[] = [];
      let seenSeq = false;
      pp.single.forEach((piece, k) => {
        if (isObj(piece) && isObj(piece.Sequence)) {
          seenSeq = true;
          return;
        }
        if (isObj(piece) && isObj(piece.SpecialToken) && typeof piece.SpecialToken.id === 'string') {
          const st = specials[piece.SpecialToken.id];
          if (!isObj(st) || !Array.isArray(st.ids))
            throw new TokenizerError(`${where}.special_tokens: no entry for ${JSON.stringify(piece.SpecialToken.id)}`);
          (seenSeq ? post : pre).push(...(st.ids as number[]));
          return;
        }
        throw new TokenizerError(`${where}.single[${k}]: expected {"Sequence": ...} or {"SpecialToken": ...}`);
      });
      return [pre, post];
    }
    default:
      throw new TokenizerError(`${where}.type: unsupported post-processor ${JSON.stringify(pp.type)} (supported: ByteLevel, TemplateProcessing, Sequence)`);
  }
}

function checkDecoder(d: unknown, where = 'decoder'): void {
  if (!isObj(d)) throw new TokenizerError(`${where}: expected a ByteLevel decoder object, got ${JSON.stringify(d)}`);
  if (d.type === 'ByteLevel') return;
  if (d.type === 'Sequence' && Array.isArray(d.decoders) && d.decoders.length === 1) return checkDecoder(d.decoders[0], `${where}.decoders[0]`);
  throw new TokenizerError(`${where}.type: unsupported decoder ${JSON.stringify(d.type)} (only ByteLevel: this is a byte-level BPE tokenizer)`);
}

export class Tokenizer {
  readonly model: BpeModel;
  readonly preTokenizer: PreTokenizer;
  readonly addedTokens: readonly AddedToken[];
  private readonly json: Obj;
  private readonly normalizer: ((s: string) => string) | null;
  private readonly addedById = new Map<number, AddedToken>();
  private readonly addedByContent = new Map<string, AddedToken>();
  private readonly reAll: RegExp | null;
  private readonly reNonSpecial: RegExp | null;
  private readonly template: [number[], number[]];
  private readonly tokenBytes: (Uint8Array | undefined)[] = [];
  /** One past the largest id (model vocabulary and added tokens). */
  readonly vocabSize: number;

  private constructor(json: Obj) {
    const model = json.model;
    if (!isObj(model)) throw new TokenizerError('model: missing or not an object');
    if (model.type !== undefined && model.type !== 'BPE')
      throw new TokenizerError(`model.type: unsupported model ${JSON.stringify(model.type)} (only "BPE")`);
    if (!isObj(model.vocab)) throw new TokenizerError('model.vocab: missing or not an object');
    if (model.dropout !== undefined && model.dropout !== null && model.dropout !== 0)
      throw new TokenizerError(`model.dropout: BPE dropout is not supported (got ${JSON.stringify(model.dropout)})`);
    for (const key of ['continuing_subword_prefix', 'end_of_word_suffix'] as const)
      if (model[key] !== undefined && model[key] !== null && model[key] !== '')
        throw new TokenizerError(`model.${key}: not supported for byte-level BPE (got ${JSON.stringify(model[key])})`);
    if (model.byte_fallback === true) throw new TokenizerError('model.byte_fallback: not supported (byte-level BPE needs no fallback)');
    if (model.unk_token !== undefined && model.unk_token !== null && typeof model.unk_token !== 'string')
      throw new TokenizerError('model.unk_token: expected a string or null');
    const vocab = new Map<string, number>();
    for (const [tok, id] of Object.entries(model.vocab)) {
      if (!Number.isInteger(id)) throw new TokenizerError(`model.vocab: token ${JSON.stringify(tok)} has non-integer id ${JSON.stringify(id)}`);
      vocab.set(tok, id as number);
    }
    const merges = parseMerges(model.merges);
    this.model = new BpeModel(vocab, merges, { ignoreMerges: model.ignore_merges === true, unkToken: (model.unk_token as string | null | undefined) ?? null });
    if (json.pre_tokenizer === undefined || json.pre_tokenizer === null)
      throw new TokenizerError('pre_tokenizer: missing; only byte-level BPE tokenizers (ByteLevel pre-tokenizer) are supported');
    this.preTokenizer = new PreTokenizer(json.pre_tokenizer);
    this.normalizer = buildNormalizer(json.normalizer);
    checkDecoder(json.decoder);
    this.addedTokens = parseAddedTokens(json.added_tokens);
    for (const t of this.addedTokens) {
      const other = this.model.idToToken[t.id];
      if (other !== undefined && other !== t.content)
        throw new TokenizerError(`added_tokens: id ${t.id} is ${JSON.stringify(t.content)} but model.vocab gives it to ${JSON.stringify(other)}`);
      if (this.addedById.has(t.id)) throw new TokenizerError(`added_tokens: id ${t.id} appears twice`);
      this.addedById.set(t.id, t);
      this.addedByContent.set(t.content, t);
    }
    const alt = (ts: readonly AddedToken[]) =>
      ts.length === 0
        ? null
        : new RegExp(
            [...ts]
              .sort((a, b) => b.content.length - a.content.length)
              .map((t) => t.content.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&'))
              .join('|'),
            'gu',
          );
    this.reAll = alt(this.addedTokens);
    this.reNonSpecial = alt(this.addedTokens.filter((t) => !t.special));
    this.template = parsePostProcessor(json.post_processor);
    let max = this.model.size;
    for (const t of this.addedTokens) max = Math.max(max, t.id + 1);
    this.vocabSize = max;
    this.json = json;
  }

  /** Build from tokenizer.json text or its parsed object. Errors name the offending key. */
  static fromJSON(json: string | object): Tokenizer {
    let obj: unknown = json;
    if (typeof json === 'string') {
      try {
        obj = JSON.parse(json);
      } catch (e) {
        throw new TokenizerError(`tokenizer.json is not valid JSON: ${(e as Error).message}`);
      }
    }
    if (!isObj(obj)) throw new TokenizerError('tokenizer.json: expected a JSON object at the top level');
    return new Tokenizer(obj);
  }

  /** Build from parts (used by the trainer). */
  static fromParts(p: {
    vocab: Map<string, number>;
    merges: Array<readonly [string, string]>;
    addedTokens: AddedToken[];
    preTokenizer: unknown;
  }): Tokenizer {
    return new Tokenizer({
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: p.addedTokens.map((t) => ({
        id: t.id,
        content: t.content,
        single_word: t.singleWord ?? false,
        lstrip: t.lstrip ?? false,
        rstrip: t.rstrip ?? false,
        normalized: t.normalized ?? false,
        special: t.special,
      })),
      normalizer: null,
      pre_tokenizer: p.preTokenizer,
      post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        vocab: Object.fromEntries(p.vocab),
        merges: p.merges.map(([a, b]) => `${a} ${b}`),
      },
    });
  }

  /** The tokenizer.json object (Hugging Face `tokenizers` format). */
  toJSON(): object {
    return this.json;
  }

  /** tokenizer.json text. */
  serialize(): string {
    return JSON.stringify(this.json, null, 1);
  }

  /**
   * A new tokenizer with `tokens` added as (special) added tokens after the current
   * vocabulary; tokens already present keep their ids. E.g. give a loaded GPT-2
   * tokenizer webomni's reserved modality tokens.
   */
  withAddedTokens(tokens: readonly string[], special = true): Tokenizer {
    const added = [...((this.json.added_tokens as unknown[] | undefined) ?? [])];
    let next = this.vocabSize;
    for (const content of tokens) {
      if (this.tokenToId(content) !== undefined) continue;
      added.push({ id: next++, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special });
    }
    return new Tokenizer({ ...this.json, added_tokens: added });
  }

  /** Id of a token (model vocabulary string or added token content). */
  tokenToId(token: string): number | undefined {
    return this.addedByContent.get(token)?.id ?? this.model.vocab.get(token);
  }

  /** Token string of an id (byte-level form for model tokens; content for added tokens). */
  idToToken(id: number): string | undefined {
    return this.addedById.get(id)?.content ?? this.model.idToToken[id];
  }

  /** Whether `id` is a special added token. */
  isSpecial(id: number): boolean {
    return this.addedById.get(id)?.special === true;
  }

  /** Id of a token that must exist (throws naming it otherwise). */
  requireId(token: string): number {
    const id = this.tokenToId(token);
    if (id === undefined) throw new TokenizerError(`token ${JSON.stringify(token)} is not in this tokenizer`);
    return id;
  }

  /** End-of-document id: `<|eos|>`, else GPT-2's `<|endoftext|>`, Llama-3's `<|end_of_text|>` or `</s>`. */
  get eosId(): number | undefined {
    for (const t of [EOS_TOKEN, '<|endoftext|>', '<|end_of_text|>', '</s>']) {
      const id = this.tokenToId(t);
      if (id !== undefined) return id;
    }
    return undefined;
  }

  get bosId(): number | undefined {
    for (const t of [BOS_TOKEN, '<|begin_of_text|>', '<s>']) {
      const id = this.tokenToId(t);
      if (id !== undefined) return id;
    }
    return undefined;
  }

  get padId(): number | undefined {
    return this.tokenToId(PAD_TOKEN);
  }

  /** Encode text to token ids. */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const out: number[] = [];
    if (opts.addSpecialTokens) out.push(...this.template[0]);
    const re = opts.allowSpecial ? this.reAll : this.reNonSpecial;
    if (re === null) this.encodeText(text, out);
    else {
      let last = 0;
      re.lastIndex = 0;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        const tok = this.addedByContent.get(m[0])!;
        let a = m.index;
        let b = a + m[0].length;
        if (tok.singleWord && ((a > 0 && WORD_CHAR.test(text[a - 1])) || (b < text.length && WORD_CHAR.test(text[b])))) {
          re.lastIndex = a + 1;
          continue;
        }
        if (tok.lstrip) while (a > last && /\s/u.test(text[a - 1])) a--;
        if (tok.rstrip) while (b < text.length && /\s/u.test(text[b])) b++;
        if (a > last) this.encodeText(text.slice(last, a), out);
        out.push(tok.id);
        last = b;
        re.lastIndex = b;
      }
      if (last < text.length) this.encodeText(text.slice(last), out);
    }
    if (opts.addSpecialTokens) out.push(...this.template[1]);
    return out;
  }

  /** Encode text without added-token matching (appends to out). */
  private encodeText(text: string, out: number[]): void {
    if (text.length === 0) return;
    if (this.normalizer) text = this.normalizer(text);
    const re = this.preTokenizer.fastRegex;
    if (re === null) {
      for (const piece of this.preTokenizer.split(text)) if (piece.length > 0) this.model.encodePiece(piece, out);
      return;
    }
    let last = 0;
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      if (m[0].length === 0) {
        re.lastIndex++;
        continue;
      }
      if (m.index > last) this.model.encodePiece(text.slice(last, m.index), out);
      this.model.encodePiece(m[0], out);
      last = m.index + m[0].length;
    }
    if (last < text.length) this.model.encodePiece(text.slice(last), out);
  }

  /**
   * Encode raw bytes exactly: well-formed UTF-8 runs are encoded as text (special tokens
   * recognised only if opts.allowSpecial), each invalid byte becomes its byte token.
   */
  encodeBytes(bytes: Uint8Array, opts: EncodeOptions = {}): number[] {
    const out: number[] = [];
    if (opts.addSpecialTokens) out.push(...this.template[0]);
    for (const [a, b, valid] of splitUtf8(bytes)) {
      if (valid) out.push(...this.encode(decoder.decode(bytes.subarray(a, b)), { allowSpecial: opts.allowSpecial }));
      else out.push(...this.model.encodeBytesWord(bytes, a, b));
    }
    if (opts.addSpecialTokens) out.push(...this.template[1]);
    return out;
  }

  /** Bytes of one token id. */
  tokenToBytes(id: number): Uint8Array {
    let b = this.tokenBytes[id];
    if (b !== undefined) return b;
    const added = this.addedById.get(id);
    if (added !== undefined) b = utf8(added.content);
    else {
      const s = this.model.idToToken[id];
      if (s === undefined || !Number.isInteger(id))
        throw new TokenizerError(`token id ${id} is out of range (vocabulary size ${this.vocabSize})`);
      b = tokenStringToBytes(s) ?? utf8(s);
    }
    this.tokenBytes[id] = b;
    return b;
  }

  /** Concatenated bytes of the tokens (exact inverse of encodeBytes). */
  decodeBytes(ids: ArrayLike<number>, opts: DecodeOptions = {}): Uint8Array {
    const parts: Uint8Array[] = [];
    let n = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (opts.skipSpecialTokens && this.isSpecial(id)) continue;
      const b = this.tokenToBytes(id);
      parts.push(b);
      n += b.length;
    }
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  /** Decode to text; invalid UTF-8 (e.g. a cut multi-byte character) becomes U+FFFD. */
  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    return decoder.decode(this.decodeBytes(ids, opts));
  }

  /** Pre-tokenize without encoding (for training and inspection). */
  preTokenize(text: string): string[] {
    const t = this.normalizer ? this.normalizer(text) : text;
    return this.preTokenizer.split(t).filter((p) => p.length > 0);
  }
}

