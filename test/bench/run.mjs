// `npm run bench`: every benchmark in turn, each in a fresh process (the embedded engine is one per process).
// Figures are medians; ratios compare paths measured side by side in the same run.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describeRuntime } from './report.mjs';

const only = process.argv.slice(2);
// `ingest` is the product as users run it; `collector-only` a diagnostic of the collector alone.
const benches = ['ingest', 'collector-only', 'query', 'live', 'sql-ingest', 'alerts'].filter(
  (b) => only.length === 0 || only.includes(b),
);
let failed = 0;
for (const name of benches) {
  const file = fileURLToPath(new URL(`./${name}.mjs`, import.meta.url));
  if (!existsSync(file)) continue;
  console.log(`\n=== ${name} on ${describeRuntime()} ===`);
  const r = spawnSync(process.execPath, ['--max-semi-space-size=64', file], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    console.error(`benchmark ${name} failed (exit ${r.status})`);
  }
}
process.exit(failed ? 1 : 0);
