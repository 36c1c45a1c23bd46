#!/usr/bin/env node
// Browser bundles, built with esbuild:
//   src/index.ts       -> playground/dist/webomni.js   (the platform-neutral engine, ESM)
//   playground/main.ts -> playground/dist/main.js      (the playground page's script)
//
// The browser boundary is enforced here: any import of a Node built-in (`fs`, `node:*`…)
// or of a Node-only package (Dawn's `webgpu`) reachable from a browser entry fails the
// build with the importing file and line, instead of producing a bundle that breaks at
// load time. Keep Node-only code behind src/node.ts.
//
//   node scripts/build-browser.mjs [--minify] [--check ENTRY] [--serve [--port N]]
//
// --serve: after building, serve playground/ on http://127.0.0.1:PORT (default 8080;
// loopback only) so the playground can be opened in a browser with WebGPU.
//
// --check ENTRY: only verify that ENTRY bundles for the browser (nothing is written);
// used by the tests to prove that the boundary rejects Node-only imports.

import { build } from 'esbuild';
import { builtinModules } from 'node:module';
import { spawnSync } from 'node:child_process';
import { mkdirSync, existsSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { join, dirname, relative, normalize, extname, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const minify = args.includes('--minify');
const checkEntry = args.includes('--check') ? args[args.indexOf('--check') + 1] : null;

/** Packages that only work in Node, besides the built-ins. */
const NODE_ONLY_PACKAGES = ['webgpu', 'ws', 'bufferutil', 'msgpackr', 'commander', 'cli-progress', 'tsx'];

const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** An esbuild plugin that turns every Node-only import into a build error. */
const browserBoundary = {
  name: 'webomni-browser-boundary',
  setup(b) {
    const names = [...builtinModules, ...NODE_ONLY_PACKAGES].map(escapeRe).join('|');
    const filter = new RegExp(`^(node:.*|(${names})(/.*)?)$`);
    b.onResolve({ filter }, (a) => {
      const what = builtins.has(a.path) || a.path.startsWith('node:') ? 'the Node built-in' : 'the Node-only package';
      const from = a.importer ? relative(root, a.importer) : '(entry)';
      return {
        errors: [
          {
            text: `${from} imports ${what} '${a.path}', which cannot run in a browser. Node-only code must stay behind src/node.ts.`,
          },
        ],
      };
    });
  },
};

function genShaders() {
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'gen-shaders.mjs')], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('scripts/gen-shaders.mjs failed');
}

const common = {
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  sourcemap: true,
  minify,
  logLevel: 'silent',
  plugins: [browserBoundary],
  // Node globals must not be assumed either: `process` stays undefined in the page.
  define: { 'process.env.NODE_ENV': '"production"' },
};

function report(err) {
  const msgs = err.errors ?? [];
  if (!msgs.length) return String(err.message ?? err);
  return msgs
    .map((m) => {
      const loc = m.location ? `${m.location.file}:${m.location.line}:${m.location.column}: ` : '';
      return `  ${loc}${m.text}${m.location?.lineText ? `\n      ${m.location.lineText.trim()}` : ''}`;
    })
    .join('\n');
}

async function main() {
  genShaders();
  if (checkEntry) {
    try {
      await build({ ...common, entryPoints: [checkEntry], write: false, outdir: join(root, 'tmp', 'browser-check'), sourcemap: false });
    } catch (e) {
      console.error(`[build-browser] ${checkEntry} does not bundle for the browser:\n${report(e)}`);
      process.exit(1);
    }
    console.log(`[build-browser] ${checkEntry} bundles for the browser`);
    return;
  }
  const outdir = join(root, 'playground', 'dist');
  mkdirSync(outdir, { recursive: true });
  const targets = [
    { in: join(root, 'src', 'index.ts'), out: join(outdir, 'webomni.js') },
    { in: join(root, 'playground', 'main.ts'), out: join(outdir, 'main.js') },
  ];
  for (const t of targets) {
    try {
      const r = await build({ ...common, entryPoints: [t.in], outfile: t.out, metafile: true });
      const bytes = Object.values(r.metafile.outputs).reduce((s, o) => s + (o.bytes ?? 0), 0);
      console.log(`[build-browser] ${relative(root, t.in)} -> ${relative(root, t.out)} (${(bytes / 1024).toFixed(0)} KiB with map)`);
    } catch (e) {
      console.error(`[build-browser] ${relative(root, t.in)} failed to bundle for the browser:\n${report(e)}`);
      process.exit(1);
    }
  }
  if (args.includes('--serve')) serve(join(root, 'playground'));
}

/** A minimal static server for the playground (loopback only, no listings). */
function serve(dir) {
  const port = args.includes('--port') ? Number(args[args.indexOf('--port') + 1]) : 8080;
  const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.map': 'application/json' };
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = normalize(join(dir, path === '/' ? 'index.html' : path));
    if (!file.startsWith(dir + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    res.end(readFileSync(file));
  });
  server.listen(port, '127.0.0.1', () => console.log(`[build-browser] playground at http://127.0.0.1:${port}/ (Ctrl-C to stop)`));
}

await main();
