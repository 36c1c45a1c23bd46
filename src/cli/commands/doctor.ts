// `webomni doctor`: what this machine offers webomni, what is missing, and the exact
// command that fixes each gap. Proves the device works by running tiny kernels.
// Exits 1 when Dawn does not load, no adapter is found, or a kernel check fails;
// missing optional pieces (Chromium, PyTorch) are reported but do not fail it.
import type { Command } from 'commander';

export interface DoctorCheck {
  name: string;
  ok: boolean;
  /** Result and expected values, for kernel checks. */
  result?: number[];
  expected?: number[];
  ms?: number;
  error?: string;
}

export interface DoctorMissing {
  what: string;
  why: string;
  /** The exact command (or commands) that fixes it. */
  fix: string;
  required: boolean;
}

export interface DoctorReport {
  ok: boolean;
  node: { version: string; platform: string; arch: string; os: string | null };
  dawn: { loaded: boolean; version: string | null; error: string | null };
  adapter: {
    vendor: string;
    architecture: string;
    device: string;
    description: string;
    backend: string;
    isFallbackAdapter: boolean | null;
  } | null;
  adapterError: string | null;
  /** The features webomni uses: present or missing. */
  features: Record<'shader-f16' | 'subgroups' | 'timestamp-query', 'present' | 'missing'>;
  /** Every feature the adapter reports. */
  adapterFeatures: string[];
  limits: Record<string, number>;
  kernel: { ok: boolean; checks: DoctorCheck[] };
  system: {
    debian: { id: string; codename: string } | null;
    lavapipe: { installed: boolean; version: string | null; usable: boolean | null };
    chromium: { found: boolean; path: string | null; version: string | null; playwrightCore: boolean };
    torch: { installed: boolean; version: string | null };
  };
  missing: DoctorMissing[];
}

const WANTED_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'] as const;
const KEY_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'maxUniformBufferBindingSize',
] as const;
const CHROMIUM_PATHS = ['/usr/lib/chromium/chromium', '/usr/bin/chromium'];

interface DoctorOptions {
  json?: boolean;
  backend?: string;
  adapter?: string;
}

export function register(program: Command): void {
  program
    .command('doctor')
    .description('check the WebGPU adapter, its features and limits, and the system packages tests need; run a tiny kernel')
    .option('--json', 'print the report as JSON')
    .option('--backend <name>', "Dawn backend: vulkan, metal, d3d12, opengl… (default: env WEBOMNI_BACKEND or Dawn's choice)")
    .option('--adapter <substring>', 'pick the adapter whose description contains this (default: env WEBOMNI_ADAPTER)')
    .action(async (opts: DoctorOptions) => {
      const report = await runDoctor(opts);
      console.log(opts.json ? JSON.stringify(report, null, 2) : formatReport(report));
      process.exitCode = report.ok ? 0 : 1;
      // Dawn can keep the event loop alive after the device is gone: never hang here.
      setTimeout(() => process.exit(process.exitCode ?? 0), 2000).unref();
    });
}

// ------------------------------------------------------------------ checks

export async function runDoctor(opts: DoctorOptions = {}): Promise<DoctorReport> {
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = '/tmp';
  const { existsSync, readFileSync } = await import('node:fs');
  const { spawnSync } = await import('node:child_process');
  const { createRequire } = await import('node:module');
  const require = createRequire(import.meta.url);

  const capture = (cmd: string, args: string[], timeout = 15_000) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout });
    return { ok: r.status === 0, out: ((r.stdout ?? '') + (r.stderr ?? '')).trim() };
  };
  const debian = (() => {
    if (!existsSync('/etc/os-release')) return null;
    const osr = readFileSync('/etc/os-release', 'utf8');
    const get = (k: string) => osr.match(new RegExp(`^${k}="?([^"\\n]*)"?`, 'm'))?.[1] ?? '';
    const id = get('ID');
    if (id !== 'debian' && !get('ID_LIKE').includes('debian')) return null;
    return { id, codename: get('VERSION_CODENAME'), pretty: get('PRETTY_NAME') };
  })();
  const dpkg = (pkg: string): { installed: boolean; version: string | null } => {
    const r = capture('dpkg-query', ['-W', '-f=${Status}\t${Version}', pkg]);
    const [status, version] = r.out.split('\t');
    const installed = r.ok && status.includes('install ok installed');
    return { installed, version: installed ? (version ?? null) : null };
  };
  const sudo = process.getuid?.() === 0 ? '' : 'sudo ';

  const report: DoctorReport = {
    ok: false,
    node: { version: process.version, platform: process.platform, arch: process.arch, os: debian?.pretty ?? null },
    dawn: { loaded: false, version: null, error: null },
    adapter: null,
    adapterError: null,
    features: { 'shader-f16': 'missing', subgroups: 'missing', 'timestamp-query': 'missing' },
    adapterFeatures: [],
    limits: {},
    kernel: { ok: false, checks: [] },
    system: {
      debian: debian ? { id: debian.id, codename: debian.codename } : null,
      lavapipe: { installed: false, version: null, usable: null },
      chromium: { found: false, path: null, version: null, playwrightCore: false },
      torch: { installed: false, version: null },
    },
    missing: [],
  };

  // --- Dawn, adapter, device, kernels
  const lavapipeFix = (() => {
    if (debian?.codename === 'bookworm') {
      return (
        `${sudo}npm run setup   # adds bookworm-backports from your configured mirror and installs Mesa 25 lavapipe\n` +
        `# or by hand: echo "deb <your Debian mirror> bookworm-backports main" | ${sudo}tee /etc/apt/sources.list.d/backports.list && ` +
        `${sudo}apt-get update && ${sudo}apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1`
      );
    }
    if (debian) return `${sudo}apt-get update && ${sudo}apt-get install -y mesa-vulkan-drivers libvulkan1`;
    return 'install your GPU vendor\'s Vulkan (Linux), Metal (macOS) or D3D12 (Windows) driver; without a GPU on Linux, Mesa lavapipe >= 24';
  })();

  type Dawn = { create(flags: string[]): GPU; globals: Record<string, unknown> };
  let dawn: Dawn | null = null;
  try {
    dawn = (await import('webgpu')) as unknown as Dawn;
    report.dawn.loaded = true;
    try {
      report.dawn.version = (require('webgpu/package.json') as { version: string }).version;
    } catch {
      /* version unknown */
    }
  } catch (e) {
    report.dawn.error = (e as Error).message;
    report.missing.push({ what: "Dawn (npm 'webgpu')", why: `it does not load: ${report.dawn.error}`, fix: 'npm install', required: true });
  }

  if (dawn) {
    for (const [k, v] of Object.entries(dawn.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
    const backend = opts.backend || process.env.WEBOMNI_BACKEND || undefined;
    const pick = opts.adapter || process.env.WEBOMNI_ADAPTER || undefined;
    const flags: string[] = [];
    if (backend) flags.push(`backend=${backend}`);
    if (pick) flags.push(`adapter=${pick}`);
    // Held for the whole check: Dawn tears the device down if this is collected.
    let gpu: GPU | null = dawn.create(flags);
    let adapter: GPUAdapter | null = null;
    try {
      adapter = await withTimeout(gpu.requestAdapter({ powerPreference: 'high-performance' }), 60_000, 'requestAdapter');
    } catch (e) {
      report.adapterError = (e as Error).message;
    }
    if (!adapter) {
      report.adapterError ??= 'requestAdapter() returned no adapter';
      // Dawn lists the adapters it did find when a backend/adapter filter excluded them all.
      const othersExist = /Available adapters:\s*\n\s*\*/.test(report.adapterError);
      report.missing.push({
        what: 'a WebGPU adapter',
        why: `${report.adapterError}${backend ? ` (backend=${backend})` : ''}${pick ? ` (adapter=${pick})` : ''}`,
        fix:
          othersExist && (backend || pick)
            ? 'choose one of the available adapters listed above: change or drop --backend/--adapter (env WEBOMNI_BACKEND/WEBOMNI_ADAPTER)'
            : lavapipeFix,
        required: true,
      });
    } else {
      const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo & { isFallbackAdapter?: boolean } }).info;
      report.adapter = {
        vendor: info?.vendor ?? '',
        architecture: info?.architecture ?? '',
        device: info?.device ?? '',
        description: info?.description ?? '',
        backend: backend ?? 'default',
        isFallbackAdapter: typeof info?.isFallbackAdapter === 'boolean' ? info.isFallbackAdapter : null,
      };
      report.adapterFeatures = [...(adapter.features as unknown as Iterable<string>)].sort();
      for (const f of WANTED_FEATURES) report.features[f] = adapter.features.has(f) ? 'present' : 'missing';
      for (const k of KEY_LIMITS) {
        const v = (adapter.limits as unknown as Record<string, number | undefined>)[k];
        if (typeof v === 'number') report.limits[k] = v;
      }
      report.kernel = await kernelChecks(adapter, gpu, report.adapter.backend);
    }
    adapter = null;
    gpu = null;
  }

  // --- system packages
  if (debian) {
    const mesa = dpkg('mesa-vulkan-drivers');
    const major = mesa.version ? parseInt(mesa.version.replace(/^\d+:/, ''), 10) : NaN;
    report.system.lavapipe = { installed: mesa.installed, version: mesa.version, usable: mesa.installed ? major >= 24 : false };
    const onCpu = report.adapter === null || /llvmpipe|lavapipe/i.test(report.adapter.description);
    if (onCpu && !report.adapter && mesa.installed && !(major >= 24)) {
      report.missing.push({
        what: 'Mesa lavapipe >= 24',
        why: `mesa-vulkan-drivers ${mesa.version} is too old for Dawn (it lacks shaderUniform*ArrayDynamicIndexing)`,
        fix: lavapipeFix,
        required: true,
      });
    }
  }

  const chromiumPath = process.env.WEBOMNI_CHROMIUM ?? CHROMIUM_PATHS.find((p) => existsSync(p)) ?? null;
  if (chromiumPath && existsSync(chromiumPath)) {
    const v = capture(chromiumPath, ['--version', '--no-sandbox'], 20_000);
    report.system.chromium.found = true;
    report.system.chromium.path = chromiumPath;
    report.system.chromium.version = v.ok ? (v.out.split('\n').find((l) => /chrom/i.test(l)) ?? v.out).trim() : null;
  }
  try {
    require.resolve('playwright-core');
    report.system.chromium.playwrightCore = true;
  } catch {
    report.missing.push({ what: 'playwright-core', why: 'the browser tests drive Chromium with it', fix: 'npm install', required: false });
  }
  if (!report.system.chromium.found) {
    report.missing.push({
      what: 'Chromium',
      why: 'the browser tests (test/browser) run the engine in headless Chromium',
      fix: debian ? `${sudo}apt-get install -y chromium` : 'install Chromium and set WEBOMNI_CHROMIUM to its executable',
      required: false,
    });
  }

  if (debian) {
    const t = dpkg('python3-torch');
    report.system.torch = t;
  } else {
    const r = capture('python3', ['-c', 'import torch; print(torch.__version__)'], 60_000);
    report.system.torch = { installed: r.ok, version: r.ok ? r.out.split('\n').pop()!.trim() : null };
  }
  if (!report.system.torch.installed) {
    report.missing.push({
      what: 'PyTorch (python3-torch)',
      why: 'parity tests compare webomni against PyTorch reference values',
      fix: debian ? `${sudo}apt-get install -y python3-torch` : 'pip install torch',
      required: false,
    });
  }

  report.ok = report.dawn.loaded && report.adapter !== null && report.kernel.ok;
  return report;
}

/** Create a device on `adapter` and run tiny kernels through the engine's ops. */
async function kernelChecks(adapter: GPUAdapter, gpu: GPU, backend: string): Promise<{ ok: boolean; checks: DoctorCheck[] }> {
  const checks: DoctorCheck[] = [];
  const { Device } = await import('../../device/device.ts');
  const { requestFeatures, requiredLimits, describeAdapter } = await import('../../device/acquire.ts');
  const E = await import('../../index.ts');
  let device: InstanceType<typeof Device> | null = null;
  try {
    const gpuDevice = await withTimeout(
      adapter.requestDevice({ requiredFeatures: requestFeatures(adapter), requiredLimits: requiredLimits(adapter), label: 'webomni-doctor' }),
      60_000,
      'requestDevice',
    );
    device = new Device(gpuDevice, describeAdapter(adapter, backend), gpu);
  } catch (e) {
    checks.push({ name: 'requestDevice', ok: false, error: (e as Error).message });
    return { ok: false, checks };
  }
  const prev = E.hasDevice() ? E.getDevice() : null;
  E.setDevice(device);
  const run = async (name: string, expected: number[], fn: () => InstanceType<typeof E.Tensor>) => {
    const t0 = performance.now();
    try {
      const out = E.scope(fn, `doctor.${name}`);
      const result = Array.from(await out.toArray());
      out.release();
      const ok = result.length === expected.length && result.every((v, i) => Math.abs(v - expected[i]) <= 1e-5 * Math.max(1, Math.abs(expected[i])));
      checks.push({ name, ok, result, expected, ms: +(performance.now() - t0).toFixed(2) });
    } catch (e) {
      checks.push({ name, ok: false, expected, error: (e as Error).message, ms: +(performance.now() - t0).toFixed(2) });
    }
  };
  try {
    await run('add', [11, 22, 33, 44], () => E.add(E.tensor([1, 2, 3, 4]), E.tensor([10, 20, 30, 40])));
    // [[1,2,3],[4,5,6]] · [[1,0],[0,1],[1,1]]
    await run('matmul', [4, 5, 10, 11], () => E.matmul(E.tensor([1, 2, 3, 4, 5, 6], [2, 3]), E.tensor([1, 0, 0, 1, 1, 1], [3, 2])));
  } finally {
    E.setDevice(prev);
    device.destroy();
  }
  return { ok: checks.length > 0 && checks.every((c) => c.ok), checks };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

// ------------------------------------------------------------------ text output

function fmtBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(n % 2 ** 30 ? 2 : 0)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(n % 2 ** 20 ? 1 : 0)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(n % 2 ** 10 ? 1 : 0)} KiB`;
  return `${n} B`;
}

export function formatReport(r: DoctorReport): string {
  const lines: string[] = ['webomni doctor', ''];
  const row = (k: string, v: string) => lines.push(`  ${k.padEnd(15)} ${v}`);
  const mark = (ok: boolean) => (ok ? 'ok ' : 'NO ');
  row('node', `${r.node.version} (${r.node.platform} ${r.node.arch}${r.node.os ? `, ${r.node.os}` : ''})`);
  row('Dawn', r.dawn.loaded ? `${mark(true)} loaded (webgpu ${r.dawn.version ?? '?'})` : `${mark(false)} ${r.dawn.error}`);
  if (r.adapter) {
    const a = r.adapter;
    row('adapter', `${mark(true)} ${[a.vendor, a.architecture, a.description].filter(Boolean).join(' / ') || '(no info)'}`);
    row('', `device ${a.device || '?'}, backend ${a.backend}${a.isFallbackAdapter ? ', fallback (software) adapter' : ''}`);
    row('features', WANTED_FEATURES.map((f) => `${f}: ${r.features[f]}`).join(', '));
    row('', `all: ${r.adapterFeatures.join(', ')}`);
    lines.push('  limits');
    for (const [k, v] of Object.entries(r.limits)) {
      const bytes = /Size$/.test(k) && v >= 1024;
      row('', `${k.padEnd(36)} ${bytes ? `${fmtBytes(v)} (${v})` : v}`);
    }
    for (const c of r.kernel.checks) {
      row(
        `kernel ${c.name}`,
        c.ok ? `${mark(true)} [${c.result?.join(', ')}] in ${c.ms} ms` : `${mark(false)} ${c.error ?? `got [${c.result?.join(', ')}], expected [${c.expected?.join(', ')}]`}`,
      );
    }
  } else if (r.dawn.loaded) {
    row('adapter', `${mark(false)} ${(r.adapterError ?? 'none found').replace(/\n/g, '\n' + ' '.repeat(22))}`);
  }
  const s = r.system;
  if (s.debian) {
    row(
      'lavapipe',
      s.lavapipe.installed
        ? `${mark(!!s.lavapipe.usable)} mesa-vulkan-drivers ${s.lavapipe.version}${s.lavapipe.usable ? '' : ' (too old for Dawn: need >= 24)'}`
        : `--  mesa-vulkan-drivers not installed${r.adapter ? ' (not needed: an adapter was found)' : ''}`,
    );
  }
  row(
    'chromium',
    s.chromium.found
      ? `${mark(true)} ${s.chromium.path}${s.chromium.version ? ` (${s.chromium.version})` : ''}${s.chromium.playwrightCore ? ', playwright-core installed' : ', playwright-core MISSING'}`
      : `${mark(false)} not found (browser tests need it)`,
  );
  row('python3-torch', s.torch.installed ? `${mark(true)} ${s.torch.version}` : `${mark(false)} not installed (parity tests need it)`);
  lines.push('');
  if (r.missing.length === 0) {
    lines.push(r.ok ? 'Everything webomni needs is here.' : 'The device check failed (see above).');
  } else {
    lines.push('Missing:');
    for (const m of r.missing) {
      lines.push(`  - ${m.what}${m.required ? ' (required)' : ' (optional)'}: ${m.why.replace(/\n/g, '\n      ')}`);
      lines.push('    fix:');
      for (const l of m.fix.split('\n')) lines.push(`      ${l}`);
    }
  }
  if (!r.ok) lines.push('', 'webomni cannot run here until the required items above are fixed.');
  return lines.join('\n');
}
