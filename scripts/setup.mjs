#!/usr/bin/env node
// Idempotent set-up run by `npm start` and `npm test` before anything else.
// Plain JavaScript with no dependencies: it runs before node_modules exists.
//
//   node scripts/setup.mjs [--for start|test|bench] [--no-install]
//
// 1. npm dependencies: `npm install` when node_modules is missing or stale.
// 2. A WebGPU adapter: probe Dawn in a child process; if none, and this is
//    Debian/Ubuntu and we are root, install Mesa's lavapipe from
//    bookworm-backports (reusing the mirror already in apt's sources);
//    otherwise print exactly what to install.
// 3. Extra system packages some tests need (`--for test`): Chromium for the
//    browser test, PyTorch for the parity tests; the benchmarks' peers
//    (`--for bench`: PyTorch's Gloo and CPU baselines) need PyTorch too.
// Each step is skipped quickly when already satisfied.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const purpose = args.includes('--for') ? args[args.indexOf('--for') + 1] : 'start';
const mayInstall = !args.includes('--no-install') && process.env.WEBOMNI_NO_INSTALL !== '1';
const quiet = process.env.WEBOMNI_SETUP_QUIET === '1';

function log(msg) {
  if (!quiet) console.log(`[setup] ${msg}`);
}
function fail(msg) {
  console.error(`[setup] ERROR: ${msg}`);
  process.exit(1);
}
function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { stdio: 'inherit', cwd: root, ...opts });
  return r.status === 0;
}
function capture(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', cwd: root, ...opts });
  return { ok: r.status === 0, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = '/tmp';

// ---------- 1. npm dependencies ----------
function depsStale() {
  const stamp = join(root, 'node_modules', '.package-lock.json');
  if (!existsSync(stamp)) return true;
  const lock = join(root, 'package-lock.json');
  const pkg = join(root, 'package.json');
  const newest = Math.max(statSync(pkg).mtimeMs, existsSync(lock) ? statSync(lock).mtimeMs : 0);
  if (statSync(stamp).mtimeMs + 1000 < newest) return true;
  // A dependency listed but not installed (e.g. added by a pull).
  const manifest = JSON.parse(readFileSync(pkg, 'utf8'));
  const all = { ...manifest.dependencies, ...manifest.devDependencies };
  return Object.keys(all).some((d) => !existsSync(join(root, 'node_modules', d, 'package.json')));
}
if (depsStale()) {
  log('installing npm dependencies (npm install)…');
  const useCi = existsSync(join(root, 'package-lock.json')) && process.env.CI === 'true';
  if (!run('npm', [useCi ? 'ci' : 'install', '--no-audit', '--no-fund'])) fail('npm install failed');
}

// ---------- 2. WebGPU adapter ----------
function probeAdapter() {
  const probe = `
    import { create, globals } from 'webgpu';
    Object.assign(globalThis, globals);
    const gpu = create([]);
    const a = await gpu.requestAdapter();
    if (!a) { console.log('NOADAPTER'); process.exit(3); }
    const info = a.info ?? {};
    console.log('ADAPTER ' + JSON.stringify({ vendor: info.vendor, architecture: info.architecture, description: info.description }));
    process.exit(0);
  `;
  const r = capture(process.execPath, ['--input-type=module', '-e', probe], { timeout: 60_000 });
  const m = r.out.match(/ADAPTER (.*)/);
  return m ? JSON.parse(m[1]) : null;
}

function isDebianLike() {
  if (!existsSync('/etc/os-release')) return null;
  const osr = readFileSync('/etc/os-release', 'utf8');
  const get = (k) => (osr.match(new RegExp(`^${k}="?([^"\\n]*)"?`, 'm')) ?? [])[1] ?? '';
  const id = get('ID');
  const like = get('ID_LIKE');
  if (id === 'debian' || like.includes('debian')) return { id, codename: get('VERSION_CODENAME') };
  return null;
}

let aptUpdated = false;
function aptUpdate() {
  if (aptUpdated) return;
  log('apt-get update…');
  if (!run('apt-get', ['update', '-qq'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })) {
    fail('apt-get update failed');
  }
  aptUpdated = true;
}
function aptInstall(pkgs, extra = []) {
  aptUpdate();
  log(`apt-get install ${extra.join(' ')} ${pkgs.join(' ')}…`);
  return run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...extra, ...pkgs], {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}
function dpkgInstalled(pkg) {
  const r = capture('dpkg-query', ['-W', '-f=${Status}', pkg]);
  return r.ok && r.out.includes('install ok installed');
}

/** The mirror already configured for the main Debian suite, read from apt's own sources. */
function debianMirror() {
  const files = [];
  if (existsSync('/etc/apt/sources.list')) files.push('/etc/apt/sources.list');
  if (existsSync('/etc/apt/sources.list.d')) {
    for (const f of readdirSync('/etc/apt/sources.list.d')) {
      if (f.endsWith('.list') || f.endsWith('.sources')) files.push(join('/etc/apt/sources.list.d', f));
    }
  }
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    // deb822 stanzas
    for (const stanza of text.split(/\n\s*\n/)) {
      const uri = stanza.match(/^URIs:\s*(\S+)/m)?.[1];
      const suites = stanza.match(/^Suites:\s*(.+)$/m)?.[1] ?? '';
      if (uri && /\bbookworm\b/.test(suites) && !/security/.test(uri)) return uri;
    }
    // one-line format
    for (const line of text.split('\n')) {
      const m = line.match(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s/);
      if (m && !/security/.test(m[1])) return m[1];
    }
  }
  return null;
}

function ensureBackports() {
  const target = '/etc/apt/sources.list.d/webomni-bookworm-backports.sources';
  if (existsSync(target)) return;
  const mirror = debianMirror();
  if (!mirror) fail('could not find the Debian mirror in /etc/apt/sources.list*; add bookworm-backports to apt by hand');
  writeFileSync(
    target,
    `Types: deb\nURIs: ${mirror}\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n`,
  );
  aptUpdated = false;
  log(`added bookworm-backports from ${mirror}`);
}

const lavapipeHelp = `No WebGPU adapter was found. webomni needs a GPU driver with Vulkan, Metal or D3D12, or,
on a machine without a GPU, Mesa's lavapipe (Vulkan on the CPU) version 24 or newer. On Debian 12:
  echo "deb <your Debian mirror> bookworm-backports main" > /etc/apt/sources.list.d/backports.list
  apt-get update && apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1
On Ubuntu 24.04+: apt-get install mesa-vulkan-drivers libvulkan1`;

let adapter = process.env.WEBOMNI_SKIP_ADAPTER_CHECK === '1' ? { skipped: true } : probeAdapter();
if (!adapter) {
  const deb = isDebianLike();
  const isRoot = process.getuid?.() === 0;
  if (!deb || !isRoot || !mayInstall) fail(lavapipeHelp);
  log('no WebGPU adapter: installing Mesa lavapipe (software Vulkan)…');
  if (deb.codename === 'bookworm') {
    ensureBackports();
    if (!aptInstall(['mesa-vulkan-drivers', 'libvulkan1'], ['-t', 'bookworm-backports'])) fail(lavapipeHelp);
  } else if (!aptInstall(['mesa-vulkan-drivers', 'libvulkan1'])) {
    fail(lavapipeHelp);
  }
  adapter = probeAdapter();
  if (!adapter) fail(`lavapipe was installed but Dawn still finds no adapter.\n${lavapipeHelp}`);
}
if (!adapter.skipped) log(`WebGPU adapter: ${adapter.description || adapter.vendor} (${adapter.architecture || '?'})`);

// ---------- 3. extra system packages for tests ----------
if (purpose === 'test' || purpose === 'bench') {
  const want = [];
  if (purpose === 'test' && !existsSync('/usr/lib/chromium/chromium') && !existsSync('/usr/bin/chromium')) want.push('chromium');
  // PyTorch (CPU) for the parity tests and the Gloo/CPU benchmark peers.
  if (!dpkgInstalled('python3-torch')) want.push('python3-torch');
  if (want.length) {
    if (isDebianLike() && process.getuid?.() === 0 && mayInstall) {
      if (!aptInstall(want)) log(`could not install ${want.join(' ')}; the tests that need them will say so`);
    } else {
      log(`missing for some ${purpose === 'bench' ? 'benchmark peers' : 'tests'}: ${want.join(' ')} (apt-get install ${want.join(' ')}); those ${purpose === 'bench' ? 'peers are skipped with a message' : 'tests will say so'}`);
    }
  }
}
