// Public surface of the distributed layer.
export { initProcessGroup, initFromEnv, World, type InitOptions } from './init.ts';
export { ProcessGroup, type OpOptions, type ReduceOptions, type AllToAllVOptions } from './group.ts';
export { DeviceMesh } from './mesh.ts';
export { Work } from './work.ts';
export { StoreServer, StoreClient, type StoreValue } from './store.ts';
export { readRankEnv, readJobSecret, type RankEnv } from './env.ts';
export { DistError, CollectiveMismatchError, DistTimeoutError, PeerFailureError } from './errors.ts';
export type { HostBuffer, ReduceOp } from './dtype.ts';
export { allocHostBuffer, freeHostBuffer, isRegisteredHostBuffer } from './host-buffer.ts';
export { createInProcFabric } from '../../transports/inproc.ts';
