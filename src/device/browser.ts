// Browser: acquire a GPU through navigator.gpu.
import { Device, WebGPUError } from './device.ts';
import { requestFeatures, describeAdapter, requiredLimits } from './acquire.ts';

export async function createBrowserDevice(opts: { powerPreference?: GPUPowerPreference } = {}): Promise<Device> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) throw new WebGPUError('this browser has no WebGPU (navigator.gpu is missing)');
  const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  if (!adapter) throw new WebGPUError('navigator.gpu.requestAdapter() returned no adapter');
  const device = await adapter.requestDevice({
    requiredFeatures: requestFeatures(adapter),
    requiredLimits: requiredLimits(adapter),
    label: 'webomni',
  });
  return new Device(device, describeAdapter(adapter, 'browser'));
}
