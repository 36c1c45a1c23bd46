// Pre-tokenization: splitting text into the "words" BPE runs on, as Hugging Face
// `tokenizers` does for byte-level models (ByteLevel, Split, Digits, Sequence), plus the
// few normalizers such tokenizers use. Regexes from tokenizer.json are written for
// Oniguruma; `translateRegex` turns them into JavaScript Unicode regexes.

import { TokenizerError } from './errors.ts';

/** GPT-2's pre-tokenization regex (Oniguruma syntax, as stored in tokenizer.json). */
export const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/** Llama-3's (= tiktoken cl100k's) pre-tokenization regex, as stored in its tokenizer.json. */
export const LLAMA3_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const SYNTAX = new Set('^$\\.*+?()[]{}|/'.split(''));

/**
 * Translate an Oniguruma / Rust regex (as found in tokenizer.json) to a JavaScript regex
 * source for the `u` flag:
 * - `\s` / `\S` become `\p{White_Space}` / `\P{White_Space}` (Oniguruma's Unicode `\s`
 *   includes U+0085 and excludes U+FEFF; JavaScript's is the other way round);
 * - `(?i:...)` groups are expanded: each ASCII letter becomes `[xX]`;
 * - escapes of non-syntax punctuation (`\'`, `\-` outside classes) lose the backslash,
 *   which the `u` flag would otherwise reject.
 * Possessive quantifiers, atomic groups and other inline flags are not supported.
 */
export function translateRegex(src: string): string {
  let out = '';
  let inClass = false;
  const groupCI: boolean[] = []; // per open group: does it switch case-insensitivity on
  let ci = 0; // depth of open case-insensitive groups
  let prevQuant = false; // the previous token was a quantifier
  for (let i = 0; i < src.length; i++) {
    const ch = src[i];
    if (ch === '\\') {
      prevQuant = false;
      const nx = src[i + 1];
      if (nx === undefined) throw new TokenizerError(`regex ${JSON.stringify(src)}: trailing backslash`);
      i++;
      if (nx === 's') out += '\\p{White_Space}';
      else if (nx === 'S') out += '\\P{White_Space}';
      else if (nx === 'p' || nx === 'P') {
        const close = src.indexOf('}', i);
        if (src[i + 1] !== '{' || close < 0) throw new TokenizerError(`regex ${JSON.stringify(src)}: bad \\${nx} escape`);
        out += '\\' + src.slice(i, close + 1);
        i = close;
      } else if (/[A-Za-z0-9]/.test(nx)) out += '\\' + nx;
      else if (SYNTAX.has(nx) || (inClass && nx === '-')) out += '\\' + nx;
      else out += nx;
      continue;
    }
    if (inClass) {
      prevQuant = false;
      if (ch === ']') inClass = false;
      if (ci > 0 && /[A-Za-z]/.test(ch)) {
        if (src[i + 1] === '-' || src[i - 1] === '-')
          throw new TokenizerError(`regex ${JSON.stringify(src)}: letter ranges inside (?i:...) are not supported`);
        out += ch.toLowerCase() + ch.toUpperCase();
        continue;
      }
      out += ch;
      continue;
    }
    if (ch === '[') {
      inClass = true;
      out += ch;
      continue;
    }
    if (ch === '(') {
      if (src[i + 1] === '?') {
        const rest = src.slice(i + 2);
        if (rest.startsWith('i:')) {
          groupCI.push(true);
          ci++;
          out += '(?:';
          i += 3;
          continue;
        }
        if (!(rest.startsWith(':') || rest.startsWith('=') || rest.startsWith('!') || rest.startsWith('<=') || rest.startsWith('<!')))
          throw new TokenizerError(`regex ${JSON.stringify(src)}: group "(?${rest.slice(0, 2)}" is not supported`);
      }
      groupCI.push(false);
      out += ch;
      continue;
    }
    if (ch === ')') {
      if (groupCI.pop()) ci--;
      out += ch;
      continue;
    }
    if (ch === '*' || ch === '+' || ch === '?' || ch === '{') {
      let q = ch;
      if (ch === '{') {
        const m = /^\{\d+(,\d*)?\}/.exec(src.slice(i));
        if (m) q = m[0];
      }
      if (q !== '{') {
        if (prevQuant && q === '+') throw new TokenizerError(`regex ${JSON.stringify(src)}: possessive quantifiers are not supported`);
        out += q;
        i += q.length - 1;
        prevQuant = !(prevQuant && q === '?'); // a lazy '?' ends the quantifier
        continue;
      }
    }
    prevQuant = false;
    if (ci > 0 && /[A-Za-z]/.test(ch)) {
      out += `[${ch.toLowerCase()}${ch.toUpperCase()}]`;
      continue;
    }
    out += ch;
  }
  return out;
}

function compile(src: string, where: string): RegExp {
  try {
    return new RegExp(translateRegex(src), 'gu');
  } catch (e) {
    if (e instanceof TokenizerError) throw new TokenizerError(`${where}: ${e.message}`);
    throw new TokenizerError(`${where}: invalid regex ${JSON.stringify(src)}: ${(e as Error).message}`);
  }
}

function escapeRegex(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}

export type SplitBehavior = 'Isolated' | 'Removed' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';
const BEHAVIORS: SplitBehavior[] = ['Isolated', 'Removed', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'];

/** Split `s` by the matches of `re` (global), like Hugging Face's `split` with a behavior. */
export function splitBy(s: string, re: RegExp, behavior: SplitBehavior, invert = false, out: string[] = []): string[] {
  // Collect [start, end, isMatch] spans covering s.
  const spans: Array<[number, number, boolean]> = [];
  let last = 0;
  re.lastIndex = 0;
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    const a = m.index;
    const b = a + m[0].length;
    if (b === a) {
      re.lastIndex++;
      continue;
    }
    if (a > last) spans.push([last, a, invert]);
    spans.push([a, b, !invert]);
    last = b;
  }
  if (last < s.length) spans.push([last, s.length, invert]);
  switch (behavior) {
    case 'Isolated':
      for (const [a, b] of spans) out.push(s.slice(a, b));
      break;
    case 'Removed':
      for (const [a, b, m] of spans) if (!m) out.push(s.slice(a, b));
      break;
    case 'MergedWithPrevious': {
      let start = -1;
      for (const [a, b, m] of spans) {
        if (start < 0) start = a;
        if (m) {
          out.push(s.slice(start, b));
          start = -1;
        }
      }
      if (start >= 0) out.push(s.slice(start));
      break;
    }
    case 'MergedWithNext': {
      let start = -1;
      for (let k = 0; k < spans.length; k++) {
        const [a, b, m] = spans[k];
        if (m) {
          if (start >= 0) out.push(s.slice(start, a));
          start = a;
        } else {
          if (start < 0) start = a;
          out.push(s.slice(start, b));
          start = -1;
        }
      }
      if (start >= 0) out.push(s.slice(start));
      break;
    }
    case 'Contiguous': {
      let k = 0;
      while (k < spans.length) {
        let j = k;
        while (j + 1 < spans.length && spans[j + 1][2] === spans[k][2]) j++;
        out.push(s.slice(spans[k][0], spans[j][1]));
        k = j + 1;
      }
      break;
    }
  }
  return out;
}

/** One step of a pre-tokenizer: maps a piece to sub-pieces (appended to out). */
type Step = (piece: string, out: string[]) => void;

/**
 * A pre-tokenizer built from a tokenizer.json `pre_tokenizer` entry. It must contain a
 * ByteLevel step (only byte-level BPE is supported).
 */
export class PreTokenizer {
  private readonly steps: Step[];
  /** The JSON it was built from (saved back as is). */
  readonly config: unknown;
  /** A single regex that does the whole job (fast path), when the config is one Isolated split. */
  readonly fastRegex: RegExp | null;

  constructor(config: unknown, where = 'pre_tokenizer') {
    this.config = config;
    const steps: Step[] = [];
    let byteLevel = 0;
    const fast: RegExp[] = [];
    let fastOk = true;
    const build = (c: unknown, at: string): void => {
      if (c === null || typeof c !== 'object') throw new TokenizerError(`${at}: expected an object, got ${JSON.stringify(c)}`);
      const o = c as Record<string, unknown>;
      switch (o.type) {
        case 'Sequence': {
          if (!Array.isArray(o.pretokenizers)) throw new TokenizerError(`${at}.pretokenizers: expected an array`);
          o.pretokenizers.forEach((p, k) => build(p, `${at}.pretokenizers[${k}]`));
          return;
        }
        case 'ByteLevel': {
          byteLevel++;
          const prefix = o.add_prefix_space === true;
          const useRegex = o.use_regex !== false;
          const re = useRegex ? compile(GPT2_PATTERN, at) : null;
          if (prefix) fastOk = false;
          if (re) fast.push(re);
          steps.push((p, out) => {
            if (prefix && !p.startsWith(' ')) p = ' ' + p;
            if (re) splitBy(p, re, 'Isolated', false, out);
            else out.push(p);
          });
          return;
        }
        case 'Split': {
          const pat = o.pattern as Record<string, unknown> | undefined;
          let re: RegExp;
          if (pat && typeof pat.Regex === 'string') re = compile(pat.Regex, `${at}.pattern.Regex`);
          else if (pat && typeof pat.String === 'string') re = new RegExp(escapeRegex(pat.String), 'gu');
          else throw new TokenizerError(`${at}.pattern: expected {"Regex": ...} or {"String": ...}`);
          const behavior = o.behavior as SplitBehavior;
          if (!BEHAVIORS.includes(behavior))
            throw new TokenizerError(`${at}.behavior: unsupported value ${JSON.stringify(o.behavior)} (one of ${BEHAVIORS.join(', ')})`);
          const invert = o.invert === true;
          if (behavior === 'Isolated' && !invert) fast.push(re);
          else fastOk = false;
          steps.push((p, out) => {
            splitBy(p, re, behavior, invert, out);
          });
          return;
        }
        case 'Digits': {
          const re = o.individual_digits === true ? /\p{N}/gu : /\p{N}+/gu;
          fast.push(re);
          steps.push((p, out) => {
            splitBy(p, re, 'Isolated', false, out);
          });
          return;
        }
        default:
          throw new TokenizerError(`${at}.type: unsupported pre-tokenizer ${JSON.stringify(o.type)} (supported: Sequence, ByteLevel, Split, Digits)`);
      }
    };
    build(config, where);
    if (byteLevel === 0) throw new TokenizerError(`${where}: no ByteLevel pre-tokenizer; only byte-level BPE tokenizers are supported`);
    this.steps = steps;
    this.fastRegex = fastOk && fast.length === 1 ? fast[0] : null;
  }

  /** Split text into pieces (their concatenation is the text, plus any prefix spaces). */
  split(text: string): string[] {
    let pieces = [text];
    for (const step of this.steps) {
      const next: string[] = [];
      for (const p of pieces) step(p, next);
      pieces = next;
    }
    return pieces;
  }

  /** The tokenizer.json entry for a byte-level pre-tokenizer with `pattern`. */
  static configFor(pattern: string): unknown {
    if (pattern === GPT2_PATTERN) return { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
    return {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    };
  }
}

/** A normalizer from tokenizer.json (null, NFC/NFD/NFKC/NFKD, Sequence of those). */
export function buildNormalizer(config: unknown, where = 'normalizer'): ((s: string) => string) | null {
  if (config === null || config === undefined) return null;
  if (typeof config !== 'object') throw new TokenizerError(`${where}: expected an object or null`);
  const o = config as Record<string, unknown>;
  switch (o.type) {
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD': {
      const form = o.type;
      return (s) => s.normalize(form);
    }
    case 'Sequence': {
      if (!Array.isArray(o.normalizers)) throw new TokenizerError(`${where}.normalizers: expected an array`);
      const fs = o.normalizers.map((n, k) => buildNormalizer(n, `${where}.normalizers[${k}]`)).filter((f): f is (s: string) => string => f !== null);
      return (s) => fs.reduce((acc, f) => f(acc), s);
    }
    default:
      throw new TokenizerError(`${where}.type: unsupported normalizer ${JSON.stringify(o.type)} (supported: NFC, NFD, NFKC, NFKD, Sequence)`);
  }
}
