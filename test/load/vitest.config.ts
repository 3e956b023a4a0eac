import { defineConfig } from 'vitest/config';

// `npm run loadtest` / `npm run loadtest:outage`: minutes long, loopback only, one scenario at a time. Not part of
// `npm test`; run them under the lock (flock /work/.locks/heavy …) on a shared machine.
export default defineConfig({
  test: {
    include: ['test/load/**/*.load.ts'],
    pool: 'forks',
    maxWorkers: 1,
    testTimeout: 60 * 60_000,
    hookTimeout: 10 * 60_000,
    // The figures are the product: print them as they come.
    silent: false,
    reporters: ['verbose'],
  },
});
