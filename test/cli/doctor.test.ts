// `webomni doctor --json` run as a real child process, the way a user runs it.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { DoctorReport } from '../../src/cli/commands/doctor.ts';

const root = join(import.meta.dirname, '..', '..');

/** The default adapter choice: no backend/adapter filter from the caller's environment. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.WEBOMNI_BACKEND;
  delete env.WEBOMNI_ADAPTER;
  return env;
}

function doctor(...args: string[]): { status: number | null; report: DoctorReport; stderr: string } {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'webomni.mjs'), 'doctor', '--json', ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 90_000,
    env: cleanEnv(),
  });
  let report: DoctorReport;
  try {
    report = JSON.parse(r.stdout) as DoctorReport;
  } catch {
    throw new Error(`doctor --json did not print JSON (exit ${r.status}):\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
  return { status: r.status, report, stderr: r.stderr };
}

describe('webomni doctor', () => {
  it('reports the adapter, its features and limits, and runs a kernel', () => {
    const { status, report, stderr } = doctor();
    expect(status, stderr).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.node.version).toBe(process.version);
    expect(report.node.platform).toBe(process.platform);
    expect(report.dawn.loaded).toBe(true);
    expect(report.dawn.version).toMatch(/^\d+\.\d+\.\d+/);

    const a = report.adapter!;
    expect(a).not.toBeNull();
    expect(a.vendor.length + a.architecture.length + a.description.length).toBeGreaterThan(0);
    expect(a.backend).toBe('default');

    // The three features webomni uses are each reported present or missing, consistently
    // with the adapter's full feature list.
    expect(Object.keys(report.features).sort()).toEqual(['shader-f16', 'subgroups', 'timestamp-query']);
    for (const [f, v] of Object.entries(report.features)) {
      expect(v).toBe(report.adapterFeatures.includes(f) ? 'present' : 'missing');
    }
    expect(report.adapterFeatures.length).toBeGreaterThan(0);

    // Key limits, with values no WebGPU adapter may go below (the spec's defaults).
    expect(report.limits.maxBufferSize).toBeGreaterThanOrEqual(256 * 2 ** 20);
    expect(report.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 2 ** 20);
    expect(report.limits.maxComputeWorkgroupStorageSize).toBeGreaterThanOrEqual(16384);
    expect(report.limits.maxComputeInvocationsPerWorkgroup).toBeGreaterThanOrEqual(256);

    // The kernel checks ran on the device and read back the right numbers.
    expect(report.kernel.ok).toBe(true);
    const add = report.kernel.checks.find((c) => c.name === 'add')!;
    expect(add.ok).toBe(true);
    expect(add.result).toEqual([11, 22, 33, 44]);
    const mm = report.kernel.checks.find((c) => c.name === 'matmul')!;
    expect(mm.result).toEqual([4, 5, 10, 11]);

    // System packages: what the report says matches the machine.
    const chromium = ['/usr/lib/chromium/chromium', '/usr/bin/chromium'].some((p) => existsSync(p));
    expect(report.system.chromium.found).toBe(chromium);
    expect(report.missing.some((m) => m.what === 'Chromium')).toBe(!chromium);
    if (report.system.debian) {
      // On Debian the adapter here comes from lavapipe unless a real GPU driver is present.
      if (/llvmpipe/.test(a.description)) {
        expect(report.system.lavapipe.installed).toBe(true);
        expect(report.system.lavapipe.usable).toBe(true);
      }
      expect(typeof report.system.torch.installed).toBe('boolean');
    }
    // Nothing required is missing when the device works.
    expect(report.missing.filter((m) => m.required)).toEqual([]);
    for (const m of report.missing) expect(m.fix.length).toBeGreaterThan(0);
  });

  it('exits non-zero with a fix when no adapter matches', () => {
    const { status, report } = doctor('--adapter', 'no-such-adapter-xyz');
    expect(status).toBe(1);
    expect(report.ok).toBe(false);
    expect(report.adapter).toBeNull();
    expect(report.kernel.ok).toBe(false);
    expect(report.adapterError).toBeTruthy();
    const missing = report.missing.find((m) => m.what === 'a WebGPU adapter')!;
    expect(missing.required).toBe(true);
    expect(missing.why).toContain('adapter=no-such-adapter-xyz');
    expect(missing.fix).toMatch(/--adapter|apt-get|npm run setup/);
  });
});
