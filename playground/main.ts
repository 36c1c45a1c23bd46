// The playground page: trains SpiralTrainer in the browser with live plots.
// Bundled by scripts/build-browser.mjs into playground/dist/main.js.
//
// URL parameters: ?lr=0.5 sets the learning rate, ?autostart=1 starts training at once.
// For automated checks the page exposes `window.webomniPlayground` (state + start/stop).

import { createBrowserDevice, setDevice, type Device } from '../src/index.ts';
import { SpiralTrainer } from './trainer.ts';

interface PlaygroundState {
  ready: boolean;
  running: boolean;
  step: number;
  losses: number[];
  accuracy: number | null;
  adapter: Record<string, string> | null;
  features: string[];
  error: string | null;
}

interface PlaygroundApi {
  state: PlaygroundState;
  start(): void;
  stop(): Promise<void>;
  reset(): Promise<void>;
  setLr(lr: number): void;
}

declare global {
  interface Window {
    webomniPlayground: PlaygroundApi;
  }
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const CLASS_COLORS: Array<[number, number, number]> = [
  [214, 69, 65],
  [46, 134, 193],
  [39, 174, 96],
];

const state: PlaygroundState = {
  ready: false,
  running: false,
  step: 0,
  losses: [],
  accuracy: null,
  adapter: null,
  features: [],
  error: null,
};

let trainer: SpiralTrainer | null = null;
let device: Device | null = null;
let loop: Promise<void> | null = null;
let stopRequested = false;

function showError(e: unknown): void {
  const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  state.error = msg;
  state.running = false;
  $('error').textContent = msg;
  $('status').textContent = 'error';
  console.error(e);
}

// ------------------------------------------------------------------ plots

function drawLoss(): void {
  const c = $<HTMLCanvasElement>('loss');
  const g = c.getContext('2d')!;
  const W = c.width;
  const H = c.height;
  const L = 48;
  const R = 12;
  const T = 10;
  const B = 28;
  g.clearRect(0, 0, W, H);
  g.font = '11px system-ui, sans-serif';
  g.fillStyle = '#5f6b7a';
  g.strokeStyle = '#d7dde4';
  const losses = state.losses;
  // Log-scale y axis between decades that cover the data.
  const finite = losses.filter((v) => Number.isFinite(v) && v > 0);
  const lo = finite.length ? Math.min(...finite) : 0.01;
  const hi = finite.length ? Math.max(...finite) : 2;
  const dLo = Math.floor(Math.log10(lo));
  const dHi = Math.max(dLo + 1, Math.ceil(Math.log10(hi)));
  const n = Math.max(10, losses.length);
  const xs = (i: number) => L + ((W - L - R) * i) / (n - 1);
  const ys = (v: number) => T + ((H - T - B) * (dHi - Math.log10(v))) / (dHi - dLo);
  g.beginPath();
  for (let d = dLo; d <= dHi; d++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** d;
      if (Math.log10(v) > dHi + 1e-9) continue;
      const y = ys(v);
      g.moveTo(L, y);
      g.lineTo(W - R, y);
      if (m === 1 || dHi - dLo <= 2) g.fillText(v >= 1 ? v.toFixed(0) : v.toPrecision(1), 4, y + 4);
    }
  }
  g.stroke();
  g.fillText('step', W - R - 24, H - 2);
  const raw = (n - 1) / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const tick = [1, 2, 5, 10].map((m) => m * mag).find((t) => t >= raw) ?? raw;
  for (let i = 0; i <= n - 1; i += tick) {
    const label = String(i);
    g.fillText(label, xs(i) - g.measureText(label).width / 2, H - B + 14);
  }
  g.strokeStyle = '#2b6cb0';
  g.lineWidth = 1.5;
  g.beginPath();
  losses.forEach((v, i) => {
    const y = ys(Math.max(v, 10 ** dLo));
    if (i === 0) g.moveTo(xs(i), y);
    else g.lineTo(xs(i), y);
  });
  g.stroke();
  g.lineWidth = 1;
}

function drawRegions(probs: Float32Array | null, grid: number): void {
  const c = $<HTMLCanvasElement>('regions');
  const g = c.getContext('2d')!;
  const W = c.width;
  const H = c.height;
  g.fillStyle = '#fff';
  g.fillRect(0, 0, W, H);
  if (probs && trainer) {
    const classes = trainer.data.classes;
    const img = g.createImageData(grid, grid);
    for (let k = 0; k < grid * grid; k++) {
      let r = 0;
      let gg = 0;
      let b = 0;
      for (let cl = 0; cl < classes; cl++) {
        const p = probs[k * classes + cl];
        r += p * CLASS_COLORS[cl][0];
        gg += p * CLASS_COLORS[cl][1];
        b += p * CLASS_COLORS[cl][2];
      }
      // Pale tint: mix with white.
      img.data[4 * k] = 255 - (255 - r) * 0.45;
      img.data[4 * k + 1] = 255 - (255 - gg) * 0.45;
      img.data[4 * k + 2] = 255 - (255 - b) * 0.45;
      img.data[4 * k + 3] = 255;
    }
    const off = new OffscreenCanvas(grid, grid);
    off.getContext('2d')!.putImageData(img, 0, 0);
    g.imageSmoothingEnabled = true;
    g.drawImage(off, 0, 0, W, H);
  }
  if (trainer) {
    const { x, label, n } = trainer.data;
    for (let i = 0; i < n; i++) {
      const px = ((x[2 * i] + 1) / 2) * W;
      const py = ((1 - x[2 * i + 1]) / 2) * H;
      const [r, gg, b] = CLASS_COLORS[label[i]];
      g.fillStyle = `rgb(${r},${gg},${b})`;
      g.beginPath();
      g.arc(px, py, 3, 0, 2 * Math.PI);
      g.fill();
      g.strokeStyle = '#fff';
      g.stroke();
    }
  }
}

function showStats(rate: number | null): void {
  $('step').textContent = String(state.step);
  const last = state.losses[state.losses.length - 1];
  $('lossValue').textContent = last === undefined ? '–' : last.toFixed(4);
  $('acc').textContent = state.accuracy === null ? '–' : `${(state.accuracy * 100).toFixed(1)} %`;
  if (rate !== null) $('rate').textContent = rate.toFixed(0);
  if (device) {
    const s = device.pool.snapshot;
    $('pool').textContent = `${s.liveBuffers} (${(s.liveBytes / 1024).toFixed(0)} KiB)`;
  }
}

// ------------------------------------------------------------------ training loop

async function evaluateAndDraw(): Promise<void> {
  if (!trainer) return;
  const ev = await trainer.evaluate();
  state.accuracy = ev.accuracy;
  drawRegions(ev.probs, ev.grid);
}

async function run(): Promise<void> {
  let t0 = performance.now();
  let s0 = state.step;
  let rate: number | null = null;
  let lastFrame = 0;
  while (!stopRequested && trainer) {
    const { loss } = await trainer.trainStep();
    state.step = trainer.step;
    state.losses.push(loss);
    if (!Number.isFinite(loss)) {
      $('status').textContent = 'diverged: lower the learning rate and reset';
      break;
    }
    if (state.step % 25 === 0) await evaluateAndDraw();
    const now = performance.now();
    if (now - t0 > 1000) {
      rate = ((state.step - s0) * 1000) / (now - t0);
      t0 = now;
      s0 = state.step;
    }
    if (now - lastFrame > 50) {
      drawLoss();
      showStats(rate);
      lastFrame = now;
      // Let the page paint and handle input.
      await new Promise((r) => setTimeout(r, 0));
    }
  }
  await evaluateAndDraw();
  drawLoss();
  showStats(rate);
}

function start(): void {
  if (!state.ready || state.running) return;
  stopRequested = false;
  state.running = true;
  $('start').textContent = 'Stop';
  $('status').textContent = 'training';
  loop = run()
    .catch(showError)
    .finally(() => {
      state.running = false;
      loop = null;
      $('start').textContent = 'Start';
      if (!state.error && $('status').textContent === 'training') $('status').textContent = 'stopped';
    });
}

async function stop(): Promise<void> {
  stopRequested = true;
  if (loop) await loop;
}

async function reset(): Promise<void> {
  await stop();
  if (!trainer) return;
  trainer.reset();
  state.step = 0;
  state.losses = [];
  state.accuracy = null;
  await evaluateAndDraw();
  drawLoss();
  showStats(null);
  $('status').textContent = 'ready';
}

function setLr(lr: number): void {
  if (!(lr > 0) || !Number.isFinite(lr)) return;
  if (trainer) trainer.lr = lr;
  ($('lr') as HTMLInputElement).value = String(+lr.toPrecision(3));
  ($('lrRange') as HTMLInputElement).value = String(Math.log10(lr));
}

window.webomniPlayground = { state, start, stop, reset, setLr };

// ------------------------------------------------------------------ start-up

async function main(): Promise<void> {
  const params = new URLSearchParams(location.search);
  device = await createBrowserDevice();
  setDevice(device);
  const a = device.adapter;
  state.adapter = { vendor: a.vendor, architecture: a.architecture, description: a.description, backend: a.backend };
  state.features = [...device.features].sort();
  const rows: Array<[string, string]> = [
    ['vendor', a.vendor || '?'],
    ['architecture', a.architecture || '?'],
    ['description', a.description || '?'],
    ['features', state.features.join(', ') || 'none of shader-f16, subgroups, timestamp-query'],
    ['max buffer', `${(device.limits.maxBufferSize / 2 ** 20).toFixed(0)} MiB`],
  ];
  $('adapter').innerHTML = '';
  for (const [k, v] of rows) {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    $('adapter').append(dt, dd);
  }
  trainer = new SpiralTrainer(device, { lr: Number(params.get('lr') ?? 1) || 1 });
  setLr(trainer.lr);
  await evaluateAndDraw();
  drawLoss();
  showStats(null);

  const startBtn = $<HTMLButtonElement>('start');
  startBtn.disabled = false;
  $<HTMLButtonElement>('reset').disabled = false;
  startBtn.onclick = () => (state.running ? void stop() : start());
  $('reset').onclick = () => void reset().catch(showError);
  $('lr').onchange = () => setLr(Number(($('lr') as HTMLInputElement).value));
  $('lrRange').oninput = () => setLr(10 ** Number(($('lrRange') as HTMLInputElement).value));
  state.ready = true;
  $('status').textContent = 'ready';
  if (params.get('autostart') === '1') start();
}

main().catch(showError);
