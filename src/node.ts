// Node entry: everything in src/index.ts plus Dawn device creation.
import { createNodeDevice, type NodeDeviceOptions } from './device/node.ts';
import { setDevice, type Device } from './device/index.ts';
import { loadMatmulTuning } from './ops/matmul-tuner.ts';

export * from './index.ts';
export * from './checkpoint/files.ts';
export * from './data/node.ts';
export { createNodeDevice, type NodeDeviceOptions };

/** Create the Dawn device and make it current. */
export async function initDevice(opts: NodeDeviceOptions = {}): Promise<Device> {
  const d = await createNodeDevice(opts);
  setDevice(d);
  // Matmul kernel choices measured earlier on this adapter (`npm run bench -- matmul --tune`).
  await loadMatmulTuning(d).catch(() => 0);
  return d;
}
export { CheckpointManager, loadCheckpoint, CheckpointError, type CheckpointManifest, type CheckpointContents } from './checkpoint/manager.ts';
