// Node-only: acquire a GPU through Dawn (npm `webgpu`). Kept apart from the rest of
// src/ so browser bundles never import it.

import { Device, WebGPUError, type AdapterDescription } from './device.ts';
import { requestFeatures, describeAdapter, requiredLimits } from './acquire.ts';

export interface NodeDeviceOptions {
  /** Dawn backend: 'vulkan', 'metal', 'd3d12', 'opengl'… (env WEBOMNI_BACKEND). */
  backend?: string;
  /** Substring of the adapter description to pick, e.g. 'llvmpipe' (env WEBOMNI_ADAPTER). */
  adapter?: string;
  powerPreference?: GPUPowerPreference;
}

export async function createNodeDevice(opts: NodeDeviceOptions = {}): Promise<Device> {
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = '/tmp';
  let dawn: { create(flags: string[]): GPU; globals: Record<string, unknown> };
  try {
    dawn = (await import('webgpu')) as unknown as typeof dawn;
  } catch (e) {
    throw new WebGPUError(`could not load Dawn (npm 'webgpu'): ${(e as Error).message}. Run 'npm install'.`);
  }
  // The WebGPU enums (GPUBufferUsage, GPUMapMode…) as globals, like in a browser.
  for (const [k, v] of Object.entries(dawn.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  const backend = opts.backend || process.env.WEBOMNI_BACKEND || undefined;
  const flags: string[] = [];
  if (backend) flags.push(`backend=${backend}`);
  const adapterName = opts.adapter || process.env.WEBOMNI_ADAPTER;
  if (adapterName) flags.push(`adapter=${adapterName}`);
  // Dawn tears the device down if this object is collected: the Device holds it.
  const gpu = dawn.create(flags);
  const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  if (!adapter) {
    throw new WebGPUError(
      'no WebGPU adapter found. Install a Vulkan driver (on a machine without a GPU: Mesa lavapipe, ' +
        "`npm run setup` does it on Debian as root) and run 'webomni doctor'.",
    );
  }
  const gpuDevice = await adapter.requestDevice({
    requiredFeatures: requestFeatures(adapter),
    requiredLimits: requiredLimits(adapter),
    label: 'webomni',
  });
  const desc: AdapterDescription = describeAdapter(adapter, backend ?? 'default');
  return new Device(gpuDevice, desc, gpu);
}
