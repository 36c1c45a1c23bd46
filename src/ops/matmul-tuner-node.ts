// Node-only: the matmul tuner's on-disk cache, one JSON file keyed by adapter description:
// $WEBOMNI_CACHE_DIR or ~/.cache/webomni/matmul-tuning.json. Never imported by browser code
// (matmul-tuner.ts loads it with a non-literal dynamic import when it runs on Node).
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { MatmulKernel } from './matmul-select.ts';
import { setMatmulTuneStore, type TuneStore } from './matmul-tuner.ts';

export function tuneCachePath(): string {
  const dir = process.env.WEBOMNI_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'webomni');
  return join(dir, 'matmul-tuning.json');
}

type CacheFile = Record<string, Record<string, MatmulKernel>>;

async function readAll(path: string): Promise<CacheFile> {
  try {
    const data = JSON.parse(await readFile(path, 'utf8')) as unknown;
    return data && typeof data === 'object' ? (data as CacheFile) : {};
  } catch {
    return {};
  }
}

export const fileTuneStore: TuneStore = {
  async load(adapter) {
    return (await readAll(tuneCachePath()))[adapter];
  },
  async save(adapter, choices) {
    const path = tuneCachePath();
    const all = await readAll(path);
    all[adapter] = choices;
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(all, null, 1) + '\n');
    await rename(tmp, path);
  },
};

/** Make the JSON file the tuner's store (the default on Node anyway). */
export function useFileTuneStore(): void {
  setMatmulTuneStore(fileTuneStore);
}
