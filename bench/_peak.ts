// The adapter's FMA throughput, measured: independent FMA chains with no memory traffic.
// Shared by the training benchmarks as the peak of their MFU.
import type { Device } from '../src/node.ts';

const FMA_WGSL = (vec: boolean, acc: number, wg: number) => {
  const ty = vec ? 'vec4f' : 'f32';
  const init = Array.from({ length: acc }, (_, j) =>
    vec ? `  var a${j} = vec4f(s + ${j}.0, s + ${j}.25, s + ${j}.5, s + ${j}.75);` : `  var a${j} = s + ${j}.0;`,
  ).join('\n');
  const body = Array.from({ length: acc }, (_, j) => `    a${j} = fma(a${j}, m, c);`).join('\n');
  const sum = Array.from({ length: acc }, (_, j) => `a${j}`).join(' + ');
  return `
struct P { m: f32, c: f32, iters: u32, pad: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let s = f32(gid.x) * 1e-7;
  let m = ${ty}(p.m);
  let c = ${ty}(p.c);
${init}
  for (var i = 0u; i < p.iters; i++) {
${body}
  }
  let r = ${sum};
  out[gid.x] = ${vec ? 'dot(r, vec4f(1.0))' : 'r'};
}`;
};

export interface PeakResult {
  gflops: number;
  variant: string;
  all: Array<{ variant: string; gflops: number }>;
}

/** Best FMA throughput over a few kernel shapes: independent chains, no memory traffic. */
export async function measurePeak(device: Device, log: (l: string) => void): Promise<PeakResult> {
  const gpu = device.gpu;
  const variants = [
    { vec: true, acc: 8, wg: 64 },
    { vec: true, acc: 4, wg: 64 },
    { vec: false, acc: 8, wg: 64 },
    { vec: true, acc: 8, wg: 256 },
  ];
  const groups = 256;
  const uni = gpu.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: 'fma-peak uniforms' });
  const outBuf = gpu.createBuffer({ size: groups * 256 * 4, usage: GPUBufferUsage.STORAGE, label: 'fma-peak out' });
  const all: Array<{ variant: string; gflops: number }> = [];
  const setIters = (iters: number) => {
    const u = new ArrayBuffer(16);
    new Float32Array(u, 0, 2).set([0.9999, 1e-4]);
    new Uint32Array(u, 8, 1)[0] = iters;
    gpu.queue.writeBuffer(uni, 0, u);
  };
  try {
    for (const v of variants) {
      const name = `${v.vec ? 'vec4' : 'f32'}×${v.acc} acc, wg ${v.wg}`;
      const { pipeline, layout } = device.compileSource(`fma-peak-${v.vec}-${v.acc}-${v.wg}`, FMA_WGSL(v.vec, v.acc, v.wg));
      const bind = gpu.createBindGroup({ layout, entries: [{ binding: 0, resource: { buffer: uni } }, { binding: 1, resource: { buffer: outBuf } }] });
      const lanes = v.vec ? 4 : 1;
      const invocations = groups * v.wg;
      const timeIt = async (iters: number) => {
        setIters(iters);
        await device.sync();
        const t0 = performance.now();
        const pass = device.commandEncoder().beginComputePass();
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bind);
        pass.dispatchWorkgroups(groups);
        pass.end();
        await device.sync();
        return performance.now() - t0;
      };
      // Compile + warm up, then grow the chain until one dispatch takes ≥ 200 ms; best of 3.
      await timeIt(64);
      let iters = 256;
      let ms = await timeIt(iters);
      while (ms < 200 && iters < 1 << 24) {
        iters = Math.round(iters * Math.min(16, Math.max(2, 250 / Math.max(ms, 0.5))));
        ms = await timeIt(iters);
      }
      let best = ms;
      for (let r = 0; r < 2; r++) best = Math.min(best, await timeIt(iters));
      const flops = 2 * invocations * iters * v.acc * lanes;
      const gflops = flops / best / 1e6;
      all.push({ variant: name, gflops });
      log(`  peak FMA ${name.padEnd(22)} ${best.toFixed(1).padStart(7)} ms  ${gflops.toFixed(1).padStart(6)} GFLOP/s`);
    }
  } finally {
    uni.destroy();
    outBuf.destroy();
  }
  const best = all.reduce((a, b) => (b.gflops > a.gflops ? b : a));
  return { gflops: best.gflops, variant: best.variant, all };
}
