// Headless Chromium (Debian's package, WebGPU through SwiftShader) driven by
// playwright-core, plus a loopback static file server for the bundles and test pages.

import { createServer, type Server } from 'node:http';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, join, normalize, sep } from 'node:path';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM_CANDIDATES = ['/usr/lib/chromium/chromium', '/usr/bin/chromium'];

export function findChromium(): string | null {
  const fromEnv = process.env.WEBOMNI_CHROMIUM;
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : null;
  return CHROMIUM_CANDIDATES.find((p) => existsSync(p)) ?? null;
}

export const CHROMIUM_MISSING =
  'Chromium is needed for the browser tests but was not found at ' +
  CHROMIUM_CANDIDATES.join(' or ') +
  ". Install it with 'apt-get install -y chromium' (Debian; `npm test` does it when run as root " +
  "via 'node scripts/setup.mjs --for test'), or point WEBOMNI_CHROMIUM at a Chromium binary. " +
  "'npx playwright install' cannot download browsers here.";

/** Flags for WebGPU in a headless Chromium without a GPU (SwiftShader's fallback adapter). */
export const CHROMIUM_ARGS = [
  '--enable-unsafe-webgpu',
  '--no-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Launch headless Chromium; playwright gives it a fresh temporary user-data-dir. */
export async function launchChromium(): Promise<Browser> {
  const executablePath = findChromium();
  if (!executablePath) throw new Error(CHROMIUM_MISSING);
  return chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.css': 'text/css',
  '.png': 'image/png',
};

export interface StaticServer {
  url: string;
  close(): Promise<void>;
}

/**
 * Serve files under `root` (no listing, no path escapes) on 127.0.0.1 at an ephemeral
 * port. `extra` maps URL paths to in-memory content (test pages, test bundles).
 */
export async function serveStatic(root: string, extra: Record<string, string> = {}): Promise<StaticServer> {
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const send = (status: number, body: string | Buffer, type = 'text/plain') => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (path in extra) return send(200, extra[path], MIME[extname(path)] ?? 'text/plain');
    const file = normalize(join(root, path === '/' ? 'index.html' : path));
    if (!file.startsWith(normalize(root) + sep)) return send(403, 'forbidden');
    if (!existsSync(file) || !statSync(file).isFile()) return send(404, `not found: ${path}`);
    send(200, readFileSync(file), MIME[extname(file)] ?? 'application/octet-stream');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Collect the page's console errors and uncaught exceptions (for failure messages). */
export function collectPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console.error: ${m.text()}`);
  });
  return errors;
}
