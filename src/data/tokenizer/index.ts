export { Tokenizer, type AddedToken, type EncodeOptions, type DecodeOptions } from './tokenizer.ts';
export { trainBpe, countWords, type TrainOptions, type TrainStats } from './train.ts';
export { BpeModel } from './bpe.ts';
export { TokenizerError } from './errors.ts';
export { GPT2_PATTERN, LLAMA3_PATTERN, PreTokenizer, translateRegex } from './pretokenize.ts';
export { BYTE_TO_CHAR, CHAR_TO_BYTE, splitUtf8 } from './bytes.ts';
export * from './special.ts';
