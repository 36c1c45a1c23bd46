export { DecoderLM, DEFAULT_DECODER, type DecoderConfig, type TokenBatch } from './decoder.ts';
export { generate, sampleToken, type SampleOptions } from './generate.ts';
export * from './encoders/index.ts';
