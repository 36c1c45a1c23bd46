// Modality encoder registry: the omni composition builds its encoders by name from
// config. Encoders register themselves when their module is imported
// (src/models/encoders/index.ts imports the built-in 'image' and 'audio' ones).
import type { ModalityEncoder } from './encoders/types.ts';
import { registerMediaDecoder, type MediaDecoder } from '../data/multimodal/modalities.ts';

/** Builds an encoder from a (not yet validated) config object; validates it itself. */
export type EncoderFactory = (config: unknown) => ModalityEncoder;

const factories = new Map<string, EncoderFactory>();

/** Register `factory` under the modality `name`. A name can be registered once unless `replace` is set. */
export function registerEncoder(name: string, factory: EncoderFactory, opts: { replace?: boolean } = {}): void {
  if (!/^[a-z][a-z0-9_-]*$/.test(name)) throw new Error(`registerEncoder: invalid modality name '${name}' (lower-case letters, digits, _ and -)`);
  if (factories.has(name) && !opts.replace && factories.get(name) !== factory) {
    throw new Error(`registerEncoder: an encoder for modality '${name}' is already registered`);
  }
  factories.set(name, factory);
}

/** Build the encoder registered for `name` from its config. */
export function createEncoder(name: string, config: unknown): ModalityEncoder {
  const f = factories.get(name);
  if (!f) {
    const known = [...factories.keys()].sort();
    throw new Error(`no encoder registered for modality '${name}' (registered: ${known.length ? known.join(', ') : 'none'})`);
  }
  const enc = f(config);
  if (enc.modality !== name) throw new Error(`the encoder factory for '${name}' built an encoder for '${enc.modality}'`);
  return enc;
}

export function hasEncoder(name: string): boolean {
  return factories.has(name);
}

/** Registered modality names, sorted. */
export function registeredEncoders(): string[] {
  return [...factories.keys()].sort();
}

/**
 * Register a whole modality in one call: its encoder and, for file-backed media, the
 * decoder that turns a manifest file into the encoder's input (so manifests may use
 * `{"<name>": "path"}` segments).
 */
export function registerModality(name: string, parts: { encoder: EncoderFactory; decode?: MediaDecoder }): void {
  registerEncoder(name, parts.encoder);
  if (parts.decode) registerMediaDecoder(name, parts.decode);
}
