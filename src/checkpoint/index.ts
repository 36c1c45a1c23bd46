export * from './safetensors.ts';
export * from './tensors.ts';
