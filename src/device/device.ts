// The Device: one GPUDevice plus everything needed to run kernels on it efficiently —
// buffer pool, pipeline cache, batched command recording, uniform arena, async readback
// and error reporting that names the kernel. Platform-neutral: Node (Dawn) and browser
// loaders in ./node.ts and ./browser.ts construct it.

import { BufferPool } from './pool.ts';
import { gpuAwait } from './wait.ts';
import { Profiler, type KernelTime } from './profiler.ts';
import { SHADER_SOURCES } from '../shaders.gen.ts';

export type KernelDType = 'f32' | 'f16';

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  backend: string;
}

export interface BufferBinding {
  buffer: GPUBuffer;
  /** Bytes to bind from offset 0; defaults to the whole buffer (capped at the binding limit). */
  size?: number;
}

export interface DispatchSpec {
  /** Shader family: a file name in shaders/ without `.wgsl`. */
  kernel: string;
  entry?: string;
  /** Values for WGSL `override` constants. */
  constants?: Record<string, number>;
  /** Element type substituted for `alias T = f32;` in the source. */
  dtype?: KernelDType;
  /** Uniform block bound at @binding(0) when present. */
  uniforms?: ArrayBufferView;
  /** Storage buffers, bound at @binding(1), (2), … in order (or from 0 without uniforms). */
  buffers: Array<GPUBuffer | BufferBinding>;
  workgroups: [number, number?, number?];
  /** The op that asked for this dispatch, used in error messages. */
  label?: string;
}

export class WebGPUError extends Error {
  override name = 'WebGPUError';
}

const UNIFORM_PAGE = 64 * 1024;
const UNIFORM_ALIGN = 256;

interface UniformPage {
  buffer: GPUBuffer;
  shadow: Uint8Array;
  used: number;
  /** Submission after which the page may be reused. */
  submission: number;
}

interface CachedPipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

export class Device {
  readonly features: ReadonlySet<string>;
  readonly limits: GPUSupportedLimits;
  readonly pool: BufferPool;
  /** Number of dispatches recorded since creation (for tests and profiling). */
  dispatchCount = 0;
  submitCount = 0;

  private readonly pipelines = new Map<string, CachedPipeline>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private pending = 0;
  private readonly pendingLabels: string[] = [];
  /** Ops of the last submitted batch: validation errors arrive after submit. */
  private lastSubmitted: string[] = [];
  private uniformPage: UniformPage | null = null;
  private readonly pagesInFlight: UniformPage[] = [];
  private readonly freePages: UniformPage[] = [];
  private readonly readPool = new Map<number, GPUBuffer[]>();
  private writeScratch = new Uint8Array(0);
  private submission = 0;
  private completed = 0;
  private readonly errors: string[] = [];
  private lostReason: string | null = null;
  private destroyed = false;
  /** Platform objects that must outlive the device (Dawn's GPU from `create()`). */
  protected keepAlive: unknown;

  constructor(
    readonly gpu: GPUDevice,
    readonly adapter: AdapterDescription,
    /** Keeps platform objects (Dawn's `create()` result) alive as long as the device. */
    keepAlive: unknown = null,
  ) {
    this.keepAlive = keepAlive;
    this.features = new Set(gpu.features as unknown as Iterable<string>);
    this.limits = gpu.limits;
    this.pool = new BufferPool(gpu, gpu.limits.maxBufferSize);
    gpu.onuncapturederror = (ev: GPUUncapturedErrorEvent) => {
      this.errors.push(ev.error.message);
    };
    void gpu.lost.then((info) => {
      if (!this.destroyed) this.lostReason = `${info.reason}: ${info.message}`;
    });
  }

  get hasF16(): boolean {
    return this.features.has('shader-f16');
  }

  get maxBinding(): number {
    return this.limits.maxStorageBufferBindingSize;
  }

  // ---------------------------------------------------------------- pipelines

  pipeline(kernel: string, entry = 'main', constants: Record<string, number> = {}, dtype: KernelDType = 'f32'): CachedPipeline {
    const key = `${kernel}|${entry}|${dtype}|${Object.entries(constants)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => `${k}=${v}`)
      .join(',')}`;
    let cached = this.pipelines.get(key);
    if (cached) return cached;
    const source = SHADER_SOURCES[kernel];
    if (source === undefined) throw new WebGPUError(`unknown kernel '${kernel}': no shaders/${kernel}.wgsl`);
    cached = this.compile(kernel, source, entry, constants, dtype, key);
    this.pipelines.set(key, cached);
    return cached;
  }

  /** Compile WGSL that is not one of the bundled kernels (tests, tuners). */
  compileSource(name: string, source: string, entry = 'main', constants: Record<string, number> = {}): CachedPipeline {
    return this.compile(name, source, entry, constants, 'f32', `src:${name}:${entry}:${JSON.stringify(constants)}`);
  }

  private compile(
    kernel: string,
    source: string,
    entry: string,
    constants: Record<string, number>,
    dtype: KernelDType,
    label: string,
  ): CachedPipeline {
    if (dtype === 'f16') {
      if (!this.hasF16) throw new WebGPUError(`kernel '${kernel}' in f16 needs the 'shader-f16' feature, which this adapter lacks`);
      if (!/alias T = f32;/.test(source)) throw new WebGPUError(`kernel '${kernel}' has no f16 variant`);
      source = 'enable f16;\n' + source.replace('alias T = f32;', 'alias T = f16;');
    }
    const before = this.errors.length;
    const module = this.gpu.createShaderModule({ code: source, label: `kernel:${kernel}` });
    const pipeline = this.gpu.createComputePipeline({
      layout: 'auto',
      compute: { module, entryPoint: entry, constants },
      label: `kernel:${label}`,
    });
    if (this.errors.length > before) {
      const msgs = this.errors.splice(before);
      throw new WebGPUError(`kernel '${kernel}' (entry '${entry}') failed to compile:\n${msgs.join('\n')}`);
    }
    return { pipeline, layout: pipeline.getBindGroupLayout(0) };
  }

  // ---------------------------------------------------------------- recording

  /** Record one kernel dispatch into the current batch. Nothing is submitted until flush(). */
  dispatch(spec: DispatchSpec): void {
    this.checkUsable();
    const { pipeline, layout } = this.pipeline(spec.kernel, spec.entry, spec.constants, spec.dtype);
    const entries: GPUBindGroupEntry[] = [];
    let binding = 0;
    if (spec.uniforms) entries.push({ binding: binding++, resource: this.uniformSlice(spec.uniforms) });
    for (const b of spec.buffers) {
      const buffer = 'buffer' in b ? b.buffer : (b as GPUBuffer);
      const want = 'buffer' in b && b.size !== undefined ? b.size : buffer.size;
      const size = Math.min(Math.ceil(want / 4) * 4 || 4, buffer.size);
      if (size > this.maxBinding) {
        throw new WebGPUError(
          `${spec.label ?? spec.kernel}: a binding of ${size} bytes exceeds maxStorageBufferBindingSize (${this.maxBinding})`,
        );
      }
      entries.push({ binding: binding++, resource: { buffer, offset: 0, size } });
    }
    const bindGroup = this.gpu.createBindGroup({ layout, entries, label: spec.label ?? spec.kernel });
    const [x, y = 1, z = 1] = spec.workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const maxDim = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxDim || y > maxDim || z > maxDim) {
      throw new WebGPUError(`${spec.label ?? spec.kernel}: dispatch ${x}×${y}×${z} exceeds ${maxDim} workgroups per dimension`);
    }
    let pass: GPUComputePassEncoder;
    if (this.profiler) {
      // One pass per dispatch so each gets its own begin/end timestamps.
      if (this.profiler.full) this.flush();
      if (this.pass) {
        this.pass.end();
        this.pass = null;
      }
      if (!this.encoder) this.encoder = this.gpu.createCommandEncoder();
      const tw = this.profiler.nextPass(spec.label ?? spec.kernel);
      pass = this.pass = this.encoder.beginComputePass(tw ? { timestampWrites: tw } : {});
    } else {
      pass = this.computePass();
    }
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    this.pending++;
    this.dispatchCount++;
    if (this.pendingLabels.length < 64) this.pendingLabels.push(spec.label ?? spec.kernel);
  }

  /** Encoder for copies and other non-compute commands, ordered after recorded dispatches. */
  commandEncoder(): GPUCommandEncoder {
    this.checkUsable();
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    if (!this.encoder) this.encoder = this.gpu.createCommandEncoder();
    this.pending++;
    return this.encoder;
  }

  copyBuffer(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): void {
    if (size === 0) return;
    this.commandEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, size);
  }

  private computePass(): GPUComputePassEncoder {
    if (!this.encoder) this.encoder = this.gpu.createCommandEncoder();
    if (!this.pass) this.pass = this.encoder.beginComputePass();
    return this.pass;
  }

  private uniformSlice(data: ArrayBufferView): GPUBufferBinding {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.byteLength > UNIFORM_ALIGN * 16) throw new WebGPUError(`uniform block of ${bytes.byteLength} bytes is too large`);
    let page = this.uniformPage;
    if (!page || page.used + bytes.byteLength > UNIFORM_PAGE) {
      if (page) this.retirePage(page);
      page = this.uniformPage = this.takePage();
    }
    const offset = page.used;
    page.shadow.set(bytes, offset);
    page.used = Math.ceil((offset + bytes.byteLength) / UNIFORM_ALIGN) * UNIFORM_ALIGN;
    return { buffer: page.buffer, offset, size: Math.max(16, Math.ceil(bytes.byteLength / 16) * 16) };
  }

  private takePage(): UniformPage {
    for (let i = 0; i < this.pagesInFlight.length; i++) {
      if (this.pagesInFlight[i].submission <= this.completed) {
        this.freePages.push(...this.pagesInFlight.splice(i, 1));
        i--;
      }
    }
    const page = this.freePages.pop();
    if (page) {
      page.used = 0;
      return page;
    }
    return {
      buffer: this.gpu.createBuffer({ size: UNIFORM_PAGE, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: 'uniforms' }),
      shadow: new Uint8Array(UNIFORM_PAGE),
      used: 0,
      submission: 0,
    };
  }

  /** A full page goes to the queue before the commands that read it are submitted. */
  private retirePage(page: UniformPage): void {
    // writeBuffer is ordered before any later submit, and the dispatches that read this
    // page are only submitted at the next flush, so this write lands in time.
    this.gpu.queue.writeBuffer(page.buffer, 0, page.shadow as Uint8Array<ArrayBuffer>, 0, page.used);
    page.submission = this.submission + 1;
    this.pagesInFlight.push(page);
  }

  // ---------------------------------------------------------------- submission

  /** Submit everything recorded so far as one command buffer. Cheap when nothing is pending. */
  flush(): void {
    this.checkUsable();
    if (this.errors.length) this.raiseErrors();
    if (!this.encoder) return;
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    if (this.uniformPage && this.uniformPage.used > 0) {
      this.retirePage(this.uniformPage);
      this.uniformPage = null;
    }
    const afterSubmit = this.profiler?.beforeSubmit(this.encoder);
    this.gpu.queue.submit([this.encoder.finish()]);
    afterSubmit?.();
    this.encoder = null;
    this.pending = 0;
    this.lastSubmitted = this.pendingLabels.splice(0);
    this.submission++;
    this.submitCount++;
  }

  /** Wait until all submitted work has finished, without spinning the CPU. */
  async sync(): Promise<void> {
    this.flush();
    const target = this.submission;
    await gpuAwait(this.gpu.queue.onSubmittedWorkDone());
    this.completed = Math.max(this.completed, target);
    this.afterWait();
  }

  /** Write host data into a buffer, ordered after every dispatch recorded so far. */
  write(buffer: GPUBuffer, byteOffset: number, data: ArrayBufferView): void {
    this.checkUsable();
    // queue.writeBuffer runs on the queue timeline at call time, i.e. before commands
    // still sitting in the unsubmitted encoder: submit those first so a recycled
    // buffer is not overwritten before its previous reader ran.
    if (this.encoder) this.flush();
    let bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength) as Uint8Array<ArrayBuffer>;
    // Dawn's Node binding (npm webgpu 0.6.2) crashes the process (SIGSEGV) on
    // data in a SharedArrayBuffer, such as a registered host buffer
    // (dist/host-buffer.ts): stage it through ordinary memory first.
    if (typeof SharedArrayBuffer !== 'undefined' && data.buffer instanceof SharedArrayBuffer) bytes = this.unshared(bytes);
    const aligned = bytes.byteLength & ~3;
    if (aligned) this.gpu.queue.writeBuffer(buffer, byteOffset, bytes, 0, aligned);
    if (aligned !== bytes.byteLength) {
      const tail = new Uint8Array(4);
      tail.set(bytes.subarray(aligned));
      this.gpu.queue.writeBuffer(buffer, byteOffset + aligned, tail);
    }
  }

  /** `bytes` copied into reusable non-shared memory (valid until the next call; writeBuffer copies synchronously). */
  private unshared(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
    if (this.writeScratch.length < bytes.length) this.writeScratch = new Uint8Array(2 ** Math.ceil(Math.log2(bytes.length)));
    this.writeScratch.set(bytes);
    return this.writeScratch.subarray(0, bytes.length);
  }

  /** Copy `size` bytes at `byteOffset` of a storage buffer back to the host. */
  async read(buffer: GPUBuffer, byteOffset: number, size: number): Promise<ArrayBuffer> {
    if (size === 0) {
      this.checkUsable();
      return new ArrayBuffer(0);
    }
    return this.readMapped(buffer, byteOffset, size, (mapped, at) => mapped.slice(at, at + size));
  }

  /**
   * Copy `into.length` bytes at `byteOffset` of a storage buffer into `into`
   * (host memory the caller chose, e.g. a registered host buffer, so the
   * readback is the only copy).
   */
  async readInto(buffer: GPUBuffer, byteOffset: number, into: Uint8Array): Promise<void> {
    if (into.length === 0) return this.checkUsable();
    await this.readMapped(buffer, byteOffset, into.length, (mapped, at) => into.set(new Uint8Array(mapped, at, into.length)));
  }

  /** Maps a staging copy of [byteOffset, byteOffset + size) and hands it to `take` (with the range's start in it) before unmapping. */
  private async readMapped<T>(buffer: GPUBuffer, byteOffset: number, size: number, take: (mapped: ArrayBuffer, at: number) => T): Promise<T> {
    this.checkUsable();
    const start = byteOffset & ~3;
    const end = Math.ceil((byteOffset + size) / 4) * 4;
    const span = end - start;
    const staging = this.takeReadBuffer(span);
    this.copyBuffer(buffer, start, staging, 0, span);
    this.flush();
    const target = this.submission;
    try {
      await gpuAwait(staging.mapAsync(GPUMapMode.READ, 0, span));
    } catch (e) {
      this.afterWait();
      throw new WebGPUError(`readback failed: ${(e as Error).message}`);
    }
    this.completed = Math.max(this.completed, target);
    const out = take(staging.getMappedRange(0, span), byteOffset - start);
    staging.unmap();
    this.readPool.get(staging.size)!.push(staging);
    this.afterWait();
    return out;
  }

  private takeReadBuffer(bytes: number): GPUBuffer {
    const size = Math.max(256, 2 ** Math.ceil(Math.log2(bytes)));
    let list = this.readPool.get(size);
    if (!list) this.readPool.set(size, (list = []));
    return list.pop() ?? this.gpu.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'readback' });
  }

  private afterWait(): void {
    if (this.lostReason) throw new WebGPUError(`GPU device lost (${this.lostReason})`);
    if (this.errors.length) this.raiseErrors();
  }

  private raiseErrors(): never {
    const msgs = this.errors.splice(0);
    const ops = [...new Set([...this.lastSubmitted, ...this.pendingLabels])];
    const recent = ops.length ? ` (in a batch with ops: ${ops.join(', ')})` : '';
    throw new WebGPUError(`WebGPU error${msgs.length > 1 ? 's' : ''}${recent}:\n${msgs.join('\n')}`);
  }

  private checkUsable(): void {
    if (this.destroyed) throw new WebGPUError('the device has been destroyed');
    if (this.lostReason) throw new WebGPUError(`GPU device lost (${this.lostReason})`);
  }

  private profiler: Profiler | null = null;

  /** Start timing every kernel with GPU timestamps (needs 'timestamp-query'). */
  startProfiling(): void {
    if (!this.features.has('timestamp-query')) throw new WebGPUError("profiling needs the adapter's 'timestamp-query' feature");
    this.flush();
    this.profiler ??= new Profiler(this.gpu);
    this.profiler.reset();
  }

  /** Stop profiling; per-op GPU time, largest first. */
  async stopProfiling(): Promise<KernelTime[]> {
    if (!this.profiler) return [];
    await this.sync();
    const p = this.profiler;
    this.profiler = null;
    const rows = await gpuAwait(p.report());
    p.destroy();
    return rows;
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }

  /** Whether there are recorded commands not yet submitted. */
  get hasPending(): boolean {
    return this.pending > 0;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.pool.trim();
    this.gpu.destroy();
    this.keepAlive = null;
  }
}
