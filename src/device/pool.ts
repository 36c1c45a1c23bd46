// Storage-buffer pool with power-of-two-ish size classes. Freed buffers are kept per
// class and handed out again, so a training step that allocates the same tensors
// every iteration creates no GPU buffers after the first one.

export const STORAGE_USAGE = 0x80 /* STORAGE */ | 0x4 /* COPY_SRC */ | 0x8; /* COPY_DST */

/** Size classes: multiples of 256 B up to 4 KiB, then 4 steps per power of two (≤ 19% waste). */
export function sizeClass(bytes: number): number {
  const b = Math.max(bytes, 4);
  if (b <= 4096) return Math.ceil(b / 256) * 256;
  const p = 2 ** Math.floor(Math.log2(b));
  const step = p / 4;
  return Math.ceil(b / step) * step;
}

export interface PoolStats {
  /** Bytes held by live (handed out) buffers, counted by size class. */
  liveBytes: number;
  peakLiveBytes: number;
  /** Bytes sitting in the free lists, ready for reuse. */
  cachedBytes: number;
  liveBuffers: number;
  created: number;
  reused: number;
}

export class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  private stats: PoolStats = { liveBytes: 0, peakLiveBytes: 0, cachedBytes: 0, liveBuffers: 0, created: 0, reused: 0 };

  constructor(
    private readonly device: GPUDevice,
    private readonly maxBufferSize: number,
  ) {}

  acquire(bytes: number, label?: string): GPUBuffer {
    const size = sizeClass(bytes);
    if (size > this.maxBufferSize) {
      throw new RangeError(
        `buffer of ${bytes} bytes${label ? ` for ${label}` : ''} exceeds the adapter's maxBufferSize (${this.maxBufferSize} bytes)`,
      );
    }
    const list = this.free.get(size);
    let buf = list?.pop();
    if (buf) {
      this.stats.cachedBytes -= size;
      this.stats.reused++;
    } else {
      buf = this.device.createBuffer({ size, usage: STORAGE_USAGE, label });
      this.stats.created++;
    }
    this.stats.liveBytes += size;
    this.stats.liveBuffers++;
    if (this.stats.liveBytes > this.stats.peakLiveBytes) this.stats.peakLiveBytes = this.stats.liveBytes;
    return buf;
  }

  release(buf: GPUBuffer): void {
    const size = buf.size;
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(buf);
    this.stats.liveBytes -= size;
    this.stats.liveBuffers--;
    this.stats.cachedBytes += size;
  }

  /** Destroy every cached (free) buffer, returning its memory to the driver. */
  trim(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.stats.cachedBytes = 0;
  }

  resetPeak(): void {
    this.stats.peakLiveBytes = this.stats.liveBytes;
  }

  get snapshot(): PoolStats {
    return { ...this.stats };
  }
}
