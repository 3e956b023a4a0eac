/* eslint-disable @typescript-eslint/no-explicit-any -- the tests read JSON response bodies */
// The hourly totals (migrations/0006: http_totals_1h) answer unfiltered, ungrouped questions with the very numbers
// the per-route hourly rollup gives: the same counts and bit-identical quantiles (DDSketch states merge exactly),
// late entries into closed hours reach them, and the migration's backfill rebuilds them from the hourly rollup.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { listMigrations, renderMigration, type ClickHouse } from '@gatescope/clickhouse';
import { QueryReader, timeseriesQuery, toStats, type Source, type StatsRow } from '@gatescope/query';
import { buildApp } from '../src/index.js';
import { generate, H, openEngine, READ, testConfig } from './fixtures.js';

// An hour-aligned clock (09:00 UTC).
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

/** The unfiltered hourly series from the per-route hourly rollup: what the API read before 0006. */
async function hourlySeries(range: { from: number; to: number }) {
  const source: Source = { kind: 'routes', granularity_s: 3600, table: 'http_routes_1h', ...range };
  return reader.rows<StatsRow & { t: number }>(
    timeseriesQuery('gatescope', source, {}, { step_s: 3600, withQuantiles: true }),
  );
}

/** The same from the totals, as the API plans it. */
async function totalsSeries(range: { from: number; to: number }) {
  const source = await reader.plan({ range, filters: {}, step_s: 3600 });
  expect(source.table).toBe('http_totals_1h');
  return reader.rows<StatsRow & { t: number }>(
    timeseriesQuery('gatescope', source, {}, { step_s: 3600, withQuantiles: true }),
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

describe('hourly totals', () => {
  it('answers an unfiltered series from one state per hour, equal to the per-route hourly states merged', async () => {
    const body = await get(`/api/v1/timeseries?${DAY}&step=1h&metrics=requests,p50_ms,p99_ms`);
    expect(body.source).toMatchObject({ kind: 'totals', table: 'http_totals_1h' });
    const hourly = await hourlySeries({ from: NOW - 24 * H, to: NOW });
    expect(hourly.length).toBe(24);
    // Counts, bytes, max and the four quantiles of every hour: equal, not close.
    expect(await totalsSeries({ from: NOW - 72 * H, to: NOW })).toEqual(
      await hourlySeries({ from: NOW - 72 * H, to: NOW }),
    );
    const series = (m: string) => body.series.find((s: any) => s.labels.metric === m).points;
    const stats = hourly.map((r) => toStats(r, 3600));
    expect(series('requests').map((p: number[]) => p[1])).toEqual(stats.map((s) => s.requests));
    expect(series('p50_ms').map((p: number[]) => p[1])).toEqual(stats.map((s) => s.p50_ms));
    expect(series('p99_ms').map((p: number[]) => p[1])).toEqual(stats.map((s) => s.p99_ms));
  });

  it('takes a late entry into a closed hour', async () => {
    const summaryBefore = await get(`/api/v1/summary?${THREE_DAYS}`);
    expect(summaryBefore.source.table).toBe('http_totals_1h');
    // 50 hours ago, long closed.
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
    const summaryAfter = await get(`/api/v1/summary?${THREE_DAYS}`);
    expect(summaryAfter.requests).toBe(summaryBefore.requests + 1);
    expect(summaryAfter.status_classes['5xx']).toBe(summaryBefore.status_classes['5xx'] + 1);
    expect(summaryAfter.max_ms).toBe(98_765);
    expect(await totalsSeries({ from: NOW - 72 * H, to: NOW })).toEqual(
      await hourlySeries({ from: NOW - 72 * H, to: NOW }),
    );
  });

  it('is rebuilt from the hourly rollup by the migration’s backfill', async () => {
    const range = { from: NOW - 72 * H, to: NOW };
    const expected = await hourlySeries(range);
    const totals = await get(`/api/v1/summary?${THREE_DAYS}`);
    await ch.client.command({ query: 'TRUNCATE TABLE gatescope.http_totals_1h' });
    expect((await get(`/api/v1/summary?${THREE_DAYS}`)).requests).toBe(0);
    const m = listMigrations().find((x) => x.version === 6)!;
    for (const statement of renderMigration(m.sql, {
      database: 'gatescope',
      retentionDays: 3650,
      rollupRetentionDays: 3650,
    }))
      await ch.client.command({ query: statement });
    expect(await totalsSeries(range)).toEqual(expected);
    const again = await get(`/api/v1/summary?${THREE_DAYS}`);
    expect(again).toEqual(totals);
  });
});
