// Reserved special tokens. Tokenizers trained by webomni put them first, so their ids
// are the same for every vocabulary size.

export const PAD_TOKEN = '<|pad|>';
export const BOS_TOKEN = '<|bos|>';
export const EOS_TOKEN = '<|eos|>';
export const IMAGE_TOKEN = '<image>';
export const AUDIO_TOKEN = '<audio>';
export const IMAGE_START_TOKEN = '<|image_start|>';
export const IMAGE_END_TOKEN = '<|image_end|>';
export const AUDIO_START_TOKEN = '<|audio_start|>';
export const AUDIO_END_TOKEN = '<|audio_end|>';

/** The reserved special tokens, in id order (id = index in a webomni-trained tokenizer). */
export const RESERVED_SPECIAL_TOKENS = [
  PAD_TOKEN,
  BOS_TOKEN,
  EOS_TOKEN,
  IMAGE_TOKEN,
  AUDIO_TOKEN,
  IMAGE_START_TOKEN,
  IMAGE_END_TOKEN,
  AUDIO_START_TOKEN,
  AUDIO_END_TOKEN,
] as const;

export type ReservedSpecialToken = (typeof RESERVED_SPECIAL_TOKENS)[number];

/** Ids of the reserved tokens in webomni-trained tokenizers. */
export const SPECIAL_IDS = {
  pad: 0,
  bos: 1,
  eos: 2,
  image: 3,
  audio: 4,
  imageStart: 5,
  imageEnd: 6,
  audioStart: 7,
  audioEnd: 8,
} as const;

/** Number of reserved ids before the 256 byte tokens in a webomni-trained tokenizer. */
export const NUM_RESERVED = RESERVED_SPECIAL_TOKENS.length;
