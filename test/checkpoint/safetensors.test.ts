import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as W from '../../src/node.ts';
import { useDevice } from '../helpers/device.ts';

useDevice();

function raw(header: object, data: Uint8Array, headerLen?: number): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen ?? json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

describe('safetensors', () => {
  it('round-trips f32, f16, i32 tensors and metadata through a file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'webomni-st-'));
    const a = W.tensor([1.5, -2, 3.25, 4, 5, 6], [2, 3]);
    const b = W.tensor([1, 0.5, -0.25], [3], 'f16');
    const c = W.tensor([7, -8], [2], 'i32');
    const e = W.zeros([0, 4]);
    const path = join(dir, 'x.safetensors');
    await W.saveSafeTensors(path, [['layers.0.w', W.transpose(a)], ['b', b], ['c', c], ['empty', e]], { step: '3' });
    const bytes = readFileSync(path);
    expect(Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true)) % 8).toBe(0);
    const { tensors, metadata } = await W.loadSafeTensors(path);
    expect(metadata).toEqual({ step: '3' });
    expect(tensors.get('layers.0.w')!.shape).toEqual([3, 2]);
    expect(Array.from(await tensors.get('layers.0.w')!.toArray())).toEqual([1.5, 4, -2, 5, 3.25, 6]);
    expect(tensors.get('b')!.dtype).toBe('f16');
    expect(Array.from(await tensors.get('b')!.toArray())).toEqual([1, 0.5, -0.25]);
    expect(Array.from(await tensors.get('c')!.toArray())).toEqual([7, -8]);
    expect(tensors.get('empty')!.shape).toEqual([0, 4]);
  });

  it('rejects malformed files with errors naming the file and the problem', () => {
    const f32 = (n: number) => new Uint8Array(4 * n);
    const bad: Array<[Uint8Array, RegExp]> = [
      [new Uint8Array(3), /too short/],
      [raw({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, f32(2), 10_000), /runs past the end.*truncated/],
      [raw({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, f32(1)), /data ends at byte 8.*truncated/],
      [raw({ a: { dtype: 'F99', shape: [2], data_offsets: [0, 8] } }, f32(2)), /tensor 'a': unknown dtype "F99"/],
      [raw({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32(2)), /needs 12 bytes but data_offsets span 8/],
      [raw({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 8] } }, f32(2)), /shape \[-1\] is not a list/],
      [
        raw({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, f32(3)),
        /overlaps/,
      ],
      [raw({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, f32(2)), /hole in the data section/],
      [raw({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32(2)), /4 trailing bytes/],
      [raw({ a: { dtype: 'F32', shape: [1], data_offsets: [8, 4] } }, f32(2)), /data_offsets \[8,4\]/],
      [(() => { const r = raw({}, new Uint8Array(0)); r[9] = 0x7b; r[8] = 0x7b; return r; })(), /not valid UTF-8 JSON/],
      [raw({ __metadata__: { x: 1 } }, new Uint8Array(0)), /__metadata__ must be an object of strings/],
    ];
    for (const [bytes, re] of bad) {
      expect(() => W.parseSafeTensors(bytes, 'model.safetensors')).toThrow(re);
      expect(() => W.parseSafeTensors(bytes, 'model.safetensors')).toThrow(/^model\.safetensors: /);
    }
  });

  it('assignParameters checks names and shapes', () => {
    const lin = new W.Linear(3, 2);
    const named = lin.namedParameters();
    const loaded = new Map([['weight', W.zeros([2, 3])]]);
    expect(() => W.assignParameters(named, loaded, (n, t) => lin.setParam(n, t), { source: 'ck' })).toThrow(/ck: parameters do not match the model; missing: bias/);
    const wrong = new Map([['weight', W.zeros([3, 2])], ['bias', W.zeros([2])]]);
    expect(() => W.assignParameters(named, wrong, (n, t) => lin.setParam(n, t))).toThrow(/'weight' has shape \[3, 2\] but the model expects \[2, 3\]/);
  });
});
