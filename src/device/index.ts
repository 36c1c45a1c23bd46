// The current device. Ops run on it; set it once per process (or per test file).
import type { Device } from './device.ts';

export { Device, WebGPUError } from './device.ts';
export type { DispatchSpec, BufferBinding, AdapterDescription, KernelDType } from './device.ts';
export { sizeClass, type PoolStats } from './pool.ts';

let current: Device | null = null;

export function setDevice(d: Device | null): void {
  current = d;
}

export function getDevice(): Device {
  if (!current || current.isDestroyed) {
    throw new Error('no WebGPU device: call `await initDevice()` (Node: webomni/node) or setDevice() first');
  }
  return current;
}

export function hasDevice(): boolean {
  return current !== null && !current.isDestroyed;
}
