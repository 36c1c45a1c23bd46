import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatSample, ManifestError, parseManifest } from '../../src/data/multimodal/index.ts';
import { loadManifest } from '../../src/data/multimodal/node.ts';

const line = (o: unknown) => JSON.stringify(o);

describe('manifest parsing', () => {
  it('parses text, image and audio segments with targets, loss mode and meta', () => {
    const text = [
      line({ id: 'a', source: 'fashion-caption', segments: [{ image: 'images/x.png' }, { text: 'a coat', target: true }], meta: { label: 4 } }),
      '',
      line({ id: 'b', source: 'speech', segments: [{ audio: 'audio/y.wav' }, { text: 'coat', target: true }] }),
      line({ id: 'c', source: 'brown-text', segments: [{ text: 'Hello.' }], loss: 'all' }),
      line({ id: 'd', source: 'idx', segments: [{ image: 'train.idx', index: 7 }] }) + '\r',
    ].join('\n');
    const s = parseManifest(text, { file: 'data/set/manifest.train.jsonl' });
    expect(s.map((x) => [x.id, x.line, x.loss])).toEqual([
      ['a', 1, 'targets'],
      ['b', 3, 'targets'],
      ['c', 4, 'all'],
      ['d', 5, 'targets'],
    ]);
    expect(s[0].baseDir).toBe('data/set');
    expect(s[0].segments).toEqual([
      { type: 'image', path: 'images/x.png' },
      { type: 'text', text: 'a coat', target: true },
    ]);
    expect(s[0].meta).toEqual({ label: 4 });
    expect(s[2].segments).toEqual([{ type: 'text', text: 'Hello.', target: false }]);
    expect(s[3].segments[0]).toEqual({ type: 'image', path: 'train.idx', index: 7 });
    // Round trip through formatSample.
    const again = parseManifest(s.map((x) => formatSample(x)).join('\n'), { file: 'data/set/manifest.train.jsonl' });
    const noLine = ({ line: _l, ...rest }: (typeof s)[number]) => rest;
    expect(again.map(noLine)).toEqual(s.map(noLine));
    expect(again.map((x) => x.line)).toEqual([1, 2, 3, 4]);
  });

  const bad = (lines: string[], re: RegExp) => {
    const f = () => parseManifest(lines.join('\n'), { file: 'm.jsonl' });
    expect(f).toThrow(ManifestError);
    expect(f).toThrow(re);
  };
  const ok = line({ id: 'ok', source: 's', segments: [{ text: 'x' }] });

  it('bad JSON names the file and line', () => {
    bad([ok, '', '{"id": "x", "source": '], /^m\.jsonl:3: invalid JSON/);
  });
  it('unknown segment type names the line and the keys', () => {
    bad([ok, line({ id: 'v', source: 's', segments: [{ text: 'a' }, { video: 'v.mp4' }] })], /^m\.jsonl:2: segments\[1\]: unknown segment type \(keys "video"/);
  });
  it('other validation errors', () => {
    bad([line({ id: 'v', source: 's', segments: [{ text: 'a', image: 'b.png' }] })], /m\.jsonl:1: segments\[0\]: a segment has exactly one of/);
    bad([line({ id: 'v', source: 's', segments: [{ text: 'a', target: 'yes' }] })], /m\.jsonl:1: segments\[0\]\.target must be true or false/);
    bad([line({ id: 'v', source: 's', segments: [{ image: '/etc/x.png' }] })], /m\.jsonl:1: segments\[0\]\.image must be a path relative/);
    bad([line({ id: 'v', source: 's', segments: [{ audio: 'a.wav', index: 1 }] })], /unknown key "index" in a audio segment/);
    bad([line({ id: 'v', source: 's', segments: [] })], /m\.jsonl:1: "segments" must be a non-empty array/);
    bad([line({ id: 'v', segments: [{ text: 'a' }] })], /m\.jsonl:1: "source" must be a non-empty string/);
    bad([line({ id: 'v', source: 's', segments: [{ text: 'a' }], loss: 'some' })], /"loss" must be "targets", "all" or "none"/);
    bad([line({ id: 'v', source: 's', segments: [{ text: 'a' }], extra: 1 })], /m\.jsonl:1: unknown key "extra"/);
    bad([ok, ok], /m\.jsonl:2: duplicate id "ok" \(first on line 1\)/);
    bad(['[1, 2]'], /m\.jsonl:1: a sample must be a JSON object, got an array/);
  });

  it('loadManifest: a missing media file names the manifest, the line and the path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mm-manifest-'));
    mkdirSync(join(dir, 'images'));
    writeFileSync(join(dir, 'images', 'here.png'), 'x');
    const file = join(dir, 'manifest.train.jsonl');
    writeFileSync(
      file,
      [line({ id: 'a', source: 'c', segments: [{ image: 'images/here.png' }] }), line({ id: 'b', source: 'c', segments: [{ text: 'x' }, { image: 'images/gone.png' }] })].join('\n'),
    );
    const f = () => loadManifest(file);
    expect(f).toThrow(ManifestError);
    expect(f).toThrow(`${file}:2: segments[1]: image file not found: images/gone.png (resolved to ${join(dir, 'images', 'gone.png')})`);
    // Without the check it parses, paths resolve against the manifest's directory.
    const s = loadManifest(file, { checkFiles: false });
    expect(s.map((x) => x.baseDir)).toEqual([dir, dir]);
    expect(() => loadManifest(join(dir, 'nope.jsonl'))).toThrow(/manifest not found/);
  });
});
