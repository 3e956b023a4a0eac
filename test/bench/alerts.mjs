// Alert evaluation benchmark: 50 rules grouped by route over 50 routes, evaluated by the real evaluator on the
// embedded engine, against 1 h of traffic at RPS requests/s (default 1,000: 300k raw rows in a 5-minute window),
// read from the rollups as the evaluator does (services/alerts `alertSource`).
// The rules mix every metric kind, four windows (1m, 5m, 15m, 1h) and two filter sets, so the cycle asks
// several distinct questions; the evaluator asks them in one statement (@gatescope/query seriesStatsQuery).
// Beside it, the same questions asked one statement per rule (what a naive evaluator does), in the same run.
// Standalone: `npx turbo run build && node test/bench/alerts.mjs [rps]`.
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { AlertStore, parseRule } from '@gatescope/alerts';
import { alertSource, Evaluator } from '@gatescope/alerts-service';
import { createClickHouse, migrate, readJson } from '@gatescope/clickhouse';
import { loadConfig } from '@gatescope/config';
import { seriesStatsQuery, withLimits } from '@gatescope/query';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { generate } from '../fixtures/generated-traffic.mjs';
import { report } from './report.mjs';

const RPS = Number(process.argv[2] ?? 1_000);
const ROUTES = 50;
const RULES = 50;
const RUNS = 11;
const H = 3_600_000;

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const dir = mkdtempSync(join(tmpdir(), 'gatescope-bench-alerts-'));
const ch = await createClickHouse({ database: 'gatescope', dataDir: dir });
let evaluator;
try {
  await migrate(ch, { retentionDays: 30, rollupRetentionDays: 400 });
  const now = Date.now();
  const total = RPS * 3600;
  await generate(ch, { startMs: now - H, spanMs: H, total, routes: ROUTES });
  report(
    `traffic: ${total.toLocaleString('en')} rows over the last hour (${RPS} requests/s), ${ROUTES} routes`,
  );

  const metrics = [
    'error_rate',
    'p99_ms',
    'p50_ms',
    'p90_ms',
    'rps',
    'requests',
    'flag:UF',
    'class:5xx',
    'class:4xx',
    'p95_ms',
  ];
  const windows = ['1m', '5m', '15m', '1h'];
  const filters = [{}, { method: 'GET' }];
  const rules = [];
  for (let i = 0; i < RULES; i++) {
    rules.push(
      parseRule({
        name: `bench-${i}`,
        metric: metrics[i % metrics.length],
        filter: filters[Math.floor(i / 25)],
        group_by: ['route'],
        op: '>',
        threshold: 1e12, // never fires: the cost measured is evaluation, not delivery
        window: windows[i % windows.length],
        min_requests: 20,
      }).rule,
    );
  }
  const store = new AlertStore(ch);
  await store.putRules(rules, 'api');
  const config = loadConfig({ GATESCOPE_DATA_DIR: dir });
  evaluator = new Evaluator({
    config,
    clickhouse: ch,
    registry: new Registry(),
    logger: pino({ level: 'silent' }),
  });

  const cycles = [];
  const queries = [];
  let series = 0;
  await evaluator.evaluate(); // warm-up (lease, caches)
  for (let i = 0; i < RUNS; i++) {
    const s = await evaluator.evaluate();
    cycles.push(s.totalMs);
    queries.push(s.queryMs);
    series = s.series;
  }
  const compiled = rules.map((r) => parseRule(r));
  const distinct = new Set(
    compiled.map((r) => JSON.stringify([r.windowMs, r.filters, r.groupBy, r.metric.responseFlag ?? null])),
  ).size;

  // The same rules, one statement each.
  const perRule = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const at = Date.now();
    for (const r of compiled) {
      const q = {
        range: { from: at - r.windowMs, to: at },
        filters: r.filters,
        groupBy: r.groupBy,
        ...(r.metric.responseFlag ? { responseFlag: r.metric.responseFlag } : {}),
      };
      await readJson(
        ch.reader,
        withLimits(seriesStatsQuery(ch.database, [{ ...q, source: alertSource(q) }]), config.query.limits),
      );
    }
    perRule.push(performance.now() - t0);
  }
  // The engine's per-call floor in this run, for scale (a loaded machine raises every figure alike).
  const floor = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await readJson(ch.reader, { query: 'SELECT 1 AS one' });
    floor.push(performance.now() - t0);
  }
  report(
    `engine per-call floor (SELECT 1): median ${median(floor).toFixed(1)} ms; load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} on ${availableParallelism()} CPUs`,
  );
  const cycle = median(cycles);
  report(
    `${RULES} rules (${distinct} distinct questions: windows ${windows.join('/')}, ${filters.length} filter sets), group_by route, ${series} series per cycle`,
  );
  report(
    `evaluation cycle (whole: lease check, rules, one statement, states, persistence): median ${cycle.toFixed(1)} ms over ${RUNS} cycles (target < 100 ms)`,
  );
  report(`  of which the values' statement: median ${median(queries).toFixed(1)} ms`);
  report(
    `same questions one statement per rule: median ${median(perRule).toFixed(1)} ms over 5 rounds; one statement is ${(median(perRule) / median(queries)).toFixed(1)}x faster`,
  );
} finally {
  await evaluator?.close();
  await ch.close();
  rmSync(dir, { recursive: true, force: true });
}
