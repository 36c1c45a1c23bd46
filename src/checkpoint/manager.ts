// Training checkpoints on disk (Node-only).
//
//   <dir>/step-00000100/model.safetensors       parameters by dotted name
//   <dir>/step-00000100/optimizer.safetensors   optimizer state: "<param>.<slot>"
//   <dir>/step-00000100/manifest.json           step, trainer/loader/RNG state, file hashes
//
// A checkpoint is written into `step-….tmp-<pid>` and renamed into place only after every
// file is written and fsynced, so a crash mid-write never leaves a half-written checkpoint
// under a final name; the manifest's SHA-256 of each file catches later corruption.

import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Tensor } from '../tensor/tensor.ts';
import { encodeTensors, decodeTensors } from './tensors.ts';

export const CHECKPOINT_FORMAT = 'webomni-checkpoint';
export const CHECKPOINT_VERSION = 1;

export interface CheckpointManifest {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  step: number;
  time: string;
  /** Anything JSON the trainer needs to resume exactly (loader, RNG, schedule, config). */
  state: Record<string, unknown>;
  files: Record<string, { bytes: number; sha256: string }>;
}

export interface CheckpointContents {
  dir: string;
  manifest: CheckpointManifest;
  tensors: Record<string, Map<string, Tensor>>;
}

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

const STEP_DIR = /^step-(\d{8})$/;

async function writeSynced(path: string, bytes: Uint8Array): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function syncDir(path: string): Promise<void> {
  try {
    const fh = await open(path, 'r');
    await fh.sync();
    await fh.close();
  } catch {
    // Directory fsync is not supported everywhere; the rename is still atomic.
  }
}

export class CheckpointManager {
  constructor(
    readonly dir: string,
    readonly keepLast = 3,
  ) {}

  /** Save tensor groups (e.g. {model: [...], optimizer: [...]}) and state as checkpoint `step`. */
  async save(step: number, groups: Record<string, Iterable<[string, Tensor]>>, state: Record<string, unknown>): Promise<string> {
    await mkdir(this.dir, { recursive: true });
    const name = `step-${String(step).padStart(8, '0')}`;
    const final = join(this.dir, name);
    const tmp = join(this.dir, `${name}.tmp-${process.pid}`);
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp);
    const files: CheckpointManifest['files'] = {};
    for (const [group, named] of Object.entries(groups)) {
      const bytes = await encodeTensors(named, { group, step: String(step) });
      const file = `${group}.safetensors`;
      await writeSynced(join(tmp, file), bytes);
      files[file] = { bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') };
    }
    const manifest: CheckpointManifest = { format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, step, time: new Date().toISOString(), state, files };
    await writeSynced(join(tmp, 'manifest.json'), new TextEncoder().encode(JSON.stringify(manifest, null, 1)));
    await syncDir(tmp);
    await rm(final, { recursive: true, force: true });
    await rename(tmp, final);
    await syncDir(this.dir);
    await this.prune();
    return final;
  }

  /** Complete checkpoints (final names only), oldest first. */
  async list(): Promise<Array<{ step: number; dir: string }>> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const out: Array<{ step: number; dir: string }> = [];
    for (const n of names) {
      const m = STEP_DIR.exec(n);
      if (!m) continue;
      try {
        await stat(join(this.dir, n, 'manifest.json'));
        out.push({ step: Number(m[1]), dir: join(this.dir, n) });
      } catch {
        // no manifest: not a complete checkpoint
      }
    }
    return out.sort((a, b) => a.step - b.step);
  }

  async latest(): Promise<string | null> {
    const all = await this.list();
    return all.length ? all[all.length - 1].dir : null;
  }

  private async prune(): Promise<void> {
    const all = await this.list();
    for (const c of all.slice(0, Math.max(0, all.length - this.keepLast))) await rm(c.dir, { recursive: true, force: true });
    // Leftovers of interrupted writes by dead processes.
    for (const n of await readdir(this.dir)) {
      const m = /\.tmp-(\d+)$/.exec(n);
      if (m && !isAlive(Number(m[1]))) await rm(join(this.dir, n), { recursive: true, force: true });
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Load and verify a checkpoint directory: manifest, hashes, then tensors. */
export async function loadCheckpoint(dir: string): Promise<CheckpointContents> {
  let manifest: CheckpointManifest;
  const mpath = join(dir, 'manifest.json');
  try {
    manifest = JSON.parse(await readFile(mpath, 'utf8'));
  } catch (e) {
    throw new CheckpointError(`${mpath}: cannot read the checkpoint manifest (${(e as Error).message})`);
  }
  if (manifest.format !== CHECKPOINT_FORMAT || manifest.version !== CHECKPOINT_VERSION) {
    throw new CheckpointError(`${mpath}: not a ${CHECKPOINT_FORMAT} v${CHECKPOINT_VERSION} manifest`);
  }
  const tensors: Record<string, Map<string, Tensor>> = {};
  for (const [file, info] of Object.entries(manifest.files)) {
    const path = join(dir, file);
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch (e) {
      throw new CheckpointError(`${path}: missing checkpoint file (${(e as Error).message})`);
    }
    const sha = createHash('sha256').update(bytes).digest('hex');
    if (bytes.byteLength !== info.bytes || sha !== info.sha256) {
      throw new CheckpointError(`${path}: corrupted (size ${bytes.byteLength} vs ${info.bytes} expected, or SHA-256 mismatch)`);
    }
    tensors[file.replace(/\.safetensors$/, '')] = decodeTensors(bytes, path).tensors;
  }
  return { dir, manifest, tensors };
}
