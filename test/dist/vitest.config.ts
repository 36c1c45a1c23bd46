// Runs only the distributed-layer tests: `npx vitest run -c test/dist/vitest.config.ts`.
// (vitest's default exclude list contains "**/dist/**", which also matches
// this folder; the root config must drop that pattern for `npx vitest run`
// to pick these files up.)
import { fileURLToPath } from 'node:url';
import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/dist/**/*.test.ts'],
    exclude: configDefaults.exclude.filter((p) => p !== '**/dist/**'),
    fileParallelism: false,
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
