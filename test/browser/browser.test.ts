// The engine in a real browser: Debian's Chromium, headless, WebGPU through SwiftShader.
// The bundle built by scripts/build-browser.mjs runs an MLP forward + backward in the
// page; the same function runs here on Dawn (lavapipe) and both must agree to float32
// accuracy. The playground page must train (its loss falls). Chromium missing is a
// failure with install instructions, never a skip.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { build } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import * as Engine from '../../src/node.ts';
import { MLP_SHAPES, runMlp, type MlpResult } from './mlp.ts';
import { CHROMIUM_MISSING, collectPageErrors, findChromium, launchChromium, serveStatic, type StaticServer } from './harness.ts';

const root = join(import.meta.dirname, '..', '..');

const PARITY_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>webomni parity</title></head>
<body><script type="module">
  import * as E from '/dist/webomni.js';
  import { runMlp } from '/test/mlp.js';
  window.runParity = async () => {
    const device = await E.createBrowserDevice();
    E.setDevice(device);
    try {
      const result = await runMlp(E);
      return { ...result, adapter: device.adapter, features: [...device.features] };
    } finally {
      E.setDevice(null);
      device.destroy();
    }
  };
  window.parityReady = true;
</script></body></html>`;

interface PageParity extends MlpResult {
  adapter: { vendor: string; architecture: string; description: string; backend: string };
  features: string[];
}

let browser: Browser | null = null;
let server: StaticServer | null = null;
let device: Engine.Device | null = null;

beforeAll(async () => {
  execFileSync(process.execPath, [join(root, 'scripts', 'build-browser.mjs')], { cwd: root, stdio: 'pipe' });
  const mlp = await build({
    entryPoints: [join(root, 'test', 'browser', 'mlp.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    write: false,
    logLevel: 'silent',
  });
  server = await serveStatic(join(root, 'playground'), {
    '/test/parity.html': PARITY_PAGE,
    '/test/mlp.js': mlp.outputFiles[0].text,
  });
  // Without Chromium each browser test fails with the install instructions (never a skip).
  if (findChromium()) browser = await launchChromium();
  device = await Engine.initDevice();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  device?.destroy();
  Engine.setDevice(null);
});

async function openPage(path: string): Promise<{ page: Page; errors: string[] }> {
  if (!browser) throw new Error(CHROMIUM_MISSING);
  const page = await browser.newPage({ viewport: { width: 1280, height: 560 } });
  const errors = collectPageErrors(page);
  await page.goto(server!.url + path);
  return { page, errors };
}

describe('browser bundle', () => {
  it('rejects Node-only imports at build time', () => {
    const r = spawnSync(process.execPath, [join(root, 'scripts', 'build-browser.mjs'), '--check', 'src/node.ts'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("src/device/node.ts imports the Node-only package 'webgpu'");
    const ok = spawnSync(process.execPath, [join(root, 'scripts', 'build-browser.mjs'), '--check', 'src/index.ts'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(ok.status, ok.stderr).toBe(0);
  });

  it('computes the same MLP loss and gradients in Chromium as in Node', async () => {
    const { page, errors } = await openPage('/test/parity.html');
    try {
      await page.waitForFunction(() => (window as unknown as { parityReady?: boolean }).parityReady === true, null, { timeout: 20_000 });
      const inPage = (await page.evaluate(() =>
        (window as unknown as { runParity(): Promise<unknown> }).runParity(),
      )) as PageParity;
      expect(errors).toEqual([]);
      // The page really ran on a WebGPU adapter (SwiftShader here).
      expect(inPage.adapter.backend).toBe('browser');
      expect(inPage.adapter.vendor.length + inPage.adapter.architecture.length).toBeGreaterThan(0);

      const inNode = await runMlp(Engine);
      const { batch, inDim, hidden, classes } = MLP_SHAPES;
      const sizes: Record<string, number> = {
        w1: inDim * hidden,
        b1: hidden,
        w2: hidden * hidden,
        b2: hidden,
        w3: hidden * classes,
        b3: classes,
      };
      expect(batch).toBeGreaterThan(1);
      // A meaningful loss: cross-entropy of 5 classes near ln 5 plus the softmax² term.
      expect(inNode.loss).toBeGreaterThan(1);
      expect(inNode.loss).toBeLessThan(4);
      expect(Math.abs(inPage.loss - inNode.loss)).toBeLessThan(1e-5 * Math.abs(inNode.loss) + 1e-6);
      expect(Object.keys(inPage.grads).sort()).toEqual(Object.keys(sizes).sort());
      for (const [name, n] of Object.entries(sizes)) {
        const a = inPage.grads[name];
        const b = inNode.grads[name];
        expect(a.length, name).toBe(n);
        expect(b.length, name).toBe(n);
        const scale = Math.max(...b.map(Math.abs));
        // Gradients are not trivially zero, and agree element by element.
        expect(scale, `${name} gradient is all zero`).toBeGreaterThan(1e-4);
        let worst = 0;
        for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / (1e-3 * scale + Math.abs(b[i])));
        expect(worst, `${name}: worst relative difference`).toBeLessThan(2e-4);
      }
      // Everything the computation allocated went back to the pool, on both sides.
      expect(inNode.liveBuffersAfter).toBe(inNode.liveBuffersBefore);
      expect(inPage.liveBuffersAfter).toBe(inPage.liveBuffersBefore);
    } finally {
      await page.close();
    }
  });
});

describe('playground', () => {
  it('trains the spiral classifier in the page: the loss falls', async () => {
    const { page, errors } = await openPage('/index.html?lr=1');
    try {
      type Pg = { webomniPlayground?: { state: { ready: boolean; step: number; error: string | null } } };
      await page.waitForFunction(() => (window as unknown as Pg).webomniPlayground?.state.ready || (window as unknown as Pg).webomniPlayground?.state.error, null, {
        timeout: 30_000,
      });
      await page.click('#start');
      await page.waitForFunction(() => ((window as unknown as Pg).webomniPlayground?.state.step ?? 0) >= 60 || (window as unknown as Pg).webomniPlayground?.state.error, null, {
        timeout: 45_000,
      });
      await page.click('#start'); // stop
      const state = (await page.evaluate(async () => {
        const pg = (window as unknown as { webomniPlayground: { stop(): Promise<void>; state: unknown } }).webomniPlayground;
        await pg.stop();
        return pg.state;
      })) as { step: number; losses: number[]; accuracy: number | null; adapter: Record<string, string> | null; error: string | null; running: boolean };
      expect(state.error).toBeNull();
      expect(errors).toEqual([]);
      expect(state.running).toBe(false);
      expect(state.adapter).not.toBeNull();
      expect(state.step).toBeGreaterThanOrEqual(60);
      expect(state.losses.length).toBe(state.step);
      expect(state.losses.every(Number.isFinite)).toBe(true);
      // Three balanced classes: the untrained loss is about ln 3.
      expect(state.losses[0]).toBeGreaterThan(0.9);
      expect(state.losses[0]).toBeLessThan(1.5);
      expect(state.losses[59]).toBeLessThan(0.8 * state.losses[0]);
      expect(state.accuracy).not.toBeNull();
      expect(state.accuracy!).toBeGreaterThan(0.4);
      // The UI shows the step and the adapter.
      expect(Number(await page.textContent('#step'))).toBe(state.step);
      expect(await page.textContent('#adapter')).toContain('architecture');
    } finally {
      await page.close();
    }
  });
});
