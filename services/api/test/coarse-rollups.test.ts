/* eslint-disable @typescript-eslint/no-explicit-any -- the tests read JSON response bodies */
// The coarse rollups (migrations/0006: http_totals_1h, http_routes_4h, http_routes_1d) answer long ranges with the
// very numbers the hourly rollup gives: the same counts and bit-identical quantiles (DDSketch states merge exactly),
// late entries into closed hours reach them, and the migration's backfill rebuilds them from the hourly rollup.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { listMigrations, renderMigration, type ClickHouse } from '@gatescope/clickhouse';
import {
  QueryReader,
  routesQuery,
  timeseriesQuery,
  toStats,
  type Source,
  type StatsRow,
} from '@gatescope/query';
import { buildApp } from '../src/index.js';
import { generate, H, openEngine, READ, testConfig } from './fixtures.js';

// An hour-aligned clock at 09:00 UTC: a 24 h range has hours at both ends and 4-hour blocks, 3 days whole days too.
const NOW = Math.floor(Date.now() / (24 * H)) * 24 * H - 24 * H + 9 * H;
const iso = (ms: number) => new Date(ms).toISOString();
const DAY = `from=${iso(NOW - 24 * H)}&to=${iso(NOW)}`;
const THREE_DAYS = `from=${iso(NOW - 72 * H)}&to=${iso(NOW)}`;

let ch: ClickHouse;
let cleanup: () => Promise<void>;
let app: FastifyInstance;
let reader: QueryReader;

async function get(url: string) {
  const res = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${READ}` } });
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as any;
}

/** The same question answered from the hourly rollup alone: what the API gave before 0006. */
async function hourlyRoutes(range: { from: number; to: number }) {
  const source: Source = { kind: 'routes', granularity_s: 3600, table: 'http_routes_1h', ...range };
  return reader.rows<StatsRow & { route: string; share: number }>(
    routesQuery('gatescope', source, {}, { sort: 'route', order: 'asc', limit: 1000 }),
  );
}

/** The API's routes rows in the same shape as `hourlyRoutes` reads them (the engine's own numbers). */
async function coarseRoutes(range: { from: number; to: number }) {
  const source = await reader.plan({ range, filters: {}, groupBy: ['route'] });
  expect(source.segments?.some((s) => s.granularity_s > 3600)).toBe(true);
  return reader.rows<StatsRow & { route: string; share: number }>(
    routesQuery('gatescope', source, {}, { sort: 'route', order: 'asc', limit: 1000 }),
  );
}

beforeAll(async () => {
  ({ ch, cleanup } = await openEngine());
  // 200k requests over the 3 days before NOW, 20 routes.
  await generate(ch, { startMs: NOW - 72 * H, spanMs: 72 * H, total: 200_000, chunk: 100_000 });
  app = await buildApp({ config: testConfig(), clickhouse: ch, now: () => NOW, logger: false });
  await app.ready();
  reader = new QueryReader({ clickhouse: ch, limits: testConfig().query.limits, now: () => NOW });
});
afterAll(async () => {
  await app?.close();
  await cleanup?.();
});

describe('coarse rollups', () => {
  it('answer 24 h and 3 days of routes from days and 4-hour blocks with the hourly rollup’s very numbers', async () => {
    const day = await get(`/api/v1/routes?${DAY}&sort=route&limit=1000`);
    expect(day.source).toMatchObject({ kind: 'routes', table: 'http_routes_1h', granularity_s: 3600 });
    // 09:00 .. 09:00: 4-hour blocks from 12:00 to 08:00, hours at both ends (no whole day inside).
    expect(day.source.tables).toEqual(['http_routes_1h', 'http_routes_4h']);
    const three = await get(`/api/v1/routes?${THREE_DAYS}&sort=route&limit=1000`);
    expect(three.source.tables).toContain('http_routes_1d');
    for (const range of [
      { from: NOW - 24 * H, to: NOW },
      { from: NOW - 72 * H, to: NOW },
      { from: NOW - 31 * H, to: NOW - 2 * H },
    ]) {
      const coarse = await coarseRoutes(range);
      expect(coarse.length).toBe(20);
      // Counts, bytes, max and the four quantiles: equal, not close.
      expect(coarse).toEqual(await hourlyRoutes(range));
    }
    // And the API serves exactly those numbers.
    const rows = await coarseRoutes({ from: NOW - 24 * H, to: NOW });
    expect(day.routes.map((r: any) => [r.route, r.requests, r.p50_ms, r.p99_ms])).toEqual(
      rows.map((r) => [r.route, toStats(r, 1).requests, toStats(r, 1).p50_ms, toStats(r, 1).p99_ms]),
    );
  });

  it('answer an unfiltered 24 h series from one state per hour, equal to the per-route hourly states merged', async () => {
    const body = await get(`/api/v1/timeseries?${DAY}&step=1h&metrics=requests,p50_ms,p99_ms`);
    expect(body.source).toMatchObject({ kind: 'totals', table: 'http_totals_1h' });
    const source: Source = {
      kind: 'routes',
      granularity_s: 3600,
      table: 'http_routes_1h',
      from: NOW - 24 * H,
      to: NOW,
    };
    const hourly = await reader.rows<StatsRow & { t: number }>(
      timeseriesQuery('gatescope', source, {}, { step_s: 3600, withQuantiles: true }),
    );
    expect(hourly.length).toBe(24);
    const series = (m: string) => body.series.find((s: any) => s.labels.metric === m).points;
    const stats = hourly.map((r) => toStats(r, 3600));
    expect(series('requests').map((p: number[]) => p[1])).toEqual(stats.map((s) => s.requests));
    expect(series('p50_ms').map((p: number[]) => p[1])).toEqual(stats.map((s) => s.p50_ms));
    expect(series('p99_ms').map((p: number[]) => p[1])).toEqual(stats.map((s) => s.p99_ms));
  });

  it('take a late entry into a closed hour inside a 4-hour block and a day', async () => {
    const before = await get(`/api/v1/routes?${THREE_DAYS}&route=route-01`);
    const summaryBefore = await get(`/api/v1/summary?${THREE_DAYS}`);
    expect(summaryBefore.source.table).toBe('http_totals_1h');
    // 50 hours ago: inside a whole day of the 3-day range and a 4-hour block of it.
    await ch.client.insert({
      table: 'gatescope.http_requests',
      values: [
        {
          start_time: iso(NOW - 50 * H + 17 * 60_000)
            .replace('T', ' ')
            .replace('Z', ''),
          duration_ms: 98_765,
          response_code: 503,
          route_name: 'route-01',
          upstream_cluster: 'outbound|80||svc-1.default.svc.cluster.local',
          request_id: 'late-1',
        },
      ],
      format: 'JSONEachRow',
    });
    const after = await get(`/api/v1/routes?${THREE_DAYS}&route=route-01`);
    expect(after.source.tables).toContain('http_routes_1d');
    expect(after.routes[0].requests).toBe(before.routes[0].requests + 1);
    expect(after.routes[0].status_classes['5xx']).toBe(before.routes[0].status_classes['5xx'] + 1);
    expect(after.routes[0].max_ms).toBe(98_765);
    const summaryAfter = await get(`/api/v1/summary?${THREE_DAYS}`);
    expect(summaryAfter.requests).toBe(summaryBefore.requests + 1);
    expect(summaryAfter.max_ms).toBe(98_765);
    expect(await coarseRoutes({ from: NOW - 72 * H, to: NOW })).toEqual(
      await hourlyRoutes({ from: NOW - 72 * H, to: NOW }),
    );
  });

  it('are rebuilt from the hourly rollup by the migration’s backfill', async () => {
    const range = { from: NOW - 72 * H, to: NOW };
    const expected = await hourlyRoutes(range);
    const totals = await get(`/api/v1/summary?${THREE_DAYS}`);
    for (const t of ['http_totals_1h', 'http_routes_4h', 'http_routes_1d'])
      await ch.client.command({ query: `TRUNCATE TABLE gatescope.${t}` });
    expect((await get(`/api/v1/summary?${THREE_DAYS}`)).requests).toBe(0);
    const m = listMigrations().find((x) => x.version === 6)!;
    for (const statement of renderMigration(m.sql, {
      database: 'gatescope',
      retentionDays: 3650,
      rollupRetentionDays: 3650,
    }))
      await ch.client.command({ query: statement });
    expect(await coarseRoutes(range)).toEqual(expected);
    const again = await get(`/api/v1/summary?${THREE_DAYS}`);
    expect(again).toEqual(totals);
  });
});
