// Node-only: safetensors files on disk, written atomically.
import { readFile, rename, mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Tensor } from '../tensor/tensor.ts';
import { encodeTensors, decodeTensors } from './tensors.ts';

/** Write bytes to `path` via a temporary file, fsync and rename, so readers never see a partial file. */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

export async function saveSafeTensors(path: string, named: Iterable<[string, Tensor]>, metadata?: Record<string, string>): Promise<void> {
  await writeFileAtomic(path, await encodeTensors(named, metadata));
}

export async function loadSafeTensors(path: string): Promise<{ tensors: Map<string, Tensor>; metadata: Record<string, string> }> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new Error(`cannot read safetensors file ${path}: ${(e as Error).message}`);
  }
  return decodeTensors(bytes, path);
}

