// One real WebGPU device per test file (lavapipe in CI). Never mocked.
import { afterAll, beforeAll } from 'vitest';
import { initDevice, type Device } from '../../src/node.ts';

export function useDevice(): { readonly device: Device } {
  const holder = {} as { device: Device };
  beforeAll(async () => {
    holder.device = await initDevice();
  });
  afterAll(() => {
    holder.device?.destroy();
  });
  return holder;
}
