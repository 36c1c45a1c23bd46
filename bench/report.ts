// Shared benchmark reporting: a table on stdout and bench/results/<name>.json in the common
// format {name, adapter, rows: [{case, unit, ours, peer, peerName, ratio}]}. ratio > 1 means
// webomni is better: peer/ours for time units, ours/peer for throughputs.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface BenchRow {
  case: string;
  unit: string;
  ours: number | null;
  peer: number | null;
  peerName: string;
  ratio: number | null;
  /** Free-form detail (e.g. the kernel used); extra fields are allowed. */
  note?: string;
}

export interface BenchReport {
  name: string;
  adapter: string;
  rows: BenchRow[];
  notes?: string[];
  [extra: string]: unknown;
}

const TIME_UNITS = new Set(['ns', 'us', 'µs', 'ms', 's', 'min']);


/** ratio > 1 = webomni better. */
export function ratioOf(unit: string, ours: number | null, peer: number | null): number | null {
  if (ours === null || peer === null || !Number.isFinite(ours) || !Number.isFinite(peer) || ours <= 0 || peer <= 0) return null;
  return TIME_UNITS.has(unit) ? peer / ours : ours / peer;
}

export function row(c: string, unit: string, ours: number | null, peer: number | null, peerName: string, note?: string): BenchRow {
  return { case: c, unit, ours, peer, peerName, ratio: ratioOf(unit, ours, peer), ...(note ? { note } : {}) };
}

function fmt(x: number | null, digits = 2): string {
  if (x === null || !Number.isFinite(x)) return '—';
  return Math.abs(x) >= 1000 ? x.toFixed(0) : x.toFixed(digits);
}

export function printTable(rows: BenchRow[]): void {
  const head = ['case', 'unit', 'webomni', 'peer', 'value', 'ratio', 'note'];
  const body = rows.map((r) => [r.case, r.unit, fmt(r.ours), r.peerName, fmt(r.peer), r.ratio === null ? '—' : `${r.ratio.toFixed(2)}×`, r.note ?? '']);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 2 && i <= 5 && i !== 3 ? c.padStart(w[i]) : c.padEnd(w[i]))).join('  ').trimEnd();
  console.log(line(head));
  console.log(w.map((n) => '-'.repeat(n)).join('  '));
  for (const b of body) console.log(line(b));
}

export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'results');

/** Print the table and write bench/results/<name>.json; returns the path. */
export function writeReport(report: BenchReport): string {
  printTable(report.rows);
  for (const n of report.notes ?? []) console.log(`note: ${n}`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${report.name}.json`);
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify({ ...report, date: new Date().toISOString() }, null, 2) + '\n');
  renameSync(tmp, path);
  console.log(`wrote ${path}`);
  return path;
}
