// Multimodal JSONL manifests (format: docs/data.md). Platform-neutral parsing and
// validation; errors name the file and the 1-based line. File existence is checked by
// the Node loader (./node.ts) or any caller through `checkFiles`.

export type Modality = 'text' | 'image' | 'audio';
/** 'image', 'audio', or a modality registered with registerMediaDecoder. */
export type MediaModality = string;

export interface TextSegment {
  type: 'text';
  text: string;
  /** Whether these tokens carry loss (see ManifestSample.loss). */
  target: boolean;
}
export interface ImageSegment {
  type: 'image';
  /** Path relative to the manifest's directory. */
  path: string;
  /** Image index inside an IDX file ([N, H, W] array); absent for single-image files. */
  index?: number;
}
export interface AudioSegment {
  type: 'audio';
  path: string;
}
/** A segment of a registered extra modality (see modalities.ts): `{"<modality>": "path"}`. */
export interface ExtraMediaSegment {
  type: 'extra';
  modality: string;
  path: string;
}
export type Segment = TextSegment | ImageSegment | AudioSegment | ExtraMediaSegment;
export type MediaSegment = ImageSegment | AudioSegment | ExtraMediaSegment;

/** The modality name of a media segment ('image', 'audio', or a registered extra one). */
export function segmentModality(seg: MediaSegment): string {
  return seg.type === 'extra' ? seg.modality : seg.type;
}

/**
 * Which text segments carry loss: 'targets' (default) those with `"target": true`, 'all' every
 * text segment, 'none' no segment (context-only samples).
 */
export type LossMode = 'targets' | 'all' | 'none';

export interface ManifestSample {
  id: string;
  source: string;
  segments: Segment[];
  loss: LossMode;
  meta?: Record<string, unknown>;
  /** Where the sample was read: manifest file, its directory (media paths resolve against it), 1-based line. */
  file: string;
  baseDir: string;
  line: number;
}

export class ManifestError extends Error {
  override name = 'ManifestError';
  constructor(
    message: string,
    readonly file?: string,
    readonly line?: number,
  ) {
    super(file !== undefined ? `${file}${line !== undefined ? `:${line}` : ''}: ${message}` : message);
  }
}

export interface ParseManifestOptions {
  /** Manifest file name, for error messages and ManifestSample.file (default "<manifest>"). */
  file?: string;
  /** Directory media paths are relative to (default: the directory part of `file`, or ""). */
  baseDir?: string;
  /** Called with each media path resolved against baseDir; return false if it does not exist. */
  checkFiles?: (resolvedPath: string) => boolean;
}

import { mediaDecoder, registeredMediaTypes } from './modalities.ts';

const SAMPLE_KEYS = new Set(['id', 'source', 'segments', 'loss', 'meta']);
const SEGMENT_KINDS = ['text', 'image', 'audio'] as const;

/** Join a manifest-relative media path to the manifest's directory ("/"-separated). */
export function resolveMediaPath(baseDir: string, path: string): string {
  if (baseDir === '' || baseDir === '.') return path;
  return baseDir.endsWith('/') || baseDir.endsWith('\\') ? baseDir + path : `${baseDir}/${path}`;
}

function dirOf(file: string): string {
  const i = Math.max(file.lastIndexOf('/'), file.lastIndexOf('\\'));
  return i < 0 ? '' : i === 0 ? '/' : file.slice(0, i);
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseSegment(v: unknown, i: number, err: (m: string) => never): Segment {
  const where = `segments[${i}]`;
  if (!isObj(v)) return err(`${where} must be an object, got ${JSON.stringify(v)}`);
  const kinds = SEGMENT_KINDS.filter((k) => k in v);
  const keys = Object.keys(v);
  if (kinds.length === 0 && keys.length === 1 && mediaDecoder(keys[0])) {
    const path = v[keys[0]];
    if (typeof path !== 'string' || path.length === 0) return err(`${where}.${keys[0]} must be a non-empty path string`);
    if (/^[/\\]/.test(path) || /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(path)) return err(`${where}.${keys[0]} must be a path relative to the manifest's directory, got ${JSON.stringify(path)}`);
    return { type: 'extra', modality: keys[0], path };
  }
  const known = ['"text"', '"image"', '"audio"', ...registeredMediaTypes().map((m) => `"${m}"`)].join(', ');
  if (kinds.length === 0) return err(`${where}: unknown segment type (keys ${keys.map((k) => JSON.stringify(k)).join(', ') || 'none'}; expected one of ${known})`);
  if (kinds.length > 1) return err(`${where}: a segment has exactly one of "text", "image", "audio", got ${kinds.map((k) => `"${k}"`).join(' and ')}`);
  const kind = kinds[0];
  const allowed = kind === 'text' ? ['text', 'target'] : kind === 'image' ? ['image', 'index'] : ['audio'];
  for (const k of Object.keys(v)) if (!allowed.includes(k)) err(`${where}: unknown key "${k}" in a ${kind} segment (allowed: ${allowed.join(', ')})`);
  if (kind === 'text') {
    if (typeof v.text !== 'string') return err(`${where}.text must be a string`);
    if (v.target !== undefined && typeof v.target !== 'boolean') return err(`${where}.target must be true or false`);
    return { type: 'text', text: v.text, target: v.target === true };
  }
  const path = v[kind];
  if (typeof path !== 'string' || path.length === 0) return err(`${where}.${kind} must be a non-empty path string`);
  if (/^[/\\]/.test(path) || /^[a-zA-Z]:[/\\]/.test(path) || /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(path))
    return err(`${where}.${kind} must be a path relative to the manifest's directory, got ${JSON.stringify(path)}`);
  if (kind === 'image') {
    if (v.index !== undefined && (!Number.isInteger(v.index) || (v.index as number) < 0)) return err(`${where}.index must be a non-negative integer`);
    return v.index === undefined ? { type: 'image', path } : { type: 'image', path, index: v.index as number };
  }
  return { type: 'audio', path };
}

/** Parse one manifest line (already JSON-decoded). */
export function parseSampleObject(obj: unknown, file: string, baseDir: string, line: number): ManifestSample {
  const err = (m: string): never => {
    throw new ManifestError(m, file, line);
  };
  if (!isObj(obj)) return err(`a sample must be a JSON object, got ${Array.isArray(obj) ? 'an array' : JSON.stringify(obj)}`);
  for (const k of Object.keys(obj)) if (!SAMPLE_KEYS.has(k)) err(`unknown key "${k}" (allowed: ${[...SAMPLE_KEYS].join(', ')})`);
  if (typeof obj.id !== 'string' || obj.id.length === 0) err('"id" must be a non-empty string');
  if (typeof obj.source !== 'string' || obj.source.length === 0) err('"source" must be a non-empty string');
  if (!Array.isArray(obj.segments) || obj.segments.length === 0) err('"segments" must be a non-empty array');
  const loss = obj.loss ?? 'targets';
  if (loss !== 'targets' && loss !== 'all' && loss !== 'none') err(`"loss" must be "targets", "all" or "none", got ${JSON.stringify(obj.loss)}`);
  if (obj.meta !== undefined && !isObj(obj.meta)) err('"meta" must be an object');
  const segments = (obj.segments as unknown[]).map((s, i) => parseSegment(s, i, err));
  const sample: ManifestSample = { id: obj.id as string, source: obj.source as string, segments, loss: loss as LossMode, file, baseDir, line };
  if (obj.meta !== undefined) sample.meta = obj.meta as Record<string, unknown>;
  return sample;
}

/** Parse a JSONL manifest; blank lines are skipped; ids must be unique within the file. */
export function parseManifest(text: string, opts: ParseManifestOptions = {}): ManifestSample[] {
  const file = opts.file ?? '<manifest>';
  const baseDir = opts.baseDir ?? dirOf(file);
  const lines = text.split('\n');
  const out: ManifestSample[] = [];
  const seen = new Map<string, number>();
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].replace(/\r$/, '');
    if (raw.trim() === '') continue;
    const line = i + 1;
    let obj: unknown;
    try {
      obj = JSON.parse(raw);
    } catch (e) {
      throw new ManifestError(`invalid JSON: ${(e as Error).message}`, file, line);
    }
    const s = parseSampleObject(obj, file, baseDir, line);
    const prev = seen.get(s.id);
    if (prev !== undefined) throw new ManifestError(`duplicate id ${JSON.stringify(s.id)} (first on line ${prev})`, file, line);
    seen.set(s.id, line);
    if (opts.checkFiles)
      s.segments.forEach((seg, j) => {
        if (seg.type === 'text') return;
        const resolved = resolveMediaPath(baseDir, seg.path);
        if (!opts.checkFiles!(resolved)) throw new ManifestError(`segments[${j}]: ${seg.type} file not found: ${seg.path} (resolved to ${resolved})`, file, line);
      });
    out.push(s);
  }
  return out;
}

/** Serialise a sample back to its manifest line (without file/line bookkeeping). */
export function formatSample(s: Pick<ManifestSample, 'id' | 'source' | 'segments'> & { loss?: LossMode; meta?: Record<string, unknown> }): string {
  const segments = s.segments.map((g) =>
    g.type === 'text' ? (g.target ? { text: g.text, target: true } : { text: g.text }) : g.type === 'image' ? (g.index === undefined ? { image: g.path } : { image: g.path, index: g.index }) : { audio: g.path },
  );
  const o: Record<string, unknown> = { id: s.id, source: s.source, segments };
  if (s.loss && s.loss !== 'targets') o.loss = s.loss;
  if (s.meta) o.meta = s.meta;
  return JSON.stringify(o);
}
