// `npm run bench -- <name> [args]`: runs bench/<name>.ts, which exports
// `async function run(args: string[]): Promise<void>`.
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const [name, ...args] = process.argv.slice(2);
const available = readdirSync(here)
  // Files starting with '_' are shared helpers, not benchmarks.
  .filter((f) => f.endsWith('.ts') && !f.startsWith('_') && !['run.ts', 'report.ts'].includes(f))
  .map((f) => f.slice(0, -3));
if (!name || name === '--help' || name === '-h') {
  console.log(`usage: npm run bench -- <name> [args]\nbenchmarks: ${available.join(', ')}`);
  process.exit(name ? 0 : 1);
}
if (!/^[a-z0-9_-]+$/i.test(name) || !existsSync(join(here, `${name}.ts`))) {
  console.error(`unknown benchmark '${name}'; available: ${available.join(', ')}`);
  process.exit(1);
}
const mod = (await import(pathToFileURL(join(here, `${name}.ts`)).href)) as { run?: (args: string[]) => Promise<void> };
if (typeof mod.run !== 'function') {
  console.error(`bench/${name}.ts does not export run(args)`);
  process.exit(1);
}
await mod.run(args);
