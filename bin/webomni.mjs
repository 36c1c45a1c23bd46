#!/usr/bin/env node
// Entry point: load the TypeScript sources through tsx so no build step is needed.
if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = '/tmp';
const { register } = await import('tsx/esm/api');
register();
await import('../src/cli/main.ts');
