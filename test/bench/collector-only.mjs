// DIAGNOSTIC, not what users run (that is ingest.mjs: the all-in-one process): the collector alone in this
// process. A separate client process streams realistic pre-encoded ALS messages (100 entries each,
// 4 concurrent streams) over loopback into the collector on the embedded engine, as fast as it takes them.
// Prints end-to-end entries/s until every entry is counted in ClickHouse, CPU seconds per 100k entries,
// peak RSS, and - in the same run - the engine's own limit (INSERT … SELECT FROM file() of the same rows
// as JSONEachRow), with the ratio. The write-ahead log's cost: the same runs with it on (the default:
// fdatasync every group commit) and off (GATESCOPE_WAL_ENABLED=0: segments are spool files only), interleaved
// on the same engine, medians side by side.
import { fork } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HTTP_REQUEST_COLUMNS } from '@gatescope/als';
import { createClickHouse, migrate } from '@gatescope/clickhouse';
import { buildCollector } from '@gatescope/collector';
import { loadConfig } from '@gatescope/config';
import { Registry } from 'prom-client';
import { report } from './report.mjs';

const TOTAL = Number(process.env.BENCH_INGEST_ENTRIES ?? 400_000);
const STREAMS = 4;
const PER_MESSAGE = 100;

const dir = mkdtempSync(join(tmpdir(), 'gatescope-bench-ingest-'));
const config = loadConfig({
  ...process.env,
  GATESCOPE_DATA_DIR: dir,
  GATESCOPE_LOG_LEVEL: 'silent',
  CLICKHOUSE_URL: '',
});
const ch = await createClickHouse({ ...config.clickhouse, dataDir: dir });
await migrate(ch, { retentionDays: 30, rollupRetentionDays: 30 });
const registry = new Registry();
/** One collector per WAL mode, each with a WAL of its own, on the one engine (chdb: one per process). */
async function collectorFor(enabled) {
  const walDir = mkdtempSync(join(dir, `wal-${enabled ? 'on' : 'off'}-`));
  const c = await buildCollector({
    config: { ...config, dataDir: walDir, wal: { ...config.wal, enabled } },
    clickhouse: ch,
    registry: enabled ? registry : new Registry(),
  });
  return { collector: c, port: await c.listen('127.0.0.1', 0) };
}
const modes = { on: await collectorFor(true), off: await collectorFor(false) };
const count = async (table = 'http_requests') =>
  Number(
    (
      await (
        await ch.client.query({ query: `SELECT count() AS n FROM gatescope.${table}`, format: 'JSONEachRow' })
      ).json()
    )[0].n,
  );

/** CPU ticks per thread name (Linux /proc): where the process's CPU goes - event loop, decoder worker, engine threads. */
function threadTicks() {
  const byName = new Map();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/[0-9]+$/, '');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      byName.set(name, (byName.get(name) ?? 0) + Number(fields[11]) + Number(fields[12]));
    } catch {
      // the thread ended meanwhile
    }
  }
  return byName;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const RUNS = Number(process.env.BENCH_INGEST_RUNS ?? 3);

/** One end-to-end run: a fresh client process sends TOTAL entries; time until all are counted in ClickHouse. */
async function run(port) {
  const before = await count();
  const client = fork(
    fileURLToPath(new URL('./ingest-client.mjs', import.meta.url)),
    [port, TOTAL, STREAMS, PER_MESSAGE].map(String),
    { stdio: 'inherit' },
  );
  const fromClient = () => new Promise((r) => client.once('message', r));
  await fromClient(); // messages encoded, ready to go
  let peakRss = process.memoryUsage.rss();
  const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 50);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  client.send('go');
  const sentP = fromClient();
  let stored = 0;
  while ((stored = (await count()) - before) < TOTAL) await new Promise((r) => setTimeout(r, 100));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(rssTimer);
  const { sent } = await sentP;
  client.send('stop');
  await new Promise((r) => client.once('exit', r));
  return {
    sent,
    stored,
    seconds,
    rate: stored / seconds,
    cpuPer100k: ((cpu.user + cpu.system) / 1e6 / stored) * 100_000,
    peakRss,
  };
}
const ticks0 = threadTicks();
const runs = [];
const offRuns = [];
// Interleaved, so that both modes see the same machine noise and the same table sizes.
for (let i = 0; i < RUNS; i++) {
  runs.push(await run(modes.on.port));
  offRuns.push(await run(modes.off.port));
}
const ticks1 = threadTicks();
const offE2e = median(offRuns.map((r) => r.rate));
const stored = [...runs, ...offRuns].reduce((a, r) => a + r.stored, 0);
const sent = [...runs, ...offRuns].reduce((a, r) => a + r.sent, 0);
const e2e = median(runs.map((r) => r.rate));
const cpuPer100k = median(runs.map((r) => r.cpuPer100k));
const peakRss = Math.max(...runs.map((r) => r.peakRss));

// The engine's own limit on the same rows: JSONEachRow file -> INSERT … SELECT FROM file().
const file = join(dir, 'baseline.jsonl');
const cols = HTTP_REQUEST_COLUMNS.map((c) => c.name).join(', ');
await ch.client.command({
  query: `SELECT ${cols} FROM gatescope.http_requests LIMIT ${TOTAL} INTO OUTFILE '${file}' FORMAT JSONEachRow`,
});
await ch.client.command({
  query: 'CREATE TABLE gatescope.http_requests_baseline AS gatescope.http_requests',
});
const engineRuns = [];
for (let i = 0; i < 3; i++) {
  await ch.client.command({ query: 'TRUNCATE TABLE gatescope.http_requests_baseline' });
  const t = performance.now();
  await ch.client.command({
    query: `INSERT INTO gatescope.http_requests_baseline (${cols}) SELECT ${cols} FROM file('${file}', 'JSONEachRow')`,
  });
  engineRuns.push(TOTAL / ((performance.now() - t) / 1000));
  if ((await count('http_requests_baseline')) !== TOTAL) throw new Error('baseline row count mismatch');
}
const engine = median(engineRuns);

const fmt = (x) => Math.round(x).toLocaleString('en-US');
report(
  `\ncollector-only diagnostic, not the product (${STREAMS} streams x ${PER_MESSAGE} entries/message, ${fmt(stored)} entries in all, embedded engine, ${config.ingest.decoderWorkers} decoder threads)`,
);
report(`  sent by client           ${fmt(sent)} entries`);
report(`  stored (count in CH)     ${fmt(stored)} entries, lost ${fmt(sent - stored)}`);
report(
  `  end to end               ${fmt(e2e)} entries/s median of ${RUNS} runs of ${fmt(TOTAL)} (${runs.map((r) => fmt(r.rate)).join(', ')}), timed until the last entry was counted; WAL on (default, fdatasync every ${config.wal.syncIntervalMs} ms)`,
);
report(
  `  WAL off                  ${fmt(offE2e)} entries/s median of ${RUNS} runs (${offRuns.map((r) => fmt(r.rate)).join(', ')}), interleaved with the runs above`,
);
report(
  `  WAL cost                 on / off = ${(e2e / offE2e).toFixed(2)} (target >= 0.90); CPU ${cpuPer100k.toFixed(2)} vs ${median(offRuns.map((r) => r.cpuPer100k)).toFixed(2)} CPU-s per 100k (whole process, medians)`,
);
report(
  `  CPU                      ${cpuPer100k.toFixed(2)} CPU-s per 100k entries (whole gatescope process)`,
);
report(`  peak RSS                 ${(peakRss / 2 ** 20).toFixed(0)} MiB`);
const insertHist = (await registry.getMetricsAsJSON()).find(
  (m) => m.name === 'gatescope_clickhouse_insert_duration_seconds',
);
const commitHist = (await registry.getMetricsAsJSON()).find(
  (m) => m.name === 'gatescope_wal_commit_duration_seconds',
);
const commitSum = commitHist.values.find((v) => v.metricName?.endsWith('_sum'))?.value ?? 0;
const commitCount = commitHist.values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
const insSum = insertHist.values.find((v) => v.metricName?.endsWith('_sum'))?.value ?? 0;
const insCount = insertHist.values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
report(
  `  inserts (WAL on)         ${insCount} batches, ${fmt(runs.reduce((a, r) => a + r.stored, 0) / insCount)} rows each on average, ${insSum.toFixed(1)} s inside ClickHouse inserts; ${commitCount} group commits, ${((commitSum / Math.max(1, commitCount)) * 1000).toFixed(1)} ms each on average (write + fdatasync)`,
);
const threads = [...ticks1]
  .map(([name, t]) => [name, (t - (ticks0.get(name) ?? 0)) / 100])
  .filter(([, cpu]) => cpu > 0.05)
  .sort((a, b) => b[1] - a[1]);
report(
  `  CPU by thread (s/100k)   ${threads
    .slice(0, 8)
    .map(([name, cpu]) => `${name} ${((cpu / stored) * 100_000).toFixed(2)}`)
    .join(', ')}`,
);
report(
  `  engine limit             ${fmt(engine)} rows/s  (INSERT … SELECT FROM file() of ${fmt(TOTAL)} JSONEachRow rows, median of 3)`,
);
report(`  ratio e2e / engine       ${(e2e / engine).toFixed(2)}   (target >= 0.35; e2e target >= 50,000/s)`);

await modes.on.collector.close();
await modes.off.collector.close();
await ch.close();
rmSync(dir, { recursive: true, force: true });
