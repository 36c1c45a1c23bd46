// webomni's platform-neutral API (bundles for the browser). Node-only pieces — Dawn
// loading, files, processes — live in src/node.ts and are imported from there.
export * from './ops/index.ts';
export * from './autograd/index.ts';
export { Tensor, Storage, shapeSize, fmtShape } from './tensor/tensor.ts';
export { scope, scopeAsync, keep } from './tensor/scope.ts';
export type { DType } from './tensor/dtype.ts';
export { Device, WebGPUError, getDevice, setDevice, hasDevice } from './device/index.ts';
export { createBrowserDevice } from './device/browser.ts';
export * from './nn/index.ts';
export * from './optim/index.ts';
export * from './checkpoint/index.ts';
export * from './models/index.ts';
export * from './data/index.ts';
