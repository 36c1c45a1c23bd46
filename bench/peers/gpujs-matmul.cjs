// Peer process: gpu.js matmul GFLOP/s in the fastest mode that works here. argv[2] = JSON
// {shapes, maxGflop}. Prints one JSON line. In Node gpu.js's GPU mode is 'headlessgl' (npm
// `gl`); when that module is missing the only working mode is 'cpu' (JavaScript on the CPU),
// which this reports, clearly labelled.
const { GPU } = require('gpu.js');
const { shapes, maxGflop } = JSON.parse(process.argv[2]);

let mode = 'headlessgl';
let gpu;
let reason = '';
try {
  gpu = new GPU({ mode });
} catch (e) {
  reason = String(e.message || e).split('\n')[0];
  mode = 'cpu';
  gpu = new GPU({ mode });
}
let glError = '';
try {
  require.resolve('gl');
} catch {
  glError = "npm 'gl' (headless-gl) is not installed: its install needs a prebuilt binary from github.com (unreachable here) or a source build that needs X11 headers (pkg-config 'xi' missing) and compiles ANGLE";
}

const rnd = (r, c) => Array.from({ length: r }, () => Float32Array.from({ length: c }, () => Math.random() * 2 - 1));
const results = [];
for (const s of shapes) {
  const batch = s.batch || 1;
  const flops = 2 * batch * s.m * s.n * s.k;
  if (flops / 1e9 > maxGflop) {
    results.push({ case: s.name, ms: null, gflops: null, skipped: `over ${maxGflop} GFLOP per call in ${mode} mode` });
    continue;
  }
  const kernel = gpu
    .createKernel(function (a, b) {
      let sum = 0;
      for (let i = 0; i < this.constants.k; i++) sum += a[this.thread.y][i] * b[i][this.thread.x];
      return sum;
    })
    .setConstants({ k: s.k })
    .setOutput([s.n, s.m]);
  // gpu.js has no transposed-operand option: transposed cases are fed pre-transposed data.
  const as = Array.from({ length: batch }, () => rnd(s.m, s.k));
  const bs = Array.from({ length: batch }, () => rnd(s.k, s.n));
  const run = () => { for (let z = 0; z < batch; z++) kernel(as[z], bs[z]); };
  run(); // warm-up / compile
  let best = Infinity;
  const reps = flops > 1e9 ? 1 : 3;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    run();
    best = Math.min(best, performance.now() - t0);
  }
  results.push({ case: s.name, ms: best, gflops: flops / best / 1e6 });
  kernel.destroy && kernel.destroy();
}
console.log(JSON.stringify({ peer: `gpu.js (${mode} mode)`, mode, reason, glError, results }));
