// Per-kernel GPU time from timestamp queries. While profiling is on, each dispatch gets
// its own compute pass with begin/end timestamps (which costs a little overlap), and the
// times are aggregated by op label. Needs the 'timestamp-query' feature.

export interface KernelTime {
  label: string;
  calls: number;
  /** Total GPU milliseconds. */
  ms: number;
}

const QUERIES_PER_SET = 4096; // 2048 dispatches per batch

export class Profiler {
  private readonly querySet: GPUQuerySet;
  private readonly resolve: GPUBuffer;
  private labels: string[] = [];
  private readonly pendingReads: Array<Promise<void>> = [];
  private readonly totals = new Map<string, KernelTime>();

  constructor(private readonly gpu: GPUDevice) {
    this.querySet = gpu.createQuerySet({ type: 'timestamp', count: QUERIES_PER_SET });
    this.resolve = gpu.createBuffer({ size: QUERIES_PER_SET * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  }

  /** Timestamp writes for the next dispatch's pass, or null when the set is full (flush first). */
  nextPass(label: string): GPUComputePassTimestampWrites | null {
    const i = this.labels.length;
    if (2 * i + 2 > QUERIES_PER_SET) return null;
    this.labels.push(label);
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  get full(): boolean {
    return 2 * this.labels.length + 2 > QUERIES_PER_SET;
  }

  /** Append the resolve + copy to `encoder` before it is finished; reads them after submit. */
  beforeSubmit(encoder: GPUCommandEncoder): (() => void) | null {
    const n = this.labels.length;
    if (n === 0) return null;
    const labels = this.labels;
    this.labels = [];
    const staging = this.gpu.createBuffer({ size: n * 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    encoder.resolveQuerySet(this.querySet, 0, 2 * n, this.resolve, 0);
    encoder.copyBufferToBuffer(this.resolve, 0, staging, 0, n * 16);
    return () => {
      this.pendingReads.push(
        staging.mapAsync(GPUMapMode.READ).then(() => {
          const t = new BigUint64Array(staging.getMappedRange());
          for (let i = 0; i < n; i++) {
            const ms = Number(t[2 * i + 1] - t[2 * i]) / 1e6;
            const cur = this.totals.get(labels[i]) ?? { label: labels[i], calls: 0, ms: 0 };
            cur.calls++;
            cur.ms += ms > 0 && ms < 1e6 ? ms : 0;
            this.totals.set(labels[i], cur);
          }
          staging.unmap();
          staging.destroy();
        }),
      );
    };
  }

  /** Aggregated times, largest first (waits for outstanding reads). */
  async report(): Promise<KernelTime[]> {
    await Promise.all(this.pendingReads.splice(0));
    return [...this.totals.values()].sort((a, b) => b.ms - a.ms);
  }

  reset(): void {
    this.totals.clear();
  }

  destroy(): void {
    this.querySet.destroy();
    this.resolve.destroy();
  }
}

export function formatProfile(rows: KernelTime[], top = 25): string {
  const total = rows.reduce((s, r) => s + r.ms, 0);
  const lines = [`${'op'.padEnd(32)} ${'calls'.padStart(7)} ${'ms'.padStart(10)} ${'%'.padStart(6)}`];
  for (const r of rows.slice(0, top)) {
    lines.push(`${r.label.slice(0, 32).padEnd(32)} ${String(r.calls).padStart(7)} ${r.ms.toFixed(2).padStart(10)} ${((100 * r.ms) / total).toFixed(1).padStart(6)}`);
  }
  lines.push(`${'total'.padEnd(32)} ${''.padStart(7)} ${total.toFixed(2).padStart(10)}`);
  return lines.join('\n');
}
