import { ident } from '@gatescope/clickhouse';
import { STATUS_CLASSES, type Filters } from './params.js';
import { rawSource, type Source } from './plan.js';
import { filterConditions, rollupColumnsFromRaw, statsColumns, whereClause, type BuiltQuery } from './sql.js';

/**
 * The SQL of one live tick, built from the same pieces as the API's (filters, stats columns, quantile), so a live
 * number is the API's number for the same seconds. Both read `http_requests` bounded by `start_time`:
 * - `liveWindowQuery`: per-route stats over the rolling window plus the all-routes row (`is_total = 1`, first), and a
 *   per-second request count per route for sparklines. Each (route, second) is aggregated into rollup-shaped
 *   columns and states, then merged as a rollup is (`statsColumns` of a rollup source): exactly what a per-second
 *   rollup would answer.
 * - `livePointsQuery`: per-second stats over a range (the chart).
 * - `liveTailQuery`: rows stored since the last poll, newest first.
 */

/** The merge side of a per-second rollup: `statsColumns` reads the same column names from a subquery. */
const PER_SECOND: Source = { kind: 'requests', granularity_s: 1, table: '', from: 0, to: 0 };

export interface LiveRangeOptions {
  database: string;
  filters: Filters;
  fromMs: number;
  toMs: number;
}

export function liveWindowQuery(o: LiveRangeOptions & { routeLimit?: number }): BuiltQuery {
  const where = whereClause(rawSource({ from: o.fromMs, to: o.toMs }), o.filters);
  return {
    query:
      `SELECT route, grouping(route) = 1 AS is_total,\n  ${statsColumns(PER_SECOND)},\n  groupArray((s, requests_s)) AS spark\n` +
      `FROM (\n  SELECT route_name AS route, toUInt32(toUnixTimestamp(start_time)) AS s, count() AS requests_s,\n    ${rollupColumnsFromRaw()}\n` +
      `  FROM ${ident(o.database)}.http_requests\n  WHERE ${where.query}\n  GROUP BY route, s\n)\n` +
      `GROUP BY GROUPING SETS ((route), ())\nORDER BY is_total DESC, requests DESC, route\nLIMIT {route_limit:UInt32}`,
    params: { ...where.params, route_limit: (o.routeLimit ?? 500) + 1 },
  };
}

export function livePointsQuery(o: LiveRangeOptions): BuiltQuery {
  const source = rawSource({ from: o.fromMs, to: o.toMs });
  const where = whereClause(source, o.filters);
  return {
    query:
      `SELECT toUInt32(toUnixTimestamp(start_time)) AS s,\n  ${statsColumns(source)}\n` +
      `FROM ${ident(o.database)}.http_requests\nWHERE ${where.query}\nGROUP BY s\nORDER BY s`,
    params: where.params,
  };
}

/**
 * The live tail: rows stored since the last poll. `start_time` is when the request started and Envoy logs at
 * completion, and the collector commits in batches, so rows arrive out of order: each poll re-reads a short
 * look-back (`from_ms`) and the caller drops rows it has already seen. Every stored column, plus the materialised
 * `status_class`, as the request explorer shows them. Newest first, bounded.
 */
export function liveTailQuery(o: {
  database: string;
  filters: Filters;
  fromMs: number;
  limit: number;
}): BuiltQuery {
  const f = filterConditions(o.filters);
  return {
    query:
      `SELECT *, status_class, toUnixTimestamp64Micro(start_time) AS start_time_us\n` +
      `FROM ${ident(o.database)}.http_requests\n` +
      `WHERE ${["start_time >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')", ...f.conditions].join(' AND ')}\n` +
      `ORDER BY start_time DESC\nLIMIT {limit:UInt32}`,
    params: { ...f.params, from_ms: o.fromMs, limit: o.limit },
  };
}

/**
 * A decoded row (the Native block's columns, as ClickHouse prints them in JSON) as `liveTailQuery` returns it: with
 * the materialised `status_class` and `start_time_us`. The all-in-one's tail reads rows as they are decoded, before
 * ClickHouse has them; the two must not be told apart.
 */
export function liveTailRow(
  row: Record<string, unknown>,
): Record<string, unknown> & { start_time_us: number } {
  const code = Number(row.response_code);
  // The table's `status_class` (MATERIALIZED multiIf): 0 is none, below 200 1xx, … 500 and above 5xx.
  const statusClass = STATUS_CLASSES[code === 0 ? 5 : Math.min(4, Math.max(0, Math.floor(code / 100) - 1))];
  // The Native reader prints `YYYY-MM-DD hh:mm:ss.ffffff` (UTC); the reader's answers are ISO 8601
  // (`date_time_output_format = 'iso'`): `YYYY-MM-DDThh:mm:ss.ffffffZ`.
  const t = String(row.start_time);
  const iso = t.length === 26 && t[10] === ' ' ? `${t.slice(0, 10)}T${t.slice(11)}Z` : t;
  const startUs = Date.parse(`${iso.slice(0, 19)}Z`) * 1000 + Number(iso.slice(20, 26).padEnd(6, '0'));
  return { ...row, start_time: iso, status_class: statusClass, start_time_us: startUs };
}
