/** Raised for malformed tokenizer files, unsupported configurations and bad tokenizer input. */
export class TokenizerError extends Error {
  override name = 'TokenizerError';
}
