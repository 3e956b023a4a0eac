import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClickHouse, migrate, readJson, type ClickHouse } from '@gatescope/clickhouse';
import { BucketCache, type ReadRows } from './bucket-cache.js';
import type { Filters } from './params.js';
import type { Dimension } from './plan.js';
import {
  planSeriesQuestion,
  seriesStatsQuery,
  type PlannedQuestion,
  type SeriesQuestion,
  type SeriesRow,
} from './series.js';
import type { BuiltQuery } from './sql.js';
import { toStats } from './stats.js';
import { clusterStats, routeStats, windowStats } from './answers.js';
import { QueryReader } from './reader.js';
import { ROUTE_SORTS } from './sql.js';

const M = 60_000;
const H = 60 * M;
const START = Math.floor(Date.parse('2024-05-01T12:00:00Z') / M) * M + 17_345;

/** Planned as the alert evaluator plans (services/alerts `alertSource`): the rollups, raw rows when none keeps a filter. */
function ask(q: SeriesQuestion, now: number): PlannedQuestion {
  const question = { ...q, range: { from: now - (q.range.to - q.range.from), to: now } };
  const mode = q.filters.path_template ? 'auto' : 'rollup';
  return { ...question, source: planSeriesQuestion({ ...question, mode }) };
}

/** Questions of every kind the evaluator asks, as (window, filters, group-by, flag, quantiles) at time 0. */
function questionsOfEveryKind(): SeriesQuestion[] {
  const groupings: Dimension[][] = [
    ['route'],
    [],
    ['authority', 'method'],
    ['gateway'],
    ['upstream_cluster'],
  ];
  const filterSets: Filters[] = [
    {},
    { method: ['GET'] },
    { authority: ['a.example.com'], status_class: ['2xx', '5xx'] },
    { route: ['route-1', 'route-2'] },
    { gateway: ['gw-1'] },
  ];
  const windows = [M, 2 * M, 5 * M, 15 * M, H, 3 * H];
  const out: SeriesQuestion[] = [];
  let n = 0;
  for (const groupBy of groupings)
    for (const filters of filterSets)
      for (const ms of windows) {
        n++;
        out.push({
          range: { from: -ms, to: 0 },
          filters,
          groupBy,
          quantiles: n % 3 !== 0,
          ...(n % 4 === 1 ? { responseFlag: 'UF' } : n % 4 === 2 ? { responseFlag: 'UH' } : {}),
        });
      }
  // Not cacheable: raw rows (path_template), hourly rollups (≥ 12 h).
  out.push({ range: { from: -5 * M, to: 0 }, filters: { path_template: ['/p/1/{id}'] }, groupBy: ['route'] });
  out.push({ range: { from: -13 * H, to: 0 }, filters: {}, groupBy: ['route'], responseFlag: 'UH' });
  return out;
}

/** Rows as the evaluator reads them: per question and series, the stats and the flagged count. */
function normalized(questions: readonly PlannedQuestion[], rows: SeriesRow[]): string[] {
  return rows
    .map((r) => {
      const q = questions[Number(r.question)];
      const stats = toStats(r, 60);
      if (q.quantiles === false) stats.p50_ms = stats.p90_ms = stats.p95_ms = stats.p99_ms = null;
      return JSON.stringify([Number(r.question), r.series, stats, Number(r.flagged)]);
    })
    .sort();
}

async function insertTraffic(ch: ClickHouse, from: number, span: number, rows: number, id: string) {
  await ch.client.command({
    query:
      `INSERT INTO gatescope.http_requests (start_time, duration_ms, response_code, response_flags, route_name, ` +
      `upstream_cluster, authority, method, path, path_template, request_id, bytes_sent, bytes_received, node_id, node_cluster) ` +
      `SELECT fromUnixTimestamp64Milli(toInt64({from:Int64} + intDiv(number * {span:Int64}, {rows:UInt64})), 'UTC'), ` +
      `round(if(number % 97 = 0, 0, exp((cityHash64(number, {id:String}) % 1000) / 130.0)), 3), ` +
      `[200, 200, 200, 404, 503, 0][cityHash64(number, 1) % 6 + 1], ` +
      `[[], [], ['UF'], ['UH'], ['UF', 'URX']][cityHash64(number, 2) % 5 + 1], ` +
      `concat('route-', toString(number % 4)), concat('outbound|80||svc-', toString(number % 4)), ` +
      `['a.example.com', 'b.example.com'][number % 3 % 2 + 1], ['GET', 'POST'][cityHash64(number, 3) % 2 + 1], ` +
      `concat('/p/', toString(number % 3), '/', toString(number)), concat('/p/', toString(number % 3), '/{id}'), ` +
      `concat({id:String}, toString(number)), number % 5000, number % 700, concat('gw-', toString(number % 2)), 'ingress' ` +
      `FROM numbers({rows:UInt64})`,
    query_params: { from, span, rows, id },
  });
}

describe('BucketCache answers what seriesStatsQuery answers (embedded engine)', () => {
  let ch: ClickHouse;
  let dir: string;
  const statements: string[] = [];
  const read: ReadRows = async <T>(q: BuiltQuery) => {
    statements.push(q.query);
    return (await readJson<T>(ch.reader, q)).data;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatescope-minute-cache-'));
    ch = await createClickHouse({ database: 'gatescope', dataDir: dir });
    await migrate(ch, { retentionDays: 3650, rollupRetentionDays: 3650 });
    // 4 h of traffic over every dimension a question can filter or group by (as series.test.ts), and a thinner
    // day before it for the hourly windows.
    await insert(START - 4 * H, 4 * H + M, 80_000, 'r');
    await insert(START - 30 * H, 26 * H, 30_000, 'day');
  });
  afterAll(async () => {
    await ch?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const insert = (from: number, span: number, rows: number, id: string) =>
    insertTraffic(ch, from, span, rows, id);

  async function compare(cache: BucketCache, now: number) {
    const questions = questionsOfEveryKind().map((q) => ask(q, now));
    const want = await read<SeriesRow>(seriesStatsQuery('gatescope', questions));
    statements.length = 0;
    const { rows, cycle } = await cache.rows(questions, read);
    expect(want.length).toBeGreaterThan(300);
    expect(normalized(questions, rows)).toEqual(normalized(questions, want));
    return { cycle, questions, statements: [...statements] };
  }

  it('from the first cycle on, after late rows into an old minute, as the windows move and under the memory bound', async () => {
    const cache = new BucketCache('gatescope');
    // First cycle: every minute fetched once (the newest ones with the probe, the others after it); the raw-row
    // and hourly questions asked as before, in parallel.
    const first = await compare(cache, START);
    expect(first.cycle.fallback).toBe(2);
    expect(first.cycle.cached).toBe(first.questions.length - 2);
    expect(first.cycle.groups).toBe(5); // one per group-by
    expect(first.cycle.minutesFetched).toBe(first.cycle.minutesProbed + 2 * first.cycle.groups);
    // Probe and newest minutes, the older minutes 10 at a time, the uncached questions.
    const older = first.cycle.minutesProbed / first.cycle.groups;
    expect(first.statements).toHaveLength(2 + Math.ceil(older / 10));

    // Nothing changed: one statement, the probe and the newest two minutes (beside the uncached questions').
    const idle = await compare(cache, START);
    expect(idle.statements).toHaveLength(2);
    expect(idle.cycle.minutesFetched).toBe(2 * idle.cycle.groups);

    // Late rows into a minute 7 minutes ago (inside the 15 m windows' 10-minute block in the tiers), one 27 minutes
    // ago (inside a 10-minute block the cache merged and kept for the 1 h and 3 h windows) and into the current
    // one: the two old minutes are fetched again, and every answer still equals the statement's.
    await insert(START - 7 * M, 1000, 9, 'late');
    await insert(START - 27 * M, 1000, 9, 'later');
    await insert(START - 2000, 1000, 5, 'now');
    const late = await compare(cache, START);
    expect(late.statements).toHaveLength(3);
    expect(late.cycle.minutesFetched).toBe((2 + 2) * late.cycle.groups);

    // Two minutes later, with rows into the minute that was the newest: the windows move; that minute is fetched
    // again (its sum changed since it was read in full), the new ones with the probe, the oldest ones dropped.
    await insert(START + 30_000, 60_000, 40, 'next');
    const moved = await compare(cache, START + 2 * M);
    expect(moved.cycle.minutesFetched).toBe((2 + 1) * moved.cycle.groups);
    expect(moved.cycle.partials).toBeLessThanOrEqual(first.cycle.partials + 100);

    // Over the memory bound: every group goes back to the statement, same answers.
    const small = new BucketCache('gatescope', { maxPartials: 10 });
    const bounded = await compare(small, START + 2 * M);
    expect(bounded.cycle.cached).toBe(0);
    expect(bounded.cycle.fallback).toBe(bounded.questions.length);
    expect(small.partials).toBe(0);
  });

  it('starts a group afresh when its questions change shape (a filter set added)', async () => {
    const cache = new BucketCache('gatescope');
    const base: SeriesQuestion = { range: { from: -15 * M, to: 0 }, filters: {}, groupBy: ['route'] };
    const one = [ask({ ...base, filters: { method: ['GET'] } }, START)];
    await cache.rows(one, read);
    const two = [...one, ask({ ...base, filters: { method: ['POST'] } }, START)];
    const { rows, cycle } = await cache.rows(two, read);
    expect(cycle.minutesFetched).toBe(16);
    const want = await read<SeriesRow>(seriesStatsQuery('gatescope', two));
    expect(normalized(two, rows)).toEqual(normalized(two, want));
  });

  it('turns itself off on a state it cannot decode and answers every question with the statement', async () => {
    const cache = new BucketCache('gatescope');
    const questions = questionsOfEveryKind().map((q) => ask(q, START));
    // Another serialisation, as a different ClickHouse might write it: the states come back unreadable.
    const corrupting: ReadRows = async <T>(q: BuiltQuery) =>
      (await read<Record<string, unknown>>(q)).map((r) =>
        typeof r.state === 'string' && r.state
          ? { ...r, state: Buffer.from([9, 9, 9]).toString('base64') }
          : r,
      ) as T[];
    const { rows, cycle } = await cache.rows(questions, corrupting);
    expect(cycle.disabled).toMatch(/quantilesDD state/);
    expect(cycle.fallback).toBe(questions.length);
    const want = await read<SeriesRow>(seriesStatsQuery('gatescope', questions));
    expect(normalized(questions, rows)).toEqual(normalized(questions, want));
    expect(cache.partials).toBe(0);
    // And stays off.
    expect((await cache.rows(questions, read)).cycle.disabled).toBeDefined();
  });
});

describe('API windows from the bucket caches answer what their statements answer (embedded engine)', () => {
  let ch: ClickHouse;
  let dir: string;
  let now = START;
  const limits = { maxExecutionTimeS: 30, maxMemoryBytes: 2 ** 31, maxThreads: 2 };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatescope-window-cache-'));
    ch = await createClickHouse({ database: 'gatescope', dataDir: dir });
    await migrate(ch, { retentionDays: 3650, rollupRetentionDays: 3650 });
    await insertTraffic(ch, START - 30 * H, 30 * H + M, 60_000, 'w');
  });
  afterAll(async () => {
    await ch?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const windows = [1 * H, 3 * H, 12 * H, 24 * H];
  const filterSets: Filters[] = [
    {},
    { method: ['GET'] },
    { route: ['route-1', 'route-2'] },
    { upstream_cluster: ['outbound|80||svc-3'] },
    { authority: ['a.example.com'], status_class: ['5xx'] },
    { restriction: { authorities: ['b.example.com'] } } as Filters,
  ];

  /**
   * Every window answer through a cached reader (asked until the cache holds it: admitted on the second ask, filled
   * in the background) and a statement-only one, at the same clock; they must be equal.
   */
  async function compareAll(cached: QueryReader, plain: QueryReader, everySort: boolean) {
    const viaCache = async <T>(answer: () => Promise<T>) => {
      await answer();
      await answer();
      await cached.windowFills();
      return answer();
    };
    let compared = 0;
    for (const span of windows)
      for (const filters of filterSets) {
        const q = { range: { from: now - span, to: now }, filters, mode: 'rollup' as const };
        expect(await viaCache(() => windowStats(cached, q))).toEqual(await windowStats(plain, q));
        expect(await viaCache(() => clusterStats(cached, q))).toEqual(await clusterStats(plain, q));
        // Every sort and order on two windows (one per cache) in the first pass, the default sort elsewhere.
        const sorts =
          everySort && (span === 3 * H || span === 24 * H) ? ROUTE_SORTS : (['requests'] as const);
        for (const sort of sorts)
          for (const order of ['asc', 'desc'] as const) {
            const r = { ...q, sort, order, limit: 3 };
            expect(await viaCache(() => routeStats(cached, r))).toEqual(await routeStats(plain, r));
          }
        compared++;
      }
    return compared;
  }

  it('for every window, filter, sort and order; after late rows into an old hour and minute; as the clock moves', async () => {
    const clock = () => now;
    const cached = new QueryReader({ clickhouse: ch, limits, now: clock });
    const plain = new QueryReader({ clickhouse: ch, limits, now: clock, windowCache: false });
    const answer = await routeStats(cached, { range: { from: now - 24 * H, to: now }, filters: {} });
    expect(answer.source.granularity_s).toBe(3600);
    expect(answer.routes.map((r) => r.route).sort()).toEqual(['route-0', 'route-1', 'route-2', 'route-3']);
    expect(await compareAll(cached, plain, true)).toBe(windows.length * filterSets.length);
    // Windows filtered beyond route and upstream cluster are cached (3 answers x 3 wide filter sets x 5 windows);
    // lean ones are their statements.
    expect(cached.windowCacheSize().groups).toBe(3 * 3 * windows.length);
    expect(plain.windowCacheSize().groups).toBe(0);

    // Late rows into an hour 20 h ago and a minute 50 minutes ago (both cached by now), and into the current minute.
    await insertTraffic(ch, START - 20 * H + 5 * M, 1000, 50, 'late-hour');
    await insertTraffic(ch, START - 50 * M, 1000, 50, 'late-minute');
    await insertTraffic(ch, START - 2000, 1000, 20, 'now');
    await compareAll(cached, plain, false);

    // An hour and a bit later, with new traffic: the windows move.
    await insertTraffic(ch, START, H + 10 * M, 3_000, 'next');
    now = START + H + 7 * M;
    await compareAll(cached, plain, false);
  }, 300_000);

  it('keeps the most recently asked windows within its bounds, same answers', async () => {
    const cache = new BucketCache('gatescope', { granularity_s: 3600, retain: 'recent', maxGroups: 2 });
    const read: ReadRows = async <T>(q: BuiltQuery) => (await readJson<T>(ch.reader, q)).data;
    const ask24 = (filters: Filters) =>
      ask({ range: { from: -24 * H, to: 0 }, filters, groupBy: ['route'] }, now);
    for (const filters of filterSets.slice(0, 4)) {
      const question = ask24(filters);
      const { rows } = await cache.rows([question], read);
      const want = await read<SeriesRow>(seriesStatsQuery('gatescope', [question]));
      expect(normalized([question], rows)).toEqual(normalized([question], want));
    }
    expect(cache.size).toBe(2);
    // The last one asked is still held: asked again, it reads the newest hour and the probe, nothing else.
    const again = await cache.rows([ask24(filterSets[3])], read);
    expect(again.cycle.cached).toBe(1);
    expect(again.cycle.minutesFetched).toBe(1);
    // Over the partials bound: answered by the statement, nothing kept.
    const small = new BucketCache('gatescope', { granularity_s: 3600, retain: 'recent', maxPartials: 5 });
    const bounded = await small.rows([ask24({})], read);
    expect(bounded.cycle.fallback).toBe(1);
    expect(small.partials).toBe(0);
    // And says so, so that the reader does not admit it again at once.
    expect(small.refuses(ask24({}))).toBe(true);
    expect(small.refuses(ask24({ method: ['GET'] }))).toBe(false);
  });
});
