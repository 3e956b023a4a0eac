// Query benchmark: 10 M requests over 24 h (50 routes, per-route log-normal latency, one bimodal route, ~1 % 5xx,
// ~3 % 4xx) generated inside the embedded engine, then the median latency of /api/v1/routes and
// /api/v1/timeseries for 15 m, 1 h and 24 h, answered from the rollups and from raw rows side by side.
// Standalone: `npx turbo run build && node test/bench/query.mjs [rows]`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClickHouse, migrate } from '@gatescope/clickhouse';
import { buildApp } from '@gatescope/api';
import { loadConfig } from '@gatescope/config';
import { generate } from '../fixtures/generated-traffic.mjs';
import { report } from './report.mjs';

const TOTAL = Number(process.argv[2] ?? 10_000_000);
const CHUNK = 1_000_000;
const ROUTES = 50;
const RUNS = 11;
const H = 3_600_000;

const dir = mkdtempSync(join(tmpdir(), 'gatescope-bench-query-'));
const ch = await createClickHouse({ database: 'gatescope', dataDir: dir });
let app;
try {
  await migrate(ch, { retentionDays: 30, rollupRetentionDays: 400 });
  const end = Date.now();
  const start = end - 24 * H;
  let t0 = performance.now();
  await generate(ch, {
    startMs: start,
    spanMs: 24 * H,
    total: TOTAL,
    routes: ROUTES,
    chunk: CHUNK,
    canary: true,
  });
  const genS = (performance.now() - t0) / 1000;
  report(
    `generated ${TOTAL.toLocaleString('en')} rows over 24 h (${ROUTES} routes) in ${genS.toFixed(1)} s (${Math.round(TOTAL / genS).toLocaleString('en')} rows/s incl. rollup views)`,
  );
  // Measure the steady state: let the background merges of the fresh parts finish (bounded wait).
  t0 = performance.now();
  for (;;) {
    const [{ n }] = await (
      await ch.client.query({
        query: `SELECT count() AS n FROM system.merges WHERE database = 'gatescope'`,
        format: 'JSONEachRow',
      })
    ).json();
    if (Number(n) === 0 || performance.now() - t0 > 120_000) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  report(`background merges settled after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const counts = await (
    await ch.client.query({
      query: `SELECT table, sum(rows) AS rows FROM system.parts WHERE database = 'gatescope' AND active AND table IN ('http_routes_1m', 'http_routes_1h', 'http_requests_1m', 'http_requests_1h') GROUP BY table ORDER BY table`,
      format: 'JSONEachRow',
    })
  ).json();
  report('rollup rows:', counts.map((c) => `${c.table}=${Number(c.rows).toLocaleString('en')}`).join(', '));

  const defaults = loadConfig({});
  const config = {
    dataDir: dir,
    host: '127.0.0.1',
    httpPort: 0,
    alsPort: 0,
    logLevel: 'silent',
    clickhouse: { username: 'default', password: '', database: 'gatescope', roles: {} },
    query: { limits: { ...defaults.query.limits, maxExecutionTimeS: 60 } },
    sql: defaults.sql,
    retentionDays: 30,
    rollupRetentionDays: 400,
    ingest: { batchMaxRows: 1, batchMaxDelayMs: 1, maxPendingRows: 1, maxMessageBytes: 1, decoderWorkers: 0 },
    pathTemplates: { maxTemplatesPerRoute: 1 },
    auth: { tokens: [], allowUnauthenticated: false, rateLimitPerMinute: 1_000_000 },
    http: { allowedHosts: [], metricsPublic: false },
    live: { windowSeconds: 60, tickMs: 1000 },
    health: { degradedErrorRate: 0.001, failingErrorRate: 0.1 },
  };
  app = await buildApp({ config, clickhouse: ch, logger: false, now: () => end });
  await app.ready();

  async function median(url) {
    let body;
    for (let i = 0; i < 2; i++) await app.inject(url); // warm-up
    const times = [];
    for (let i = 0; i < RUNS; i++) {
      const t = performance.now();
      const res = await app.inject(url);
      times.push(performance.now() - t);
      if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body}`);
      body = res.json();
    }
    times.sort((a, b) => a - b);
    return { ms: times[Math.floor(RUNS / 2)], body };
  }

  const rows = [];
  for (const [range, step] of [
    ['15m', '1m'],
    ['1h', '1m'],
    ['24h', '1h'],
  ]) {
    for (const [endpoint, query] of [
      ['/api/v1/routes', `range=${range}`],
      ['/api/v1/timeseries', `range=${range}&step=${step}&metrics=rps,error_rate,p50_ms,p99_ms`],
    ]) {
      const rollup = await median(`${endpoint}?${query}&source=rollup`);
      const raw = await median(`${endpoint}?${query}&source=raw`);
      const auto = await median(`${endpoint}?${query}`);
      rows.push({
        call: `${endpoint.replace('/api/v1/', '')} ${range}`,
        rollupMs: rollup.ms,
        rollupTable: rollup.body.source.table,
        rawMs: raw.ms,
        ratio: raw.ms / rollup.ms,
        autoMs: auto.ms,
        autoTable: auto.body.source.table,
      });
    }
  }
  const pad = (s, n) => String(s).padEnd(n);
  const lpad = (s, n) => String(s).padStart(n);
  report(`\nmedian of ${RUNS} calls through app.inject (ms)`);
  report(
    `${pad('call', 16)}${lpad('rollup', 9)}  ${pad('(table)', 18)}${lpad('raw', 9)}${lpad('raw/rollup', 12)}${lpad('auto', 9)}  auto source`,
  );
  for (const r of rows) {
    report(
      `${pad(r.call, 16)}${lpad(r.rollupMs.toFixed(1), 9)}  ${pad(r.rollupTable, 18)}${lpad(r.rawMs.toFixed(1), 9)}${lpad(r.ratio.toFixed(1) + 'x', 12)}${lpad(r.autoMs.toFixed(1), 9)}  ${r.autoTable}`,
    );
  }
  const day = rows.filter((r) => r.call.endsWith('24h'));
  const ok = day.every((r) => r.ratio >= 10 && r.rollupMs < 50);
  report(
    `\ntarget (every 24 h call >= 10x faster from rollups and < 50 ms median): ${ok ? 'met' : 'NOT met'}`,
  );
} finally {
  await app?.close();
  await ch.close();
  rmSync(dir, { recursive: true, force: true });
}
