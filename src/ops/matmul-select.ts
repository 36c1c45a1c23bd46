// Which matmul kernel and workgroup shape to use for a problem size.
import type { Device } from '../device/index.ts';

export interface MatmulKernel {
  entry: 'blocked' | 'simple';
  wgx: number;
  wgy: number;
  /** Outputs per thread along M and N (fixed by the WGSL entry). */
  tm: number;
  tn: number;
}

export function chooseMatmulKernel(_device: Device, m: number, n: number, _k: number, _batch: number): MatmulKernel {
  if (m * n < 4096 || m < 4 || n < 8) return { entry: 'simple', wgx: 16, wgy: 16, tm: 1, tn: 1 };
  return { entry: 'blocked', wgx: 16, wgy: 8, tm: 4, tn: 8 };
}
