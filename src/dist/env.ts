// Where a rank learns who it is. The webomni launcher and torchrun-style
// launchers set RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT; Slurm's
// srun sets SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID; Open MPI's mpirun sets
// OMPI_COMM_WORLD_RANK/SIZE/LOCAL_RANK. The first contract present wins, in
// that order, so a launcher inside an allocation overrides the scheduler.
import { readFileSync } from 'node:fs';
import { DistError } from './errors.ts';

export interface RankEnv {
  rank: number;
  worldSize: number;
  localRank: number;
  masterAddr: string;
  masterPort: number;
  source: 'env' | 'slurm' | 'openmpi';
}

export const DEFAULT_MASTER_PORT = 29500;

function int(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new DistError(`${name}="${v}" is not a non-negative integer`);
  return n;
}

/** Returns null when no contract is present (a single, stand-alone process). */
export function readRankEnv(env: NodeJS.ProcessEnv = process.env): RankEnv | null {
  let r: Omit<RankEnv, 'masterAddr' | 'masterPort'> | null = null;
  const rank = int(env, 'RANK');
  const size = int(env, 'WORLD_SIZE');
  if (rank !== undefined || size !== undefined) {
    if (rank === undefined || size === undefined) throw new DistError('RANK and WORLD_SIZE must be set together');
    r = { rank, worldSize: size, localRank: int(env, 'LOCAL_RANK') ?? rank, source: 'env' };
  } else if (int(env, 'OMPI_COMM_WORLD_RANK') !== undefined) {
    r = { rank: int(env, 'OMPI_COMM_WORLD_RANK')!, worldSize: int(env, 'OMPI_COMM_WORLD_SIZE') ?? 1, localRank: int(env, 'OMPI_COMM_WORLD_LOCAL_RANK') ?? 0, source: 'openmpi' };
  } else if (int(env, 'SLURM_PROCID') !== undefined) {
    r = { rank: int(env, 'SLURM_PROCID')!, worldSize: int(env, 'SLURM_NTASKS') ?? 1, localRank: int(env, 'SLURM_LOCALID') ?? 0, source: 'slurm' };
  }
  if (!r) return null;
  if (r.rank >= r.worldSize) throw new DistError(`rank ${r.rank} is outside the world of ${r.worldSize} ranks (from ${r.source} environment)`);
  return { ...r, masterAddr: env.MASTER_ADDR || '127.0.0.1', masterPort: int(env, 'MASTER_PORT') ?? DEFAULT_MASTER_PORT };
}

/** The per-job secret: WEBOMNI_JOB_SECRET (hex, or any string) or a file named by WEBOMNI_JOB_SECRET_FILE. */
export function readJobSecret(env: NodeJS.ProcessEnv = process.env): Uint8Array {
  let s = env.WEBOMNI_JOB_SECRET;
  if (!s && env.WEBOMNI_JOB_SECRET_FILE) s = readFileSync(env.WEBOMNI_JOB_SECRET_FILE, 'utf8').trim();
  if (!s) {
    throw new DistError('no job secret: set WEBOMNI_JOB_SECRET or WEBOMNI_JOB_SECRET_FILE to the same value on every rank (`webomni launch` does this for you)');
  }
  if (s.length < 16) throw new DistError('the job secret is too short (use at least 16 characters, e.g. `openssl rand -hex 32`)');
  return /^[0-9a-f]+$/i.test(s) && s.length % 2 === 0 ? Buffer.from(s, 'hex') : Buffer.from(s, 'utf8');
}
