import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClickHouse, migrate, readJson, type ClickHouse } from '@gatescope/clickhouse';
import type { Filters, TimeRange } from './params.js';
import { planSource, type Dimension, type Source } from './plan.js';
import {
  planSeriesQuestion,
  QUESTIONS_PER_SCAN,
  seriesScans,
  seriesStatsQuery,
  type SeriesQuestion,
  type SeriesRow,
} from './series.js';
import { routesQuery, summaryQuery } from './sql.js';
import { toStats, type StatsRow } from './stats.js';

const M = 60_000;
const H = 60 * M;
// On a minute boundary plus a bit, so windows cut buckets the way a live evaluator's do.
const NOW = Math.floor(Date.parse('2024-05-01T12:00:00Z') / M) * M + 17_345;

type Q = SeriesQuestion & { source: Source };
/** Planned as the alert evaluator plans (services/alerts `alertSource`): the rollups, raw rows when none keeps a filter. */
function ask(q: SeriesQuestion, mode: 'rollup' | 'auto' = 'rollup'): Q {
  const rollupable = !q.filters.path_template;
  const question = { ...q, mode: rollupable ? mode : 'auto' };
  return { ...question, source: planSeriesQuestion(question) };
}
const window = (ms: number) => ({ from: NOW - ms, to: NOW });
const tables = (sql: string) => [...sql.matchAll(/FROM gatescope\.(\w+)/g)].map((m) => m[1]);

describe('seriesScans / seriesStatsQuery (building)', () => {
  const byRoute: Dimension[] = ['route'];
  it('answers every question on one table and group-by from one scan', () => {
    const qs = [
      ask({ range: window(M), filters: {}, groupBy: byRoute }),
      ask({ range: window(5 * M), filters: {}, groupBy: byRoute }),
      ask({ range: window(H), filters: {}, groupBy: byRoute }),
      ask({ range: window(5 * M), filters: { method: ['GET'] }, groupBy: byRoute }),
      ask({ range: window(15 * M), filters: { method: ['GET'] }, groupBy: byRoute, responseFlag: 'UF' }),
      ask({ range: window(H), filters: { authority: ['a.example.com'] }, groupBy: byRoute }),
    ];
    expect(qs.map((q) => q.source.table)).toEqual([
      'http_routes_1m',
      'http_routes_1m',
      'http_routes_1m',
      'http_requests_1m',
      'http_requests_1m',
      'http_requests_1m',
    ]);
    const scans = seriesScans(qs);
    expect(scans.map((s) => s.scan.map((x) => x.index))).toEqual([
      [0, 1, 2],
      [3, 4, 5],
    ]);
    const built = seriesStatsQuery('gatescope', qs);
    // Six questions, two scans. Each reads the tables of its questions' parts (plan.ts `tierParts`): the hour
    // window's whole hour from the hourly rollup, the 15-minute window's whole ten minutes from http_requests_10m,
    // the minutes around them from the per-minute rollups.
    expect(qs[2].source.parts?.map((p) => p.table)).toEqual(['http_routes_1h', 'http_routes_1m']);
    expect(qs[4].source.parts?.map((p) => p.table)).toEqual([
      'http_requests_1m',
      'http_requests_10m',
      'http_requests_1m',
    ]);
    expect(tables(built.query)).toEqual([
      'http_routes_1m',
      'http_routes_1h',
      'http_requests_1m',
      'http_requests_10m',
      'http_requests_1h',
    ]);
    // Each table over the union of its questions' parts only: the per-minute rollup over the last 5 minutes (the
    // hour's last minute inside them), the hourly one over the hour.
    expect([built.params.s0_tier0_0_from, built.params.s0_tier0_0_to]).toEqual([
      qs[1].source.from,
      NOW + M - 17_345,
    ]);
    expect(built.params.s0_tier0_1_from).toBeUndefined();
    expect(built.params.s0_tier1_0_from).toBe(qs[2].source.from);
    // Minutes the 10-minute block covers are not read as minutes: [11:45, 11:50) and [11:55, 12:01).
    expect(built.params.s1_tier0_0_to).toBe(qs[4].source.parts![1].from);
    expect(built.params.s1_tier0_1_from).toBe(qs[3].source.from);
    expect(built.params.s1_questions).toEqual([3, 4, 5]);
    // A row's questions are looked up by its bucket: the 10-minute block is question 4's alone (scan bit 1), the
    // current minute every question's of the scan (bits 0-2).
    expect(built.params.s1_tier1_buckets).toEqual([qs[4].source.parts![1].from]);
    expect(built.params.s1_tier1_masks).toEqual(['2']);
    const minutes = built.params.s1_tier0_buckets as number[];
    expect((built.params.s1_tier0_masks as string[])[minutes.indexOf(NOW - 17_345)]).toBe('7');
    // Filter sets appear once each, their values bound.
    expect(built.params.s1_f0_method).toEqual(['GET']);
    expect(built.params.s1_f1_authority).toEqual(['a.example.com']);
    expect(built.params.s1_flag0).toBe('UF');
    expect(built.query.match(/\{s1_f0_method:Array\(String\)\}/g)).toHaveLength(1);
  });

  it('scans a different group-by, table or granularity apart', () => {
    const qs = [
      ask({ range: window(5 * M), filters: {}, groupBy: byRoute }),
      ask({ range: window(5 * M), filters: {}, groupBy: [] }),
      ask({ range: window(13 * H), filters: {}, groupBy: byRoute }),
      ask({ range: window(5 * M), filters: { path_template: ['/a/{id}'] }, groupBy: byRoute }),
    ];
    expect(qs.map((q) => q.source.table)).toEqual([
      'http_routes_1m',
      'http_routes_1m',
      'http_routes_1h',
      'http_requests',
    ]);
    expect(tables(seriesStatsQuery('gatescope', qs).query)).toEqual([
      'http_routes_1m',
      'http_routes_1m',
      // 13 h of hours: one table (hours have no coarser tier).
      'http_routes_1h',
      'http_requests',
    ]);
  });

  it('reads DD states only over the range of the questions that want quantiles', () => {
    const qs = [
      ask({ range: window(5 * M), filters: {}, groupBy: byRoute, quantiles: true }),
      ask({ range: window(M), filters: {}, groupBy: byRoute, quantiles: false }), // inside: rides along
      ask({ range: window(H), filters: {}, groupBy: byRoute, quantiles: false }), // wider: a scan without states
    ];
    const scans = seriesScans(qs);
    expect(scans.map((s) => [s.scan.map((x) => x.index), s.quantiles])).toEqual([
      [[0, 1], true],
      [[2], false],
    ]);
    const parts = seriesStatsQuery('gatescope', qs).query.split('\nUNION ALL\n');
    expect(parts).toHaveLength(2);
    expect(parts[0]).toContain('quantilesDDMergeState(');
    expect(parts[1]).not.toContain('duration_quantiles');
    expect(parts[1]).toContain("CAST([], 'Array(Float64)') AS q");
    // Counts only: no scan reads a state.
    const counts = seriesStatsQuery('gatescope', [qs[1], qs[2]]);
    expect(counts.query).not.toContain('duration_quantiles');
    expect(tables(counts.query)).toEqual(['http_routes_1m', 'http_routes_1h']);
  });

  it(`splits more than ${QUESTIONS_PER_SCAN} questions of one scan (one mask bit each)`, () => {
    const qs = Array.from({ length: QUESTIONS_PER_SCAN + 6 }, (_, i) =>
      ask({ range: window((i + 1) * M), filters: {}, groupBy: byRoute }),
    );
    expect(seriesScans(qs).map((s) => s.scan.length)).toEqual([QUESTIONS_PER_SCAN, 6]);
  });

  it('keeps user text out of the statement: every value is a bound parameter', () => {
    const hostile = "x') OR 1=1 --";
    const qs = [
      ask({
        range: window(5 * M),
        filters: { authority: [hostile], gateway: [hostile] },
        groupBy: byRoute,
        responseFlag: 'UH',
      }),
      ask({ range: window(5 * M), filters: { route: [hostile] }, groupBy: ['upstream_cluster'] }),
    ];
    const built = seriesStatsQuery('gatescope', qs);
    expect(built.query).not.toContain('OR 1=1');
    expect(built.query).not.toContain('UH');
    expect(Object.values(built.params).flat()).toContain(hostile);
    // Every placeholder has its parameter and every parameter its placeholder.
    const placeholders = new Set([...built.query.matchAll(/\{(\w+):/g)].map((m) => m[1]));
    expect([...placeholders].sort()).toEqual(Object.keys(built.params).sort());
  });

  it('refuses no question and an unknown group-by', () => {
    expect(() => seriesStatsQuery('gatescope', [])).toThrow(/at least one/);
    expect(() =>
      seriesStatsQuery('gatescope', [
        { ...ask({ range: window(M), filters: {}, groupBy: [] }), groupBy: ['path_template'] },
      ]),
    ).toThrow(/cannot group by path_template/);
  });
});

describe('seriesStatsQuery answers what the API answers (embedded engine)', () => {
  let ch: ClickHouse;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatescope-series-'));
    ch = await createClickHouse({ database: 'gatescope', dataDir: dir });
    await migrate(ch, { retentionDays: 3650, rollupRetentionDays: 3650 });
    // 14 h of traffic over every dimension a question can filter or group by: 4 routes, 2 authorities, 2 methods,
    // 2 gateways, statuses 200/404/503/0, flags UF/UH/none, 3 path templates, latencies 0–2 s.
    await ch.client.command({
      query:
        `INSERT INTO gatescope.http_requests (start_time, duration_ms, response_code, response_flags, route_name, ` +
        `upstream_cluster, authority, method, path, path_template, request_id, bytes_sent, bytes_received, node_id, node_cluster) ` +
        `SELECT fromUnixTimestamp64Milli(toInt64({from:Int64} + intDiv(number * {span:Int64}, {rows:UInt64})), 'UTC'), ` +
        `round(if(number % 97 = 0, 0, exp((cityHash64(number) % 1000) / 130.0)), 3), ` +
        `[200, 200, 200, 404, 503, 0][cityHash64(number, 1) % 6 + 1], ` +
        `[[], [], ['UF'], ['UH'], ['UF', 'URX']][cityHash64(number, 2) % 5 + 1], ` +
        `concat('route-', toString(number % 4)), concat('outbound|80||svc-', toString(number % 4)), ` +
        `['a.example.com', 'b.example.com'][number % 3 % 2 + 1], ['GET', 'POST'][cityHash64(number, 3) % 2 + 1], ` +
        `concat('/p/', toString(number % 3), '/', toString(number)), concat('/p/', toString(number % 3), '/{id}'), ` +
        `concat('r-', toString(number)), number % 5000, number % 700, concat('gw-', toString(number % 2)), 'ingress' ` +
        `FROM numbers({rows:UInt64})`,
      query_params: { from: NOW - 14 * H, span: 14 * H + 60_000, rows: 60_000 },
    });
  });
  afterAll(async () => {
    await ch?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The API's answer for one question and one series: its summary with the series' values as filters. */
  async function apiAnswer(q: Q, series: string[], flagged: boolean) {
    const filters: Filters = { ...q.filters };
    q.groupBy.forEach((d, i) => ((filters as Record<string, string[]>)[d] = [series[i]]));
    if (flagged) filters.response_flag = [q.responseFlag!];
    const built = summaryQuery('gatescope', q.source, filters);
    return (await readJson<StatsRow>(ch.reader, built)).data[0];
  }

  it('for every question, series and number, rollups (1m, 1h, lean and full) and raw rows alike', async () => {
    const groupings: Dimension[][] = [['route'], [], ['authority', 'method'], ['gateway']];
    const filterSets: Filters[] = [
      {},
      { method: ['GET'] },
      { authority: ['a.example.com'], status_class: ['2xx', '5xx'] },
      { path_template: ['/p/1/{id}'] }, // no rollup keeps it: raw rows
    ];
    const windows = [2 * M, 5 * M, 15 * M, H, 13 * H];
    const qs: Q[] = [];
    for (const groupBy of groupings)
      for (const filters of filterSets)
        for (const [w, ms] of windows.entries())
          qs.push(
            ask({
              range: window(ms),
              filters,
              groupBy,
              quantiles: w % 2 === 0,
              ...(w === 1 || w === 2 ? { responseFlag: w === 1 ? 'UF' : 'UH' } : {}),
            }),
          );
    // A flag over the hourly rollup; raw rows as the API's auto planning gives them for short windows.
    qs.push(
      ask({ range: window(13 * H), filters: {}, groupBy: ['route'], responseFlag: 'UH', quantiles: false }),
    );
    qs.push(ask({ range: window(5 * M), filters: {}, groupBy: ['route'], responseFlag: 'UF' }, 'auto'));
    expect([...new Set(qs.map((q) => q.source.table))].sort()).toEqual([
      'http_requests',
      'http_requests_1h',
      'http_requests_1m',
      'http_routes_1h',
      'http_routes_1m',
      // Unfiltered, ungrouped hourly questions: the hourly totals (migration 0006).
      'http_totals_1h',
    ]);

    const built = seriesStatsQuery('gatescope', qs);
    const rows = (await readJson<SeriesRow>(ch.reader, built)).data;
    const byQuestion = new Map<number, SeriesRow[]>();
    for (const r of rows)
      byQuestion.set(Number(r.question), [...(byQuestion.get(Number(r.question)) ?? []), r]);

    let checked = 0;
    for (const [i, q] of qs.entries()) {
      const mine = byQuestion.get(i) ?? [];
      // Every series the API sees for this question is answered, each once.
      const expected = await readJson<{ series: string[] }>(ch.reader, seriesOf(q));
      expect(mine.map((r) => JSON.stringify(r.series)).sort(), `question ${i} series`).toEqual(
        expected.data.map((r) => JSON.stringify(r.series)).sort(),
      );
      for (const row of mine) {
        const api = await apiAnswer(q, row.series, false);
        const got = toStats(row, 60);
        const want = toStats(api, 60);
        if (q.quantiles === false) {
          got.p50_ms = got.p90_ms = got.p95_ms = got.p99_ms = null;
          want.p50_ms = want.p90_ms = want.p95_ms = want.p99_ms = null;
        } else {
          expect(got.p99_ms, `question ${i} ${row.series.join('/')}: p99`).not.toBeNull();
        }
        expect(got, `question ${i} (${q.source.table}) ${row.series.join('/')}`).toEqual(want);
        if (q.responseFlag) {
          const flagged = await apiAnswer(q, row.series, true);
          expect(Number(row.flagged), `question ${i} flagged`).toBe(Number(flagged?.requests ?? 0));
        } else expect(Number(row.flagged)).toBe(0);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(150);
  });

  it('reads tiers that answer exactly what the finest table alone and the raw rows answer, late rows included', async () => {
    const asked: { range: TimeRange; filters: Filters; groupBy: Dimension[] }[] = [];
    for (const ms of [15 * M, H, 3 * H, 13 * H])
      for (const filters of [{}, { method: ['GET'] }])
        asked.push({ range: window(ms), filters, groupBy: ['route'] });
    const answers = async () => {
      const out: string[] = [];
      for (const q of asked) {
        const tiered = planSource({ ...q, mode: 'rollup' });
        // Every per-minute window here has whole coarser blocks; hours have no coarser tier (one table).
        if (tiered.granularity_s === 3600) expect(tiered.parts).toBeUndefined();
        else expect(tiered.parts, `${q.range.to - q.range.from} ms`).toBeDefined();
        const single: Source = { ...tiered, parts: undefined };
        const raw: Source = {
          kind: 'raw',
          granularity_s: 0,
          table: 'http_requests',
          from: tiered.from,
          to: tiered.to,
        };
        const opts = { sort: 'route' as const, order: 'asc' as const, limit: 100 };
        const [a, b, c] = await Promise.all(
          [tiered, single, raw].map(
            async (source) =>
              (await readJson<StatsRow>(ch.reader, routesQuery('gatescope', source, q.filters, opts))).data,
          ),
        );
        const label = `${(q.range.to - q.range.from) / M} min ${JSON.stringify(q.filters)}`;
        expect(a.length, label).toBeGreaterThan(0);
        expect(a, label).toEqual(b);
        expect(
          a.map((r) => toStats(r, 60)),
          label,
        ).toEqual(c.map((r) => toStats(r, 60)));
        out.push(JSON.stringify(a));
      }
      return out;
    };
    const before = await answers();
    // Late rows: stored now into a minute 7 minutes ago, inside the 15 min windows' 10-minute block, the 1 h and
    // 3 h windows' hourly blocks and the 13 h windows' hours: the views carry them up every tier, so the tiered
    // reads count them too (and still equal the finest table and raw rows, checked in answers()).
    const late = NOW - 7 * M;
    await ch.client.command({
      query:
        `INSERT INTO gatescope.http_requests (start_time, duration_ms, response_code, route_name, upstream_cluster, method, request_id) ` +
        `SELECT fromUnixTimestamp64Milli({t:Int64}, 'UTC'), 5000 + number, 503, 'route-1', 'outbound|80||svc-1', 'GET', concat('late-', toString(number)) FROM numbers(7)`,
      query_params: { t: late },
    });
    const after = await answers();
    const blocks = (ms: number) =>
      planSource({ range: window(ms), filters: {}, groupBy: ['route'], mode: 'rollup' }).parts!;
    const holds = (table: string) => (p: { table: string; from: number; to: number }) =>
      p.table === table && p.from <= late && late < p.to;
    expect(blocks(15 * M).find(holds('http_routes_10m'))).toBeDefined();
    expect(blocks(H).find(holds('http_routes_1h'))).toBeDefined();
    expect(after.filter((a, i) => a !== before[i]).length).toBe(asked.length); // every window, unfiltered and GET
  });

  /** The series a question has: its group-by values over its range and filters, where any request is. */
  function seriesOf(q: Q) {
    const cols: Record<string, string> = {
      route: 'route_name',
      authority: 'authority',
      method: 'method',
      gateway: 'node_id',
    };
    const one = summaryQuery('gatescope', q.source, q.filters);
    // The outer WHERE (a tiered source's FROM has its parts' own); the finest table holds every series.
    const where = one.query.slice(one.query.lastIndexOf('\nWHERE'));
    const series = q.groupBy.length
      ? `[${q.groupBy.map((d) => `toString(${cols[d]})`).join(', ')}]`
      : "CAST([], 'Array(String)')";
    return {
      query: `SELECT DISTINCT ${series} AS series FROM gatescope.${q.source.table} ${where}`,
      params: one.params,
    };
  }

  it('is the planning the API uses', () => {
    const q = { range: window(H), filters: { method: ['GET'] }, groupBy: ['route'] as Dimension[] };
    expect(planSeriesQuestion({ ...q, mode: 'rollup' })).toEqual(
      planSource({ ...q, groupBy: q.groupBy, mode: 'rollup' }),
    );
  });
});
