// Modality encoders. Importing this module registers the built-in 'image' and 'audio'
// encoders with the registry (src/models/registry.ts).
export * from './types.ts';
export * from './schema.ts';
export { VisionEncoder, imageDims } from './vision.ts';
export { AudioEncoder, Conv1d, Conv2d } from './audio.ts';
export { Projector } from './projector.ts';
export { registerEncoder, createEncoder, hasEncoder, registeredEncoders, type EncoderFactory } from '../registry.ts';
