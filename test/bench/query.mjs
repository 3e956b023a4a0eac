// Query benchmark: 10 M requests over 24 h (50 routes, per-route log-normal latency, one bimodal route, ~1 % 5xx,
// ~3 % 4xx) generated inside the embedded engine, then the median latency of /api/v1/routes and
// /api/v1/timeseries for 15 m, 1 h and 24 h, answered from the rollups and from raw rows side by side; then where a
// call's time goes: the engine's floor (SELECT 1 on the reader connection), the engine running the very statement
// the API runs (the baseline), and gatescope's own per-call overhead (parsing, planning, limits, JSON, fastify,
// serialisation) as the difference, measured interleaved in the same run; and the 24 h statements against the same
// unfiltered statements read from the per-route hourly rollup (what they were before the totals of migration 0006);
// and window statements read from tiers (migration 0008: whole hourly / 10-minute blocks plus finer edges) against
// the same statements on their finest table alone (the plan before tiers), identical answers checked; and window
// answers (routes, split, summary) from the reader's bucket caches against their statements, identical answers checked.
// Standalone: `npx turbo run build && node test/bench/query.mjs [rows]`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClickHouse, migrate, readJson } from '@gatescope/clickhouse';
import {
  autoStep,
  clusterStats,
  parseMetrics,
  QueryReader,
  routeStats,
  routesQuery,
  summaryQuery,
  timeseriesQuery,
  windowStats,
  withLimits,
} from '@gatescope/query';
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
      query: `SELECT table, sum(rows) AS rows FROM system.parts WHERE database = 'gatescope' AND active AND match(table, '^http_\\w+_\\d+[mh]$') GROUP BY table ORDER BY table`,
      format: 'JSONEachRow',
    })
  ).json();
  report('rollup rows:', counts.map((c) => `${c.table}=${Number(c.rows).toLocaleString('en')}`).join(', '));

  const defaults = loadConfig({});
  // The documented defaults (every section the app reads), with the engine's data dir and generous query time.
  const config = {
    ...defaults,
    dataDir: dir,
    logLevel: 'silent',
    clickhouse: {
      ...defaults.clickhouse,
      username: 'default',
      password: '',
      database: 'gatescope',
      roles: {},
    },
    query: { ...defaults.query, limits: { ...defaults.query.limits, maxExecutionTimeS: 60 } },
    retentionDays: 30,
    rollupRetentionDays: 400,
    auth: { ...defaults.auth, tokens: [], allowUnauthenticated: false, rateLimitPerMinute: 1_000_000 },
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

  // Where a call's time goes. The statement is built and planned exactly as the API does (packages/query), then
  // timed on the engine directly (readJson on the reader connection), interleaved with the API call.
  const reader = new QueryReader({ clickhouse: ch, limits: config.query.limits, now: () => end });
  // `hourlyOnly`: the same question from the per-route http_routes_1h, as the planner answered it before migration 0006.
  const statement = async (kind, range, mode, hourlyOnly = false) => {
    const r = { from: end - range, to: end };
    const step_s = autoStep(r, 0);
    const planned = await reader.plan({
      range: r,
      filters: {},
      mode,
      ...(kind === 'timeseries' ? { step_s } : {}),
      ...(kind === 'routes' ? { groupBy: ['route'] } : {}),
    });
    const source =
      hourlyOnly && planned.granularity_s === 3600
        ? { ...planned, kind: 'routes', table: 'http_routes_1h' }
        : planned;
    const q =
      kind === 'summary'
        ? summaryQuery('gatescope', source, {})
        : kind === 'routes'
          ? routesQuery('gatescope', source, {}, { sort: 'requests', order: 'desc', limit: 100 })
          : timeseriesQuery(
              'gatescope',
              source,
              {},
              {
                step_s,
                withQuantiles: parseMetrics(undefined).some((m) => m.startsWith('p')),
              },
            );
    return withLimits(q, config.query.limits);
  };
  const engine = (q) => readJson(ch.reader, q);
  async function split(label, url, kind, range, mode) {
    const q = await statement(kind, range, mode);
    for (let i = 0; i < 3; i++) {
      await app.inject(url);
      await engine(q);
    }
    const api = [];
    const eng = [];
    const floor = [];
    for (let i = 0; i < 3 * RUNS; i++) {
      let t = performance.now();
      const res = await app.inject(url);
      api.push(performance.now() - t);
      if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body}`);
      t = performance.now();
      await engine(q);
      eng.push(performance.now() - t);
      t = performance.now();
      await engine({ query: 'SELECT 1' });
      floor.push(performance.now() - t);
    }
    const med = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
    const a = med(api);
    const e = med(eng);
    return { label, api: a, engine: e, floor: med(floor), overhead: a - e };
  }
  const H24 = 24 * H;
  const M15 = 15 * 60_000;
  const parts = [
    await split('summary 15m raw', '/api/v1/summary?range=15m&source=raw', 'summary', M15, 'raw'),
    await split('routes 15m raw', '/api/v1/routes?range=15m&source=raw', 'routes', M15, 'raw'),
    await split('routes 24h auto', '/api/v1/routes?range=24h', 'routes', H24, 'auto'),
    await split('timeseries 24h auto', '/api/v1/timeseries?range=24h', 'timeseries', H24, 'auto'),
  ];
  report(`\nwhere the time goes: median of ${3 * RUNS} calls each, API and engine interleaved (ms)`);
  report(
    `${pad('call', 22)}${lpad('API', 8)}${lpad('engine', 9)}${lpad('SELECT 1', 10)}${lpad('overhead', 10)}${lpad('overhead/API', 14)}`,
  );
  for (const r of parts) {
    report(
      `${pad(r.label, 22)}${lpad(r.api.toFixed(1), 8)}${lpad(r.engine.toFixed(1), 9)}${lpad(r.floor.toFixed(1), 10)}${lpad(r.overhead.toFixed(1), 10)}${lpad((r.overhead / r.api).toFixed(2), 14)}`,
    );
  }
  // The unfiltered 24 h statements as they are now (hourly totals) and from the per-route hourly rollup, interleaved.
  const before = [];
  for (const kind of ['summary', 'timeseries']) {
    const now = await statement(kind, H24, 'auto');
    const old = await statement(kind, H24, 'auto', true);
    const [a, b] = [await engine(now), await engine(old)];
    if (JSON.stringify(a.data) !== JSON.stringify(b.data))
      throw new Error(`${kind} 24h: the hourly totals answered differently from the per-route hourly rollup`);
    const tNow = [];
    const tOld = [];
    for (let i = 0; i < 3 * RUNS; i++) {
      let t = performance.now();
      await engine(now);
      tNow.push(performance.now() - t);
      t = performance.now();
      await engine(old);
      tOld.push(performance.now() - t);
    }
    const med = (xs) => xs.sort((x, y) => x - y)[xs.length >> 1];
    before.push({
      kind,
      now: med(tNow),
      old: med(tOld),
      rows: a.statistics?.rows_read,
      oldRows: b.statistics?.rows_read,
    });
  }
  report(
    `\nunfiltered 24 h statements on the engine, http_totals_1h vs http_routes_1h (identical answers; median of ${3 * RUNS}, ms)`,
  );
  report(
    `${pad('statement', 22)}${lpad('now', 8)}${lpad('rows read', 11)}${lpad('hourly', 9)}${lpad('rows read', 11)}${lpad('ratio', 8)}`,
  );
  for (const b of before)
    report(
      `${pad(b.kind + ' 24h', 22)}${lpad(b.now.toFixed(1), 8)}${lpad(b.rows, 11)}${lpad(b.old.toFixed(1), 9)}${lpad(b.oldRows, 11)}${lpad((b.old / b.now).toFixed(1) + 'x', 8)}`,
    );

  // Codecs of the hot columns (migration 0007): the 15-minute raw summary over two copies of the same rows (the
  // last two hours, each copy written by one INSERT), one with today's LZ4, one with the ZSTD(1) it replaced.
  const copies = { lz4: 'bench_codec_lz4', zstd: 'bench_codec_zstd' };
  for (const [codec, table] of Object.entries(copies)) {
    await ch.client.command({ query: `CREATE TABLE gatescope.${table} AS gatescope.http_requests` });
    if (codec === 'zstd')
      await ch.client.command({
        query: `ALTER TABLE gatescope.${table} MODIFY COLUMN start_time CODEC(Delta, ZSTD(1)), MODIFY COLUMN duration_ms CODEC(ZSTD(1))`,
      });
    await ch.client.command({
      query: `INSERT INTO gatescope.${table} SELECT * FROM gatescope.http_requests WHERE start_time >= fromUnixTimestamp64Milli(${end - 2 * H}, 'UTC')`,
    });
  }
  const summary15 = await statement('summary', M15, 'raw');
  const onCopy = (table) => ({
    ...summary15,
    query: summary15.query.replace('gatescope.http_requests', `gatescope.${table}`),
  });
  const [lz4Answer, zstdAnswer] = [await engine(onCopy(copies.lz4)), await engine(onCopy(copies.zstd))];
  if (JSON.stringify(lz4Answer.data) !== JSON.stringify(zstdAnswer.data))
    throw new Error('the two codec copies answered differently');
  const codecTimes = { lz4: [], zstd: [] };
  for (let i = 0; i < 3 * RUNS; i++)
    for (const [codec, table] of Object.entries(copies)) {
      const t = performance.now();
      await engine(onCopy(table));
      codecTimes[codec].push(performance.now() - t);
    }
  const codecMed = (xs) => xs.sort((x, y) => x - y)[xs.length >> 1];
  const [lz4Ms, zstdMs] = [codecMed(codecTimes.lz4), codecMed(codecTimes.zstd)];
  report(
    `\n15 m raw summary on the engine, start_time/duration_ms with LZ4 (now) vs ZSTD(1) (before 0007), same rows ` +
      `(median of ${3 * RUNS}): ${lz4Ms.toFixed(1)} vs ${zstdMs.toFixed(1)} ms, ${(zstdMs / lz4Ms).toFixed(2)}x`,
  );
  for (const table of Object.values(copies))
    await ch.client.command({ query: `DROP TABLE gatescope.${table}` });

  // Tiered reads (migration 0008, plan.ts tierParts) against the same question read from its one finest table (the
  // plan before tiers), on the engine, interleaved; the answers must be identical.
  const tierRows = [];
  for (const [label, kind, range, filters] of [
    ['routes 24h', 'routes', H24, {}],
    ['routes 6h', 'routes', 6 * H, {}],
    ['routes 1h', 'routes', H, {}],
    ['routes 1h method=GET', 'routes', H, { method: ['GET'] }],
    ['summary 3h method=GET', 'summary', 3 * H, { method: ['GET'] }],
  ]) {
    const r = { from: end - range, to: end };
    const tiered = await reader.plan({
      range: r,
      filters,
      mode: 'rollup',
      ...(kind === 'routes' ? { groupBy: ['route'] } : {}),
    });
    const single = { ...tiered, parts: undefined };
    const build = (source) =>
      withLimits(
        kind === 'routes'
          ? routesQuery('gatescope', source, filters, { sort: 'requests', order: 'desc', limit: 100 })
          : summaryQuery('gatescope', source, filters),
        config.query.limits,
      );
    const [qt, qs] = [build(tiered), build(single)];
    const [a, b] = [await engine(qt), await engine(qs)];
    if (JSON.stringify(a.data) !== JSON.stringify(b.data))
      throw new Error(`${label}: the tiered read answered differently from ${single.table} alone`);
    const tT = [];
    const tS = [];
    for (let i = 0; i < 3 * RUNS; i++) {
      let t = performance.now();
      await engine(qt);
      tT.push(performance.now() - t);
      t = performance.now();
      await engine(qs);
      tS.push(performance.now() - t);
    }
    const med = (xs) => xs.sort((x, y) => x - y)[xs.length >> 1];
    tierRows.push({
      label,
      tiers: [...new Set((tiered.parts ?? [single]).map((p) => p.table))].join('+'),
      tiered: med(tT),
      single: med(tS),
      rows: a.statistics?.rows_read,
      singleRows: b.statistics?.rows_read,
      table: single.table,
    });
  }
  report(`\ntiered reads vs the finest table alone (identical answers; engine, median of ${3 * RUNS}, ms)`);
  report(
    `${pad('statement', 24)}${lpad('tiered', 8)}${lpad('rows read', 11)}  ${pad('(tiers)', 34)}${lpad('single', 8)}${lpad('rows read', 11)}${lpad('ratio', 8)}`,
  );
  for (const t of tierRows)
    report(
      `${pad(t.label, 24)}${lpad(t.tiered.toFixed(1), 8)}${lpad(t.rows, 11)}  ${pad(t.tiers, 34)}${lpad(t.single.toFixed(1), 8)}${lpad(t.singleRows, 11)}${lpad((t.single / t.tiered).toFixed(2) + 'x', 8)}`,
    );

  // Window answers from the reader's bucket caches (the API's default for windows filtered beyond route and upstream
  // cluster) against the same answers from their statements (a reader with `windowCache: false`), interleaved,
  // identical answers checked. The clock is pinned, so
  // a cached call reads what a live one does: the probe and the newest two buckets (their traffic changes).
  const plain = new QueryReader({
    clickhouse: ch,
    limits: config.query.limits,
    now: () => end,
    windowCache: false,
  });
  const cachedReader = new QueryReader({ clickhouse: ch, limits: config.query.limits, now: () => end });
  const cacheRows = [];
  for (const [label, answer, range, filters] of [
    ['routes 24h method=GET', routeStats, H24, { method: ['GET'] }],
    ['summary 24h authority', windowStats, H24, { authority: ['app1.example.com'] }],
    ['split 24h method=GET', clusterStats, H24, { method: ['GET'] }],
    ['routes 1h method=GET', routeStats, H, { method: ['GET'] }],
    ['summary 3h method=GET', windowStats, 3 * H, { method: ['GET'] }],
  ]) {
    const q = { range: { from: end - range, to: end }, filters, mode: 'rollup' };
    // Admitted on its second ask, filled in the background meanwhile (the asks answered by the statement).
    await answer(cachedReader, q);
    await answer(cachedReader, q);
    let t = performance.now();
    await cachedReader.windowFills();
    const fillMs = performance.now() - t;
    const first = await answer(cachedReader, q);
    if (JSON.stringify(first) !== JSON.stringify(await answer(plain, q)))
      throw new Error(`${label}: the cached answer differs from the statement's`);
    const tC = [];
    const tS = [];
    for (let i = 0; i < 3 * RUNS; i++) {
      t = performance.now();
      await answer(cachedReader, q);
      tC.push(performance.now() - t);
      t = performance.now();
      await answer(plain, q);
      tS.push(performance.now() - t);
    }
    const med = (xs) => xs.sort((x, y) => x - y)[xs.length >> 1];
    cacheRows.push({ label, fillMs, cached: med(tC), statement: med(tS) });
    if (cachedReader.windowCacheSize().groups !== cacheRows.length)
      throw new Error(`${label}: the window was not cached`);
  }
  report(`
window answers, bucket cache vs statement (identical answers; median of ${3 * RUNS}, ms)`);
  report(
    `${pad('answer', 24)}${lpad('cache', 8)}${lpad('statement', 11)}${lpad('ratio', 8)}${lpad('fill (background)', 19)}`,
  );
  for (const c of cacheRows)
    report(
      `${pad(c.label, 24)}${lpad(c.cached.toFixed(1), 8)}${lpad(c.statement.toFixed(1), 11)}${lpad((c.statement / c.cached).toFixed(2) + 'x', 8)}${lpad(c.fillMs.toFixed(1), 19)}`,
    );

  const overhead = parts.map((r) => r.overhead).sort((a, b) => a - b)[parts.length >> 1];
  const raw15 = parts[0].api;
  const day24 = Math.max(parts[2].api, parts[3].api);
  report(
    `\ntargets: per-call overhead ${overhead.toFixed(1)} ms (<= 3: ${overhead <= 3 ? 'met' : 'NOT met'}), ` +
      `15 m raw ${raw15.toFixed(1)} ms (<= 15: ${raw15 <= 15 ? 'met' : 'NOT met'}), ` +
      `24 h routes/timeseries ${day24.toFixed(1)} ms (<= 15: ${day24 <= 15 ? 'met' : 'NOT met'})`,
  );
} finally {
  await app?.close();
  await ch.close();
  rmSync(dir, { recursive: true, force: true });
}
