// Adapter → device requests shared by the Node and browser loaders.
import type { AdapterDescription } from './device.ts';

const WANTED_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'] as const;

export function requestFeatures(adapter: GPUAdapter): GPUFeatureName[] {
  return WANTED_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
}

/** Ask for the adapter's maxima of the limits that bound tensor and workgroup sizes. */
export function requiredLimits(adapter: GPUAdapter): Record<string, number> {
  const l = adapter.limits;
  return {
    maxBufferSize: l.maxBufferSize,
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
    maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
  };
}

export function describeAdapter(adapter: GPUAdapter, backend: string): AdapterDescription {
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
  return {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
    backend,
  };
}
