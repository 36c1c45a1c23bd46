import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // vitest excludes **/dist/** by default, which would hide test/dist (the collectives).
    exclude: configDefaults.exclude.filter((p) => p !== '**/dist/**'),
    globalSetup: ['test/helpers/global-setup.ts'],
    // One GPU-heavy file at a time: lavapipe already uses every core, and multi-rank
    // tests spawn their own processes.
    fileParallelism: false,
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
