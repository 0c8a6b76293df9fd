import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Each file in its own process: tests that kill servers or watch
    // process-level handlers must not see each other.
    pool: 'forks',
  },
});
