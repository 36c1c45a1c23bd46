// Media types beyond the built-in image and audio. A new modality registers a decoder
// here (next to its encoder's registration); the manifest parser then accepts
// `{"<modality>": "path"}` segments, the media loader decodes them with it, and the
// collator wraps them in `<|<modality>_start|> N×<<modality>> <|<modality>_end|>` tokens
// (which the tokenizer must have: the omni run adds them for every configured modality).

/** Turns a media file's bytes into the input its encoder takes. */
export type MediaDecoder = (bytes: Uint8Array, path: string) => unknown | Promise<unknown>;

const decoders = new Map<string, MediaDecoder>();
const BUILT_IN = new Set(['text', 'image', 'audio']);

export function registerMediaDecoder(modality: string, decode: MediaDecoder): void {
  if (!/^[a-z][a-z0-9_-]*$/.test(modality)) throw new Error(`registerMediaDecoder: invalid modality name '${modality}'`);
  if (BUILT_IN.has(modality)) throw new Error(`registerMediaDecoder: '${modality}' is a built-in segment type`);
  decoders.set(modality, decode);
}

export function mediaDecoder(modality: string): MediaDecoder | undefined {
  return decoders.get(modality);
}

export function registeredMediaTypes(): string[] {
  return [...decoders.keys()].sort();
}

/** The placeholder token strings of a modality. */
export function placeholderTokens(modality: string): { start: string; item: string; end: string } {
  return { start: `<|${modality}_start|>`, item: `<${modality}>`, end: `<|${modality}_end|>` };
}
