// Alert evaluation benchmark: 50 rules grouped by route over 50 routes, evaluated by the real evaluator on the
// embedded engine, against 2 h of traffic at RPS requests/s (default 1,000: 300k raw rows in a 5-minute window),
// read from the rollups as the evaluator does (services/alerts `alertSource`).
// The cycles run at clock times spread over the last hour (every 60/RUNS minutes): where a window falls against
// the 10-minute and hourly tiers changes what it reads, and an evaluator meets every position, so the median is
// over positions, not one lucky or unlucky one.
// The rules mix every metric kind, four windows (1m, 5m, 15m, 1h) and two filter sets, so the cycle asks
// several distinct questions; the evaluator asks them in one statement (@gatescope/query seriesStatsQuery: one
// scan per source table).
// Side by side in the same run, interleaved with the cycles: the previous design's statement (one UNION ALL branch
// per question, each scanning its window), and the same questions asked one statement per rule. Beside wall time,
// CPU time of this process (the embedded engine runs in it), which a machine shared with other work inflates less.
// Standalone: `npx turbo run build && node test/bench/alerts.mjs [rps]`.
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { AlertStore, parseRule } from '@gatescope/alerts';
import { alertSource, Evaluator, trafficQuestions } from '@gatescope/alerts-service';
import { createClickHouse, migrate, readJson } from '@gatescope/clickhouse';
import { loadConfig } from '@gatescope/config';
import { DIMENSION_COLUMNS, seriesStatsQuery, statsColumns, whereClause, withLimits } from '@gatescope/query';
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

/** Wall and CPU milliseconds of `fn` (CPU: every thread of this process, the embedded engine's included). */
async function measure(fn) {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const out = await fn();
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { out, wall, cpu: (cpu.user + cpu.system) / 1000 };
}

/**
 * The statement of the previous design, kept here as the baseline: one UNION ALL branch per question, each
 * scanning its own window of its table (same planning, stats columns and quantiles as the API).
 */
function perQuestionBranches(database, questions) {
  const parts = [];
  const params = {};
  questions.forEach((q, i) => {
    const cols = q.groupBy.map((d) => `toString(${DIMENSION_COLUMNS[d]})`);
    const raw = q.source.kind === 'raw';
    const flagged = q.responseFlag
      ? raw
        ? 'toUInt64(countIf(has(response_flags, {flag:String})))'
        : 'toUInt64(sumIf(src.requests, has(response_flags, {flag:String})))'
      : 'toUInt64(0)';
    const where = whereClause(q.source, q.filters);
    const text =
      `SELECT toUInt32(${i}) AS question, ${cols.length ? `[${cols.join(', ')}]` : "CAST([], 'Array(String)')"} AS series, ` +
      `${statsColumns(q.source)}, ${flagged} AS flagged FROM ${database}.${q.source.table} AS src WHERE ${where.query}` +
      (cols.length ? ' GROUP BY series' : '');
    parts.push(text.replace(/\{([A-Za-z_][A-Za-z0-9_]*):/g, `{q${i}_$1:`));
    for (const [k, v] of Object.entries({
      ...where.params,
      ...(q.responseFlag ? { flag: q.responseFlag } : {}),
    }))
      params[`q${i}_${k}`] = v;
  });
  return { query: parts.join('\nUNION ALL\n'), params };
}
const dir = mkdtempSync(join(tmpdir(), 'gatescope-bench-alerts-'));
const ch = await createClickHouse({ database: 'gatescope', dataDir: dir });
let evaluator;
try {
  await migrate(ch, { retentionDays: 30, rollupRetentionDays: 400 });
  const end = Date.now();
  const total = RPS * 7200;
  await generate(ch, { startMs: end - 2 * H, spanMs: 2 * H, total, routes: ROUTES });
  report(
    `traffic: ${total.toLocaleString('en')} rows over the last 2 hours (${RPS} requests/s), ${ROUTES} routes`,
  );
  // The evaluator's clock: cycle i runs at end - i·60/RUNS minutes.
  let clock = end;

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
    now: () => clock,
  });

  const compiled = rules.map((r) => parseRule(r));
  const questionsAt = (at) => trafficQuestions(compiled, at).questions;
  const run = (built) => readJson(ch.reader, withLimits(built, config.query.limits));

  const cycles = [];
  const cycleCpu = [];
  const queries = [];
  const oneScan = [];
  const branches = [];
  const untiered = [];
  let series = 0;
  // The same questions without tiers (migration 0008): each read from its finest table alone.
  const withoutTiers = (qs) => qs.map((q) => ({ ...q, source: { ...q.source, parts: undefined } }));
  {
    const qs = questionsAt(clock);
    const [a, b] = [
      await run(seriesStatsQuery(ch.database, qs)),
      await run(seriesStatsQuery(ch.database, withoutTiers(qs))),
    ];
    const key = (rows) => JSON.stringify([...rows.data].map((r) => JSON.stringify(r)).sort());
    if (key(a) !== key(b)) throw new Error('the tiered statement answered differently from the untiered one');
  }
  await evaluator.evaluate(); // warm-up (lease, caches)
  await run(perQuestionBranches(ch.database, questionsAt(clock)));
  for (let i = 0; i < RUNS; i++) {
    clock = end - Math.round((i * H) / RUNS);
    const c = await measure(() => evaluator.evaluate());
    cycles.push(c.out.totalMs);
    cycleCpu.push(c.cpu);
    queries.push(c.out.queryMs);
    series = c.out.series;
    const qs = questionsAt(clock);
    oneScan.push(await measure(() => run(seriesStatsQuery(ch.database, qs))));
    branches.push(await measure(() => run(perQuestionBranches(ch.database, qs))));
    untiered.push(await measure(() => run(seriesStatsQuery(ch.database, withoutTiers(qs)))));
  }
  clock = end;
  const distinct = questionsAt(clock).length;

  // The same rules, one statement each.
  const perRule = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const at = end - Math.round((i * H) / 3);
    for (const r of compiled) {
      const q = {
        range: { from: at - r.windowMs, to: at },
        filters: r.filters,
        groupBy: r.groupBy,
        ...(r.metric.responseFlag ? { responseFlag: r.metric.responseFlag } : {}),
        quantiles: r.metric.quantiles ?? false,
      };
      await run(seriesStatsQuery(ch.database, [{ ...q, source: alertSource(q) }]));
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
  const wall = (xs) => median(xs.map((x) => x.wall));
  const cpu = (xs) => median(xs.map((x) => x.cpu));
  report(
    `${RULES} rules (${distinct} distinct questions: windows ${windows.join('/')}, ${filters.length} filter sets), group_by route, ${series} series per cycle`,
  );
  report(
    `evaluation cycle (whole: lease check, rules, one statement, states, persistence): median ${cycle.toFixed(1)} ms, CPU ${median(cycleCpu).toFixed(1)} ms, over ${RUNS} cycles at clock times spread over the hour (target < 100 ms)`,
  );
  report(`  of which the values' statement: median ${median(queries).toFixed(1)} ms`);
  report(
    `values' statement, interleaved: one scan per table ${wall(oneScan).toFixed(1)} ms (CPU ${cpu(oneScan).toFixed(1)} ms) vs one branch per question (previous design) ${wall(branches).toFixed(1)} ms (CPU ${cpu(branches).toFixed(1)} ms): ${(wall(branches) / wall(oneScan)).toFixed(2)}x faster, ${(cpu(branches) / cpu(oneScan)).toFixed(2)}x less CPU`,
  );
  report(
    `values' statement, interleaved: with tiers ${wall(oneScan).toFixed(1)} ms (CPU ${cpu(oneScan).toFixed(1)} ms) vs each question from its finest table (before tiers) ${wall(untiered).toFixed(1)} ms (CPU ${cpu(untiered).toFixed(1)} ms): ${(wall(untiered) / wall(oneScan)).toFixed(2)}x, identical answers`,
  );
  report(
    `same questions one statement per rule: median ${median(perRule).toFixed(1)} ms over 3 rounds; the cycle's statement is ${(median(perRule) / median(queries)).toFixed(1)}x faster`,
  );
} finally {
  await evaluator?.close();
  await ch.close();
  rmSync(dir, { recursive: true, force: true });
}
