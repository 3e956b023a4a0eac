import { ident } from '@gatescope/clickhouse';
import { latencyQuantilesMergeSql, latencyQuantilesSql } from './quantiles.js';

/**
 * The SQL of every panel of the shipped Grafana dashboard (dashboards/grafana/gatescope-overview.json), rendered
 * here so a panel computes what the API computes: the same rollup tables, the same status classes, the same
 * quantile (quantilesDD 0.5 %, quantiles.ts). Grafana's ClickHouse data source expands `$__timeFilter(col)` and the
 * `$route` variable; `npm run dashboards` writes these into the JSON and a test fails when the two drift.
 *
 * Per-minute panels read the per-minute rollups: a panel value for a minute is the API's timeseries value for that
 * minute with `step=1m` (the e2e dashboards test compares them).
 */
export interface GrafanaPanelSql {
  /** The panel's title, as in the dashboard JSON (its key there). */
  title: string;
  rawSql: string;
}

const ROUTE = `($route = '' OR route_name = $route)`;

export function grafanaPanels(database = 'gatescope'): GrafanaPanelSql[] {
  const db = ident(database);
  const minute = (table: string) => `FROM ${db}.${table} WHERE $__timeFilter(bucket_start) AND ${ROUTE}`;
  return [
    {
      title: 'Requests per second by route',
      rawSql: `SELECT bucket_start AS time, route_name, sum(requests) / 60 AS rps ${minute('http_routes_1m')} GROUP BY time, route_name ORDER BY time`,
    },
    {
      title: '5xx error rate by route',
      rawSql: `SELECT bucket_start AS time, route_name, sum(requests_5xx) / sum(requests) AS error_rate ${minute('http_routes_1m')} GROUP BY time, route_name ORDER BY time`,
    },
    {
      title: 'Latency p50 / p90 / p95 / p99 (ms, Envoy %DURATION%)',
      rawSql: `WITH ${latencyQuantilesMergeSql()} AS q SELECT bucket_start AS time, q[1] AS p50_ms, q[2] AS p90_ms, q[3] AS p95_ms, q[4] AS p99_ms ${minute('http_routes_1m')} GROUP BY time ORDER BY time`,
    },
    {
      title: 'Status classes',
      rawSql: `SELECT bucket_start AS time, sum(requests_2xx) AS \`2xx\`, sum(requests_3xx) AS \`3xx\`, sum(requests_4xx) AS \`4xx\`, sum(requests_5xx) AS \`5xx\`, sum(requests_none) AS \`no response\` ${minute('http_routes_1m')} GROUP BY time ORDER BY time`,
    },
    {
      title: 'Canary split: share of requests per upstream cluster',
      rawSql: `SELECT bucket_start AS time, upstream_cluster, sum(requests) / sum(sum(requests)) OVER (PARTITION BY bucket_start) AS share ${minute('http_routes_1m')} AND upstream_cluster != '' GROUP BY time, upstream_cluster ORDER BY time`,
    },
    {
      title: 'Canary split: p99 per upstream cluster (ms)',
      rawSql: `WITH ${latencyQuantilesMergeSql()} AS q SELECT bucket_start AS time, upstream_cluster, q[4] AS p99_ms ${minute('http_routes_1m')} AND upstream_cluster != '' GROUP BY time, upstream_cluster ORDER BY time`,
    },
    {
      title: 'Non-2xx by response code, Envoy response flags and route',
      rawSql: `SELECT route_name AS route, response_code, arrayStringConcat(response_flags, ',') AS response_flags, sum(requests) AS requests ${minute('http_requests_1m')} AND status_class != '2xx' GROUP BY route, response_code, response_flags ORDER BY requests DESC LIMIT 100`,
    },
    {
      title: 'Top path templates (raw requests)',
      rawSql: `WITH ${latencyQuantilesSql()} AS q SELECT path_template, count() AS requests, countIf(status_class = '5xx') / count() AS error_rate, q[4] AS p99_ms FROM ${db}.http_requests WHERE $__timeFilter(start_time) AND ${ROUTE} GROUP BY path_template ORDER BY requests DESC LIMIT 50`,
    },
  ];
}

/** The dashboard's `route` variable: routes seen in the last 7 days, and '' for all. */
export function grafanaRouteVariableSql(database = 'gatescope'): string {
  return `SELECT '' UNION ALL SELECT DISTINCT route_name FROM ${ident(database)}.http_routes_1h WHERE bucket_start > now() - INTERVAL 7 DAY`;
}
