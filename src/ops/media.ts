// Media ops for the modality encoders: image patches, packed 1-D convolution and the
// log-mel audio front end (one export line in ./index.ts).
export * from './patch.ts';
export * from './conv1d.ts';
export * from './conv2d.ts';
export * from './melspec.ts';
