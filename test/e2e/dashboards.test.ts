import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClickHouse, migrate, type ClickHouse } from '@gatescope/clickhouse';
import { buildApp } from '@gatescope/api';
import { grafanaPanels, grafanaRouteVariableSql } from '@gatescope/query';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { READ, testConfig } from '../../services/api/test/fixtures.js';

// The shipped Grafana dashboard queries ClickHouse directly: every panel's SQL must run against the real
// schema (macros expanded the way the ClickHouse data source does) and answer from the rollups.
const dashboard = JSON.parse(
  readFileSync(new URL('../../dashboards/grafana/gatescope-overview.json', import.meta.url), 'utf8'),
) as {
  panels: { title: string; targets: { rawSql: string }[] }[];
  templating: { list: { query: string }[] };
};
const expand = (sql: string, route: string) =>
  sql
    .replace(/\$__timeFilter\((\w+)\)/g, '$1 >= now() - INTERVAL 1 HOUR AND $1 <= now()')
    .replace(/\$route/g, `'${route}'`);

let ch: ClickHouse;
beforeAll(async () => {
  ch = await createClickHouse({ database: 'gatescope', dataDir: mkdtempSync(join(tmpdir(), 'gs-dash-')) });
  await migrate(ch, { retentionDays: 30, rollupRetentionDays: 30 });
  // 1,000 requests within one minute, ten minutes ago: route "frontend" split 50/50 across two clusters, 2 % 503 UH.
  await ch.client.command({
    query: `INSERT INTO gatescope.http_requests (start_time, duration_ms, response_code, response_flags, route_name, upstream_cluster, path, path_template)
      SELECT toDateTime64(toStartOfMinute(now()) - INTERVAL 10 MINUTE, 6) + toIntervalMillisecond(number * 50), 5 + number % 50, if(number % 50 = 0, 503, 200), if(number % 50 = 0, ['UH'], []),
             'frontend', if(number % 2 = 0, 'outbound|80||frontend.default.svc.cluster.local', 'outbound|80||frontendv2.default.svc.cluster.local'),
             concat('/product/', toString(number)), '/product/{id}'
      FROM numbers(1000)`,
  });
});
afterAll(async () => {
  await ch?.close();
});

describe('Grafana dashboard', () => {
  it('is rendered from @gatescope/query (npm run dashboards): every panel, title and SQL', () => {
    expect(dashboard.panels.map((p) => ({ title: p.title, sql: p.targets.map((t) => t.rawSql) }))).toEqual(
      grafanaPanels().map((p) => ({ title: p.title, sql: [p.rawSql] })),
    );
    expect(dashboard.templating.list[0].query).toBe(grafanaRouteVariableSql());
  });

  it('shows per minute the numbers the API gives for the same minutes (rps, 5xx rate, p50/p90/p95/p99, split)', async () => {
    const app = await buildApp({ config: testConfig(), clickhouse: ch, logger: false });
    try {
      const [{ from, to }] = await (
        await ch.client.query({
          query: `SELECT toUnixTimestamp(min(bucket_start)) * 1000 AS from, toUnixTimestamp(max(bucket_start)) * 1000 + 60000 AS to FROM gatescope.http_routes_1m`,
          format: 'JSONEachRow',
        })
      ).json<{ from: number; to: number }>();
      const window = (sql: string, route: string) =>
        sql
          .replace(
            /\$__timeFilter\((\w+)\)/g,
            `$1 >= toDateTime(${from / 1000}) AND $1 < toDateTime(${to / 1000})`,
          )
          .replace(/\$route/g, `'${route}'`);
      const panel = async <T>(title: string, route = 'frontend') =>
        (await (
          await ch.client.query({
            query: window(dashboard.panels.find((p) => p.title.startsWith(title))!.targets[0].rawSql, route),
            format: 'JSONEachRow',
          })
        ).json()) as T[];
      const api = async (query: string) => {
        const res = await app.inject({
          url: `/api/v1/timeseries?from=${from}&to=${to}&step=1m&source=rollup&${query}`,
          headers: { authorization: `Bearer ${READ}` },
        });
        expect(res.statusCode, res.body).toBe(200);
        return res.json() as {
          series: { labels: Record<string, string>; points: [number, number | null][] }[];
        };
      };
      const at = (series: { points: [number, number | null][] }, t: number) =>
        series.points.find((p) => p[0] === t)?.[1];
      const t = (time: string) => Date.parse(/Z$/.test(time) ? time : time.replace(' ', 'T') + 'Z');

      const latency = await panel<Record<string, number | string>>('Latency');
      const q = await api('route=frontend&metrics=p50_ms,p90_ms,p95_ms,p99_ms,rps,error_rate');
      expect(latency.length).toBeGreaterThan(0);
      for (const row of latency) {
        for (const m of ['p50_ms', 'p90_ms', 'p95_ms', 'p99_ms']) {
          const s = q.series.find((x) => x.labels.metric === m)!;
          // The API rounds to µs; the panel gives the engine's float: the same quantilesDD value.
          expect(at(s, t(String(row.time)))).toBe(Math.round(Number(row[m]) * 1000) / 1000);
        }
      }
      const rps = await panel<{ time: string; route_name: string; rps: number }>('Requests per second');
      const apiRps = q.series.find((x) => x.labels.metric === 'rps')!;
      for (const row of rps) expect(at(apiRps, t(row.time))).toBeCloseTo(Number(row.rps), 9);
      const err = await panel<{ time: string; error_rate: number }>('5xx error rate');
      const apiErr = q.series.find((x) => x.labels.metric === 'error_rate')!;
      for (const row of err) expect(at(apiErr, t(row.time))).toBeCloseTo(Number(row.error_rate), 9);

      const p99 = await panel<{ time: string; upstream_cluster: string; p99_ms: number }>(
        'Canary split: p99',
      );
      const byCluster = await api('route=frontend&metrics=p99_ms&group_by=upstream_cluster');
      expect(p99.length).toBe(2);
      for (const row of p99) {
        const s = byCluster.series.find((x) => x.labels.upstream_cluster === row.upstream_cluster)!;
        expect(at(s, t(row.time))).toBe(Math.round(Number(row.p99_ms) * 1000) / 1000);
      }
    } finally {
      await app.close();
    }
  });

  it('has panels whose SQL all runs against the schema', async () => {
    expect(dashboard.panels.length).toBeGreaterThanOrEqual(6);
    for (const panel of dashboard.panels) {
      for (const t of panel.targets) {
        for (const route of ['', 'frontend']) {
          const rs = await ch.client.query({ query: expand(t.rawSql, route), format: 'JSONEachRow' });
          const rows = (await rs.json()) as Record<string, unknown>[];
          expect(rows.length, `${panel.title} (route "${route}")`).toBeGreaterThan(0);
        }
      }
    }
    const routes = (await (
      await ch.client.query({ query: dashboard.templating.list[0].query, format: 'JSONEachRow' })
    ).json()) as { route_name?: string }[];
    expect(routes.length).toBeGreaterThan(1);
  });

  it('shows the canary split and the error rate the rows imply', async () => {
    const q = async <T>(sql: string) =>
      (await (await ch.client.query({ query: sql, format: 'JSONEachRow' })).json()) as T[];
    const split = dashboard.panels.find((p) => p.title.startsWith('Canary split: share'))!;
    const shares = await q<{ upstream_cluster: string; share: number }>(
      `SELECT upstream_cluster, avg(share) AS share FROM (${expand(split.targets[0].rawSql, 'frontend')}) GROUP BY upstream_cluster ORDER BY upstream_cluster`,
    );
    expect(shares.map((s) => s.upstream_cluster)).toEqual([
      'outbound|80||frontend.default.svc.cluster.local',
      'outbound|80||frontendv2.default.svc.cluster.local',
    ]);
    for (const s of shares) {
      expect(s.share).toBeCloseTo(0.5, 6);
    }
    const err = dashboard.panels.find((p) => p.title.startsWith('5xx error rate'))!;
    const [rate] = await q<{ r: number }>(
      `SELECT sum(error_rate) / count() AS r FROM (${expand(err.targets[0].rawSql, 'frontend')})`,
    );
    expect(rate.r).toBeCloseTo(0.02, 6);
  });
});
