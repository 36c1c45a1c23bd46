// Collective kinds as sent on the wire, and how to describe one in an error.
import { VARIABLE_COUNT } from '../../transports/frame.ts';
import { dtypeName, REDUCE_CODES } from './dtype.ts';

export enum OpCode {
  all_reduce = 1,
  reduce_scatter = 2,
  all_gather = 3,
  all_to_all = 4,
  all_to_all_v = 5,
  broadcast = 6,
  barrier = 7,
  send = 8,
  group_init = 9,
}

/** What every rank must agree on for one collective (carried in every frame). */
export interface Signature {
  op: OpCode;
  dtype: number;
  redop: number;
  /** Elements per rank, or VARIABLE_COUNT when ranks legitimately differ. */
  count: number;
  /** Root rank (broadcast) or 0. */
  aux: number;
}

const REDOP_NAMES = Object.fromEntries(Object.entries(REDUCE_CODES).map(([k, v]) => [v, k]));

export function describe(s: Signature): string {
  const parts = [dtypeName(s.dtype)];
  if (s.count !== VARIABLE_COUNT) parts.push(`count=${s.count}`);
  if (s.redop) parts.push(REDOP_NAMES[s.redop] ?? `redop#${s.redop}`);
  if (s.op === OpCode.broadcast) parts.push(`root=${s.aux}`);
  return `${OpCode[s.op] ?? `op#${s.op}`}(${parts.join(', ')})`;
}

export function sameSignature(a: Signature, b: Signature): boolean {
  return a.op === b.op && a.dtype === b.dtype && a.redop === b.redop && a.count === b.count && a.aux === b.aux;
}
