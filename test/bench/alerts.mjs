// Alert evaluation benchmark: 50 rules grouped by route over 50 routes, evaluated by the real evaluator on the
// embedded engine, against 1 h of traffic at RPS requests/s (default 1,000: 300k raw rows in a 5-minute window),
// read from the rollups as the evaluator does (services/alerts `alertSource`).
// The rules mix every metric kind, four windows (1m, 5m, 15m, 1h) and two filter sets, so the cycle asks
// several distinct questions; the evaluator answers them from its per-minute cache (@gatescope/query BucketCache:
// a probe of the minutes' sums and a fetch of the changed minutes per cycle, windows merged in memory). Before each
// cycle one more second of traffic is inserted at the current time, so the current minute changes every cycle as
// it does live.
// Side by side in the same run: the cache alone against the uncached statement (@gatescope/query
// seriesStatsQuery, one scan per source table, the evaluator's read before the cache) over the same questions and
// data, their answers checked equal every run.
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
import {
  DIMENSION_COLUMNS,
  BucketCache,
  seriesStatsQuery,
  statsColumns,
  toStats,
  whereClause,
  withLimits,
} from '@gatescope/query';
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
    const qs = questionsAt(Date.now());
    const [a, b] = [
      await run(seriesStatsQuery(ch.database, qs)),
      await run(seriesStatsQuery(ch.database, withoutTiers(qs))),
    ];
    const key = (rows) => JSON.stringify([...rows.data].map((r) => JSON.stringify(r)).sort());
    if (key(a) !== key(b)) throw new Error('the tiered statement answered differently from the untiered one');
  }
  // Every cycle's rows as the evaluator reads them: per question and series, the stats and the flagged count.
  const answers = (qs, rows) =>
    JSON.stringify(
      rows
        .map((r) => {
          const stats = toStats(r, 60);
          if (!qs[Number(r.question)].quantiles)
            stats.p50_ms = stats.p90_ms = stats.p95_ms = stats.p99_ms = null;
          return JSON.stringify([Number(r.question), r.series, stats, Number(r.flagged)]);
        })
        .sort(),
    );
  const first = await evaluator.evaluate(); // warm-up (lease; the minute cache's first fill)
  await run(perQuestionBranches(ch.database, questionsAt(Date.now())));
  // The minute cache alone, beside the statement it replaces (a cache of its own, fed the same questions).
  const cache = new BucketCache(ch.database);
  const read = async (q) => (await run(q)).data;
  const firstFill = await measure(() => cache.rows(questionsAt(Date.now()), read));
  const cached = [];
  const cacheCycles = [];
  for (let i = 0; i < RUNS; i++) {
    // One more second of traffic at the current time: the current minute changes each cycle, as it does live.
    await generate(ch, { startMs: Date.now() - 1000, spanMs: 1000, total: RPS, routes: ROUTES });
    const c = await measure(() => evaluator.evaluate());
    cycles.push(c.out.totalMs);
    cycleCpu.push(c.cpu);
    queries.push(c.out.queryMs);
    series = c.out.series;
    const qs = questionsAt(Date.now());
    const statement = await measure(() => run(seriesStatsQuery(ch.database, qs)));
    oneScan.push(statement);
    const fromCache = await measure(() => cache.rows(qs, read));
    cached.push(fromCache);
    cacheCycles.push(fromCache.out.cycle);
    if (answers(qs, fromCache.out.rows) !== answers(qs, statement.out.data))
      throw new Error('the minute cache answered differently from the statement');
    branches.push(await measure(() => run(perQuestionBranches(ch.database, qs))));
    untiered.push(await measure(() => run(seriesStatsQuery(ch.database, withoutTiers(qs)))));
  }
  const distinct = questionsAt(Date.now()).length;

  // The same rules, one statement each.
  const perRule = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const at = Date.now();
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
    `evaluation cycle (whole: lease check, rules, values, states, persistence): median ${cycle.toFixed(1)} ms, CPU ${median(cycleCpu).toFixed(1)} ms, over ${RUNS} cycles (target < 100 ms)`,
  );
  report(
    `  of which the values (minute cache: probe, fetch of the changed minutes, merge): median ${median(queries).toFixed(1)} ms; the first cycle (fills the cache) ${first.queryMs.toFixed(1)} ms`,
  );
  const per = (k) => median(cacheCycles.map((c) => c[k]));
  report(
    `values, interleaved on the same data: minute cache ${wall(cached).toFixed(1)} ms (CPU ${cpu(cached).toFixed(1)} ms) vs the uncached statement ${wall(oneScan).toFixed(1)} ms (CPU ${cpu(oneScan).toFixed(1)} ms): ${(wall(oneScan) / wall(cached)).toFixed(2)}x faster, ${(cpu(oneScan) / cpu(cached)).toFixed(2)}x less CPU, identical answers every run`,
  );
  report(
    `  minute cache per cycle (medians): probe with the newest two minutes ${per('probeMs').toFixed(1)} ms, older changed minutes ${per('fetchMs').toFixed(1)} ms (${per('minutesFetched')} group-minutes read in all, ${per('minutesProbed')} probed, ${per('partialsFetched')} partials), merge ${per('answerMs').toFixed(1)} ms; ${per('partials')} partials held (decoded states' bins ${(per('stateBytes') / 1e6).toFixed(1)} MB); first fill ${firstFill.wall.toFixed(1)} ms (CPU ${firstFill.cpu.toFixed(1)} ms)`,
  );
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
