import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClickHouse, migrate, type ClickHouse } from '@gatescope/clickhouse';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

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
