export { DecoderLM, DEFAULT_DECODER, type DecoderConfig, type PackedBatch } from './decoder.ts';
export { generate, sampleToken, type SampleOptions } from './generate.ts';
