// Shared argument walker for the training benchmarks: `--key value` or `--key=value`.

export interface ArgReader {
  key: string;
  /** The option's value (inline after '=' or the next argument). */
  value(): string;
  /** The value as an integer ≥ min, or an error naming the option. */
  int(min: number): number;
}

/** Offers each argument to `take`; returns the ones it did not take (e.g. dotted config overrides). */
export function readArgs(args: string[], take: (a: ArgReader) => boolean): string[] {
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const [key, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => {
      if (inline !== undefined) return inline;
      if (i + 1 >= args.length) throw new Error(`${key} needs a value`);
      return args[++i];
    };
    const int = (min: number) => {
      const v = value();
      const n = Number(v);
      if (!Number.isInteger(n) || n < min) throw new Error(`${key} must be an integer ≥ ${min}, got '${v}'`);
      return n;
    };
    if (!take({ key, value, int })) rest.push(a);
  }
  return rest;
}
