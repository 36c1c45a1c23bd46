// Reading run configs: YAML or JSON files, dotted command-line overrides, and validation
// errors that name the key, its value and what is allowed.

import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parse config text by extension (.yaml/.yml/.json); `source` names the file in errors. */
export function parseConfigText(text: string, source: string): unknown {
  try {
    return source.endsWith('.json') ? JSON.parse(text) : parseYaml(text, { strict: true, uniqueKeys: true });
  } catch (e) {
    throw new ConfigError(`${source}: cannot parse: ${(e as Error).message}`);
  }
}

/**
 * Apply `key.path=value` overrides. Values are read as YAML scalars, so `3e-4`, `true`,
 * `[1, 2]` get their natural types; a string that is not valid YAML stays a string.
 */
export function applyOverrides(raw: unknown, overrides: Array<[string, string]>): Record<string, unknown> {
  const root = (raw && typeof raw === 'object' ? structuredClone(raw) : {}) as Record<string, unknown>;
  for (const [path, text] of overrides) {
    const keys = path.split('.');
    if (keys.some((k) => k === '' || k === '__proto__' || k === 'constructor' || k === 'prototype')) {
      throw new ConfigError(`override '${path}': not a valid key path`);
    }
    let value: unknown;
    try {
      value = parseYaml(text);
    } catch {
      value = text;
    }
    let node = root;
    for (const k of keys.slice(0, -1)) {
      const next = node[k];
      if (next === undefined) node[k] = {};
      else if (!next || typeof next !== 'object' || Array.isArray(next)) {
        throw new ConfigError(`override '${path}': '${k}' is a value, not a section`);
      }
      node = node[k] as Record<string, unknown>;
    }
    node[keys[keys.length - 1]] = value;
  }
  return root;
}

function describe(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function valueAt(raw: unknown, path: PropertyKey[]): unknown {
  let v = raw as Record<PropertyKey, unknown> | undefined;
  for (const k of path) v = v && typeof v === 'object' ? (v[k] as Record<PropertyKey, unknown>) : undefined;
  return v;
}

/** Validate with a zod schema; every problem is reported as `key: problem (got value)`. */
export function validateConfig<S extends z.ZodType>(schema: S, raw: unknown, source: string): z.output<S> {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const lines = r.error.issues.map((issue) => {
    const key = issue.path.join('.') || '(top level)';
    if (issue.code === 'unrecognized_keys') {
      const keys = (issue as unknown as { keys: string[] }).keys;
      const prefix = issue.path.length ? `${issue.path.join('.')}.` : '';
      return `unknown key${keys.length > 1 ? 's' : ''} ${keys.map((k) => `'${prefix}${k}'`).join(', ')}`;
    }
    const got = valueAt(raw, issue.path);
    return `'${key}': ${issue.message}${got === undefined ? '' : ` (got ${describe(got)})`}`;
  });
  throw new ConfigError(`${source}: invalid config:\n  - ${lines.join('\n  - ')}`);
}
