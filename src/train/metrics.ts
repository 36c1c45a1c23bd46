// Run metrics as JSON lines (one object per event), append-only so a crash loses nothing
// written before it. Node-only.
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export class MetricsLog {
  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
  }
  write(record: Record<string, unknown>): void {
    appendFileSync(this.path, JSON.stringify({ time: new Date().toISOString(), ...record }) + '\n');
  }
}
