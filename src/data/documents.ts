// Documents, the Brown corpus's tagged format, and a deterministic train/validation split
// by document. Platform-neutral (file reading lives in node.ts).

export interface TextDocument {
  /** Stable identifier (e.g. the Brown file name "ca01"); the split hashes it. */
  id: string;
  text: string;
  meta?: Record<string, string>;
}

/** FNV-1a 32-bit hash of a string's UTF-16 code units. */
export function fnv1a32(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // Final avalanche (murmur3 fmix32) so close ids spread over the whole range.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

export interface SplitOptions {
  /** Fraction of documents in the validation split (default 0.05). */
  valFraction?: number;
  /** Salt mixed into the hash; change it to draw a different split (default "webomni-split-v1"). */
  salt?: string;
}

/** Whether a document id falls in the validation split: hash(salt + id) / 2^32 < valFraction. */
export function isValidationDoc(id: string, opts: SplitOptions = {}): boolean {
  const frac = opts.valFraction ?? 0.05;
  if (!(frac >= 0 && frac <= 1)) throw new RangeError(`valFraction must be in [0, 1], got ${frac}`);
  return fnv1a32(`${opts.salt ?? 'webomni-split-v1'}\u0000${id}`) / 2 ** 32 < frac;
}

/**
 * Split documents into train and validation by a hash of each document's id: the same
 * document always lands in the same split, whatever the other documents are. Throws on
 * duplicate ids (a duplicate could otherwise sit in both splits under another name).
 */
export function splitDocuments<D extends { id: string }>(docs: readonly D[], opts: SplitOptions = {}): { train: D[]; val: D[] } {
  const seen = new Set<string>();
  const train: D[] = [];
  const val: D[] = [];
  for (const d of docs) {
    if (seen.has(d.id)) throw new Error(`splitDocuments: duplicate document id ${JSON.stringify(d.id)}`);
    seen.add(d.id);
    (isValidationDoc(d.id, opts) ? val : train).push(d);
  }
  return { train, val };
}

const NO_SPACE_BEFORE = new Set([',', '.', ';', ':', '?', '!', ')', ']', '}', "''", "'", "'?'"]);
const NO_SPACE_AFTER = new Set(['``', '(', '[', '{']);

/**
 * Plain text from one Brown corpus file in tagged form ("The/at jury/nn said/vbd ./.").
 * Tags are dropped, `` and '' become ", punctuation is re-attached. A line starting with
 * a tab begins a paragraph: paragraphs are separated by "\n", sentences by a space.
 */
export function detagBrown(raw: string): string {
  const paragraphs: string[] = [];
  let para = '';
  for (const line of raw.split('\n')) {
    if (line.trim() === '') continue;
    const newPara = line.startsWith('\t');
    let sent = '';
    let glue = true; // no space before the next word
    for (const tok of line.trim().split(/\s+/)) {
      const slash = tok.lastIndexOf('/');
      const w = slash > 0 ? tok.slice(0, slash) : tok;
      const text = w === '``' || w === "''" ? '"' : w;
      if (!glue && !NO_SPACE_BEFORE.has(w)) sent += ' ';
      sent += text;
      glue = NO_SPACE_AFTER.has(w);
    }
    if (newPara && para !== '') {
      paragraphs.push(para);
      para = '';
    }
    para = para === '' ? sent : `${para} ${sent}`;
  }
  if (para !== '') paragraphs.push(para);
  return paragraphs.join('\n');
}
