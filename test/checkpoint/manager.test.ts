import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as W from '../../src/node.ts';
import { useDevice } from '../helpers/device.ts';

useDevice();

describe('checkpoint manager', () => {
  it('saves, keeps the last N, and loads verified contents', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'webomni-ck-'));
    const m = new W.CheckpointManager(dir, 2);
    const w = W.tensor([1, 2, 3], [3]);
    for (const step of [10, 20, 30]) {
      await m.save(step, { model: [['w', W.affine(w, step, 0)]], optimizer: [['w.m', W.zeros([3])]] }, { loader: { epoch: 1, cursor: step } });
    }
    expect((await m.list()).map((c) => c.step)).toEqual([20, 30]);
    const latest = await m.latest();
    expect(latest).toMatch(/step-00000030$/);
    const ck = await W.loadCheckpoint(latest!);
    expect(ck.manifest.step).toBe(30);
    expect(ck.manifest.state).toEqual({ loader: { epoch: 1, cursor: 30 } });
    expect(Array.from(await ck.tensors.model.get('w')!.toArray())).toEqual([30, 60, 90]);
    expect(ck.tensors.optimizer.get('w.m')!.shape).toEqual([3]);
  });

  it('a corrupted file is a clear error naming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'webomni-ck-'));
    const m = new W.CheckpointManager(dir);
    const path = await m.save(1, { model: [['w', W.ones([64])]] }, {});
    const f = join(path, 'model.safetensors');
    const bytes = readFileSync(f);
    bytes[bytes.length - 1] ^= 0xff;
    writeFileSync(f, bytes);
    await expect(W.loadCheckpoint(path)).rejects.toThrow(/model\.safetensors: corrupted/);
    await expect(W.loadCheckpoint(join(dir, 'nope'))).rejects.toThrow(/nope\/manifest\.json: cannot read/);
  });

  it('a process killed while writing leaves the previous checkpoint as the latest complete one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'webomni-ck-'));
    const script = join(dir, 'writer.mts');
    writeFileSync(
      script,
      `import * as W from ${JSON.stringify(join(import.meta.dirname, '../../src/node.ts'))};
       const d = await W.initDevice();
       const m = new W.CheckpointManager(${JSON.stringify(dir)}, 5);
       await m.save(1, { model: [['w', W.ones([16])]] }, { n: 1 });
       console.log('saved1');
       const big = W.zeros([24 * 1024 * 1024]);
       for (let s = 2; ; s++) { console.log('saving' + s); await m.save(s, { model: [['w', big]] }, { n: s }); }`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'pipe'], cwd: join(import.meta.dirname, '../..') });
    let err = '';
    child.stderr.on('data', (b) => (err += b));
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (b) => {
        out += b;
        if (out.includes('saving3')) {
          // Let the write of checkpoint 3 get going, then kill without warning.
          setTimeout(() => child.kill('SIGKILL'), 30);
          resolve();
        }
      });
      child.on('exit', (code) => (out.includes('saving3') ? resolve() : reject(new Error(`writer exited early (${code}): ${out} ${err}`))));
    });
    await new Promise((r) => child.on('exit', r));
    const m = new W.CheckpointManager(dir, 5);
    const latest = await m.latest();
    expect(latest).not.toBeNull();
    const ck = await W.loadCheckpoint(latest!);
    expect(ck.manifest.step).toBeGreaterThanOrEqual(2);
    expect(ck.manifest.state.n).toBe(ck.manifest.step);
    // The interrupted write left only a temporary directory, never a final name.
    const names = readdirSync(dir).filter((n) => n.startsWith('step-'));
    for (const n of names) expect(n).toMatch(/^step-\d{8}(\.tmp-\d+)?$/);
  }, 120_000);
});
