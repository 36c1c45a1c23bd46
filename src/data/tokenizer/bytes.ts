// Byte-level helpers: GPT-2's byte <-> unicode-character table and a UTF-8 encoder /
// validator that never allocates per call. Platform-neutral.

/**
 * GPT-2's reversible byte -> character map: printable Latin-1 bytes map to themselves,
 * the other 68 bytes to U+0100.. in byte order, so every token string is printable and
 * contains no whitespace (space becomes 'Ġ', newline 'Ċ').
 */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCharCode(keep(b) ? b : 256 + n++);
  return out;
})();

/** Inverse of BYTE_TO_CHAR, indexed by UTF-16 code unit (all are < 0x144); -1 = not a byte char. */
export const CHAR_TO_BYTE: Int16Array = (() => {
  const t = new Int16Array(0x200).fill(-1);
  for (let b = 0; b < 256; b++) t[BYTE_TO_CHAR[b].charCodeAt(0)] = b;
  return t;
})();

/** Map raw bytes to their byte-level token string. */
export function bytesToTokenString(bytes: ArrayLike<number>, start = 0, end = bytes.length): string {
  let s = '';
  for (let i = start; i < end; i++) s += BYTE_TO_CHAR[bytes[i]];
  return s;
}

/**
 * Map a byte-level token string back to bytes. Returns null when a character is not in
 * the byte table (e.g. an added token's literal content), as Hugging Face's ByteLevel
 * decoder then falls back to the token's UTF-8 bytes.
 */
export function tokenStringToBytes(s: string): Uint8Array | null {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const b = c < 0x200 ? CHAR_TO_BYTE[c] : -1;
    if (b < 0) return null;
    out[i] = b;
  }
  return out;
}

const encoder = new TextEncoder();
/** UTF-8 bytes of a JS string; lone surrogates become U+FFFD (EF BF BD), as TextEncoder does. */
export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

/**
 * Write the UTF-8 bytes of `s` into `buf` (grown as needed) and return [buf, length].
 * Lone surrogates are written as U+FFFD, matching TextEncoder.
 */
export function utf8Into(s: string, buf: Uint8Array<ArrayBuffer>): [Uint8Array<ArrayBuffer>, number] {
  if (buf.length < s.length * 3) buf = new Uint8Array(s.length * 3 + 16);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      buf[n++] = c;
      continue;
    }
    if (c < 0x800) {
      buf[n++] = 0xc0 | (c >> 6);
      buf[n++] = 0x80 | (c & 63);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
        buf[n++] = 0xf0 | (cp >> 18);
        buf[n++] = 0x80 | ((cp >> 12) & 63);
        buf[n++] = 0x80 | ((cp >> 6) & 63);
        buf[n++] = 0x80 | (cp & 63);
        continue;
      }
      c = 0xfffd; // lone surrogate
    }
    buf[n++] = 0xe0 | (c >> 12);
    buf[n++] = 0x80 | ((c >> 6) & 63);
    buf[n++] = 0x80 | (c & 63);
  }
  return [buf, n];
}

/** Length of the well-formed UTF-8 sequence starting at bytes[i], or 0 if it is not one. */
export function utf8SeqLen(bytes: Uint8Array, i: number): number {
  const b0 = bytes[i];
  if (b0 < 0x80) return 1;
  const n = bytes.length;
  const cont = (k: number) => k < n && (bytes[k] & 0xc0) === 0x80;
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(i + 1) ? 2 : 0;
  if (b0 >= 0xe0 && b0 <= 0xef) {
    if (!cont(i + 1) || !cont(i + 2)) return 0;
    const b1 = bytes[i + 1];
    if (b0 === 0xe0 && b1 < 0xa0) return 0; // overlong
    if (b0 === 0xed && b1 >= 0xa0) return 0; // UTF-16 surrogate
    return 3;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    if (!cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
    const b1 = bytes[i + 1];
    if (b0 === 0xf0 && b1 < 0x90) return 0; // overlong
    if (b0 === 0xf4 && b1 >= 0x90) return 0; // > U+10FFFF
    return 4;
  }
  return 0;
}

/**
 * Split a byte sequence into maximal well-formed UTF-8 runs and single invalid bytes.
 * Each entry is [start, end, valid].
 */
export function splitUtf8(bytes: Uint8Array): Array<[number, number, boolean]> {
  const out: Array<[number, number, boolean]> = [];
  let i = 0;
  let runStart = 0;
  while (i < bytes.length) {
    const k = utf8SeqLen(bytes, i);
    if (k > 0) {
      i += k;
      continue;
    }
    if (i > runStart) out.push([runStart, i, true]);
    out.push([i, i + 1, false]);
    i++;
    runStart = i;
  }
  if (i > runStart) out.push([runStart, i, true]);
  return out;
}
