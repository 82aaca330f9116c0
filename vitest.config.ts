import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Real-process tests bind fixed loopback ports; keep files from racing each other.
    fileParallelism: false,
    reporters: ['default'],
  },
});
