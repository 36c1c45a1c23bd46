export { DecoderLM, DEFAULT_DECODER, type DecoderConfig, type PackedBatch } from './decoder.ts';
