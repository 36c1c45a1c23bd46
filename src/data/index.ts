// webomni data layer, platform-neutral part (Node-only file access: ./node.ts).
export * from './tokenizer/index.ts';
export * from './documents.ts';
export * from './corpus.ts';
export * from './packing.ts';
export { Sfc32, type RngState } from './rng.ts';
