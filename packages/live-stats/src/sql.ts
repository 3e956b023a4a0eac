import { ident, queryLimitSettings, settingsClause, type QueryLimits } from '@gatescope/clickhouse';
import { filterClause, type LiveFilters } from './filters.js';

/**
 * The SQL of one live tick. Two cheap queries over `http_requests`, both bounded by `start_time` (the leading
 * column of the sort key after the hour), both parameterised:
 * - `window`: per-route totals over the rolling window (default 60 s) plus the all-routes totals (the empty grouping
 *   set, first row, `is_total = 1`),
 *   with a per-second request count per route for sparklines;
 * - `points`: per-second points over a range — the whole chart history (15 min) once, then only the last seconds
 *   each tick, since older seconds no longer change.
 */
export interface LiveQuery {
  sql: string;
  params: Record<string, string | number | readonly string[]>;
}

/** The query with the configured limits (GATESCOPE_QUERY_MAX_*) in its own SETTINGS clause. */
export function limited(q: LiveQuery, limits: QueryLimits): LiveQuery {
  return { sql: q.sql + settingsClause(queryLimitSettings(limits)), params: q.params };
}

const STATUS_COUNTS = `countIf(status_class = '1xx') AS c1xx, countIf(status_class = '2xx') AS c2xx,
    countIf(status_class = '3xx') AS c3xx, countIf(status_class = '4xx') AS c4xx,
    countIf(status_class = '5xx') AS c5xx, countIf(status_class = 'none') AS cnone`;

const RANGE =
  'start_time >= fromUnixTimestamp64Milli({from_ms:Int64}) AND start_time < fromUnixTimestamp64Milli({to_ms:Int64})';

export interface WindowQueryOptions {
  database: string;
  filters: LiveFilters;
  fromMs: number;
  toMs: number;
  /** Most routes returned (busiest first); totals still cover every route. */
  routeLimit?: number;
}

export function windowQuery(o: WindowQueryOptions): LiveQuery {
  const f = filterClause(o.filters);
  const sql = `SELECT route, grouping(route) = 1 AS is_total, sum(n) AS requests, sum(e) AS errors, quantilesMerge(0.5, 0.99)(q) AS qs,
    sum(c1xx) AS c1xx, sum(c2xx) AS c2xx, sum(c3xx) AS c3xx, sum(c4xx) AS c4xx, sum(c5xx) AS c5xx, sum(cnone) AS cnone,
    groupArray((s, n)) AS spark
FROM (
    SELECT route_name AS route, toUInt32(toUnixTimestamp(start_time)) AS s, count() AS n,
    countIf(response_code >= 500) AS e, quantilesState(0.5, 0.99)(duration_ms) AS q,
    ${STATUS_COUNTS}
    FROM ${ident(o.database)}.http_requests
    WHERE ${RANGE}${f.sql}
    GROUP BY route, s
)
GROUP BY GROUPING SETS ((route), ())
ORDER BY is_total DESC, requests DESC, route
LIMIT {route_limit:UInt32}`;
  return {
    sql,
    params: { ...f.params, from_ms: o.fromMs, to_ms: o.toMs, route_limit: (o.routeLimit ?? 500) + 1 },
  };
}

export interface PointsQueryOptions {
  database: string;
  filters: LiveFilters;
  fromMs: number;
  toMs: number;
}

export function pointsQuery(o: PointsQueryOptions): LiveQuery {
  const f = filterClause(o.filters);
  const sql = `SELECT toUInt32(toUnixTimestamp(start_time)) AS s, count() AS requests, countIf(response_code >= 500) AS errors,
    quantiles(0.5, 0.99)(duration_ms) AS qs,
    ${STATUS_COUNTS}
FROM ${ident(o.database)}.http_requests
WHERE ${RANGE}${f.sql}
GROUP BY s
ORDER BY s`;
  return { sql, params: { ...f.params, from_ms: o.fromMs, to_ms: o.toMs } };
}

/**
 * The live tail: rows stored since the last poll. `start_time` is when the request started and Envoy logs at
 * completion, and the collector commits in batches, so rows arrive out of order: each poll re-reads a short
 * look-back (`from_ms`) and the caller drops rows it has already seen (see `TailCursor`). Every stored column,
 * plus the materialised `status_class`, as the request explorer shows them. Newest first, bounded.
 */
export function tailQuery(o: {
  database: string;
  filters: LiveFilters;
  fromMs: number;
  limit: number;
}): LiveQuery {
  const f = filterClause(o.filters);
  const sql = `SELECT *, status_class, toUnixTimestamp64Micro(start_time) AS start_time_us
FROM ${ident(o.database)}.http_requests
WHERE start_time >= fromUnixTimestamp64Milli({from_ms:Int64})${f.sql}
ORDER BY start_time DESC
LIMIT {limit:UInt32}`;
  return { sql, params: { ...f.params, from_ms: o.fromMs, limit: o.limit } };
}
