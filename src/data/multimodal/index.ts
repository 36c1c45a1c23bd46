// Multimodal data, platform-neutral part (Node-only file access: ./node.ts).
export * from './manifest.ts';
export * from './image.ts';
export * from './audio.ts';
export * from './media.ts';
export * from './augment.ts';
export * from './collate.ts';
export * from './modalities.ts';
