// Query benchmark: 10 M requests over 24 h (50 routes, per-route log-normal latency, one bimodal route, ~1 % 5xx,
// ~3 % 4xx) generated inside the embedded engine, then the median latency of /api/v1/routes and
// /api/v1/timeseries for 15 m, 1 h and 24 h, answered from the rollups and from raw rows side by side.
// Standalone: `npx turbo run build && node test/bench/query.mjs [rows]`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClickHouse, migrate } from '@gatescope/clickhouse';
import { buildApp } from '@gatescope/api';

const TOTAL = Number(process.argv[2] ?? 10_000_000);
const CHUNK = 1_000_000;
const ROUTES = 50;
const RUNS = 11;
const H = 3_600_000;

const GENERATE = `
INSERT INTO gatescope.http_requests (start_time, duration_ms, response_code, response_flags, route_name, upstream_cluster,
  upstream_host, authority, method, path, path_template, downstream_remote_address, user_agent, request_id, bytes_sent,
  bytes_received, node_id, node_cluster)
SELECT
  fromUnixTimestamp64Micro(toInt64({start_ms:Int64} * 1000 + intDiv((n * 1000 + h3 % 1000) * {span_ms:Int64}, {total:UInt64}))) AS start_time,
  round(if(r = 7,
     if(h2 % 10 < 7, 1.0 * exp(0.3 * z), 200.0 * exp(0.25 * z)),
     (4 + (r % 10) * 6 + intDiv(r, 10) * 3) * exp(0.7 * z)), 3) AS duration_ms,
  multiIf(u < 10, 503, u < 12, 0, u < 40, 404, u < 50, 301, 200) AS response_code,
  multiIf(u < 7, ['UF'], u < 10, ['URX', 'UF'], u < 12, ['DC'], []) AS response_flags,
  concat('route-', leftPad(toString(r), 2, '0')) AS route_name,
  if(r = 0, if(h3 % 2 = 0, 'outbound|80||frontend.default.svc.cluster.local', 'outbound|80||frontendv2.default.svc.cluster.local'),
     concat('outbound|80||svc-', toString(r), '.default.svc.cluster.local')) AS upstream_cluster,
  concat('10.1.', toString(r), '.', toString(h3 % 4), ':8080') AS upstream_host,
  concat('app', toString(r % 5), '.example.com') AS authority,
  if(h2 % 10 < 8, 'GET', 'POST') AS method,
  concat('/api/r', toString(r), '/items/', toString(h3 % 500)) AS path,
  concat('/api/r', toString(r), '/items/{id}') AS path_template,
  concat('10.0.', toString(h1 % 256), '.', toString(h2 % 256)) AS downstream_remote_address,
  ['curl/8.5.0', 'Mozilla/5.0', 'okhttp/4.12'][h1 % 3 + 1] AS user_agent,
  lower(hex(h1)) AS request_id,
  200 + h2 % 5000 AS bytes_sent,
  h3 % 1000 AS bytes_received,
  concat('gw-', toString(n % 2)) AS node_id,
  'istio-ingressgateway' AS node_cluster
FROM (
  SELECT number + {offset:UInt64} AS n, cityHash64(n, 1) AS h1, cityHash64(n, 2) AS h2, cityHash64(n, 3) AS h3,
         cityHash64(n, 4) % 1000 AS u, toUInt32(floor(pow((h3 % 100000) / 100000.0, 2) * {routes:UInt32})) AS r,
         sqrt(-2 * log((h1 % 1000000 + 1) / 1000001.0)) * cos(2 * pi() * (cityHash64(n, 5) % 1000000) / 1000000.0) AS z
  FROM numbers({count:UInt64})
)`;

const dir = mkdtempSync(join(tmpdir(), 'gatescope-bench-query-'));
const ch = await createClickHouse({ database: 'gatescope', dataDir: dir });
let app;
try {
  await migrate(ch, { retentionDays: 30, rollupRetentionDays: 400 });
  const end = Date.now();
  const start = end - 24 * H;
  let t0 = performance.now();
  for (let offset = 0; offset < TOTAL; offset += CHUNK) {
    await ch.client.command({
      query: GENERATE,
      query_params: {
        start_ms: start,
        span_ms: 24 * H,
        total: TOTAL,
        offset,
        count: Math.min(CHUNK, TOTAL - offset),
        routes: ROUTES,
      },
    });
  }
  const genS = (performance.now() - t0) / 1000;
  console.log(
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
  console.log(`background merges settled after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const counts = await (
    await ch.client.query({
      query: `SELECT table, sum(rows) AS rows FROM system.parts WHERE database = 'gatescope' AND active AND table IN ('http_routes_1m', 'http_routes_1h', 'http_requests_1m', 'http_requests_1h') GROUP BY table ORDER BY table`,
      format: 'JSONEachRow',
    })
  ).json();
  console.log(
    'rollup rows:',
    counts.map((c) => `${c.table}=${Number(c.rows).toLocaleString('en')}`).join(', '),
  );

  const config = {
    dataDir: dir,
    host: '127.0.0.1',
    httpPort: 0,
    alsPort: 0,
    logLevel: 'silent',
    clickhouse: { username: 'default', password: '', database: 'gatescope' },
    retentionDays: 30,
    rollupRetentionDays: 400,
    ingest: { batchMaxRows: 1, batchMaxDelayMs: 1, maxPendingRows: 1, maxMessageBytes: 1, decoderWorkers: 0 },
    pathTemplates: { maxTemplatesPerRoute: 1 },
    auth: { tokens: [], allowUnauthenticated: false, rateLimitPerMinute: 1_000_000 },
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
  console.log(`\nmedian of ${RUNS} calls through app.inject (ms)`);
  console.log(
    `${pad('call', 16)}${lpad('rollup', 9)}  ${pad('(table)', 18)}${lpad('raw', 9)}${lpad('raw/rollup', 12)}${lpad('auto', 9)}  auto source`,
  );
  for (const r of rows) {
    console.log(
      `${pad(r.call, 16)}${lpad(r.rollupMs.toFixed(1), 9)}  ${pad(r.rollupTable, 18)}${lpad(r.rawMs.toFixed(1), 9)}${lpad(r.ratio.toFixed(1) + 'x', 12)}${lpad(r.autoMs.toFixed(1), 9)}  ${r.autoTable}`,
    );
  }
  const day = rows.filter((r) => r.call.endsWith('24h'));
  const ok = day.every((r) => r.ratio >= 10 && r.rollupMs < 50);
  console.log(
    `\ntarget (every 24 h call >= 10x faster from rollups and < 50 ms median): ${ok ? 'met' : 'NOT met'}`,
  );
} finally {
  await app?.close();
  await ch.close();
  rmSync(dir, { recursive: true, force: true });
}
