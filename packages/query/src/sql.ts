import { ident, queryLimitSettings, settingsClause, type QueryLimits } from '@gatescope/clickhouse';
import type { Dimension, Source } from './plan.js';
import type { Filters } from './params.js';
import type { StatsRow } from './stats.js';
import {
  latencyQuantilesMergeSql,
  latencyQuantilesSql,
  LATENCY_QUANTILES_MERGE,
  LATENCY_QUANTILES_MERGE_STATE,
  LATENCY_QUANTILES_STATE,
  QUANTILE_NAMES,
} from './quantiles.js';

/** A statement and its bound parameters: user values only ever travel in `params` (`{name:Type}` placeholders). */
export interface BuiltQuery {
  query: string;
  params: Record<string, unknown>;
}

/** Merging the rollups' states (see quantiles.ts: the same numbers as the raw rows' quantilesDD). */
export const ROLLUP_QUANTILES = LATENCY_QUANTILES_MERGE;

const FILTER_SQL: Record<Exclude<keyof Filters, 'restriction'>, string> = {
  gateway: '(node_id IN {gateway:Array(String)} OR node_cluster IN {gateway:Array(String)})',
  authority: 'authority IN {authority:Array(String)}',
  route: 'route_name IN {route:Array(String)}',
  upstream_cluster: 'upstream_cluster IN {upstream_cluster:Array(String)}',
  method: 'method IN {method:Array(String)}',
  status_class: 'status_class IN {status_class:Array(String)}',
  response_flag: 'hasAny(response_flags, {response_flag:Array(String)})',
  path_template: 'path_template IN {path_template:Array(String)}',
};

/** Columns a question may group by, as they are named in every source that keeps them. */
export const DIMENSION_COLUMNS: Partial<Record<Dimension, string>> = {
  route: 'route_name',
  upstream_cluster: 'upstream_cluster',
  authority: 'authority',
  status_class: 'status_class',
  method: 'method',
  gateway: 'node_id',
};

/**
 * What a statement reads `source` from: its table, or for a tiered source (`parts`, plan.ts `tierParts`) the parts'
 * rows in one UNION ALL, each table over its own whole blocks. The parts have the same columns (one family), so the
 * aggregates over them are those over the finest table alone: sums add, DD states merge exactly.
 */
export function sourceFrom(database: string, source: Source): BuiltQuery {
  if (!source.parts) return { query: `${ident(database)}.${ident(source.table)}`, params: {} };
  const params: Record<string, unknown> = {};
  const branches = source.parts.map((part, i) => {
    params[`part${i}_from_ms`] = part.from;
    params[`part${i}_to_ms`] = part.to;
    return (
      `SELECT * FROM ${ident(database)}.${ident(part.table)} WHERE bucket_start >= fromUnixTimestamp64Milli({part${i}_from_ms:Int64}, 'UTC')` +
      ` AND bucket_start < fromUnixTimestamp64Milli({part${i}_to_ms:Int64}, 'UTC')`
    );
  });
  return { query: `(\n  ${branches.join('\n  UNION ALL\n  ')}\n)`, params };
}

export function timeColumn(source: Source): string {
  return source.kind === 'raw' ? 'start_time' : 'bucket_start';
}

/** The WHERE clause for the source's time range and the filters. */
export function whereClause(source: Source, filters: Filters, extra: string[] = []): BuiltQuery {
  const t = timeColumn(source);
  const f = filterConditions(filters);
  // A tiered source's FROM bounds the time of each part (`sourceFrom`); the same bounds again over the UNION ALL
  // cost the engine ≈ 2 ms of CPU per 24 h routes read (19.1 vs 16.9 ms, median of 37 interleaved) for nothing.
  if (source.parts) return { query: [...f.conditions, ...extra].join(' AND ') || '1', params: f.params };
  return {
    query: [
      `${t} >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')`,
      `${t} < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')`,
      ...f.conditions,
      ...extra,
    ].join(' AND '),
    params: { from_ms: source.from, to_ms: source.to, ...f.params },
  };
}

/**
 * The filters (and the caller's token restriction) as conditions, every value a bound parameter. One definition for
 * the API, the live ticks, the alert evaluator and the dashboards' SQL.
 */
export function filterConditions(filters: Filters): {
  conditions: string[];
  params: Record<string, unknown>;
} {
  const parts: string[] = [];
  const params: Record<string, unknown> = {};
  for (const name of Object.keys(FILTER_SQL) as (keyof typeof FILTER_SQL)[]) {
    const values = filters[name];
    if (!values?.length) continue;
    parts.push(FILTER_SQL[name]);
    params[name] = values;
  }
  const r = filters.restriction;
  if (r?.authorities) {
    parts.push('authority IN {restricted_authority:Array(String)}');
    params.restricted_authority = r.authorities;
  }
  if (r?.gateways) {
    parts.push(
      '(node_id IN {restricted_gateway:Array(String)} OR node_cluster IN {restricted_gateway:Array(String)})',
    );
    params.restricted_gateway = r.gateways;
  }
  return { conditions: parts, params };
}

const STATUS_CLASS_SUFFIXES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'none'] as const;

/**
 * The aggregate columns of every stats row: requests, requests_<class>, bytes_sent, bytes_received, max_ms and
 * q (p50, p90, p95, p99), the same names whichever source answers. Raw rows give exact quantiles, rollups
 * merge their quantilesDD states (0.5 % relative accuracy).
 */
export function statsColumns(source: Source, withQuantiles = true): string {
  if (source.kind !== 'raw')
    return rollupStatsAggregates({ withQuantiles })
      .map(([name, sql]) => `${sql} AS ${name}`)
      .join(',\n  ');
  const cols = [
    'count() AS requests',
    ...STATUS_CLASS_SUFFIXES.map((c) => `countIf(status_class = '${c}') AS requests_${c}`),
    'sum(bytes_sent) AS bytes_sent',
    'sum(bytes_received) AS bytes_received',
    'max(duration_ms) AS max_ms',
  ];
  if (withQuantiles) cols.push(`${latencyQuantilesSql()} AS q`);
  return cols.join(',\n  ');
}

/**
 * `statsColumns` over rollup-shaped rows (a rollup table, or a subquery of `rollupColumns`) as `[name, expression]`
 * pairs, in its order. With `where`, each is the `-If` aggregate of the rows meeting that condition (`sumIf`,
 * `quantilesDDMergeIf` …): one scan answers several questions, each with its own numbers.
 */
export function rollupStatsAggregates(
  opts: { withQuantiles?: boolean; where?: string } = {},
): [name: string, sql: string][] {
  const agg = (fn: string, arg: string) => (opts.where ? `${fn}If(${arg}, ${opts.where})` : `${fn}(${arg})`);
  const cols: [string, string][] = [
    ['requests', agg('sum', 'requests')],
    ...STATUS_CLASS_SUFFIXES.map((c): [string, string] => [`requests_${c}`, agg('sum', `requests_${c}`)]),
    ['bytes_sent', agg('sum', 'bytes_sent')],
    ['bytes_received', agg('sum', 'bytes_received')],
    ['max_ms', agg('max', 'duration_max_ms')],
  ];
  if (opts.withQuantiles ?? true)
    cols.push(['q', latencyQuantilesMergeSql('duration_quantiles', opts.where)]);
  return cols;
}

/**
 * Raw rows aggregated into rollup-shaped columns (what migrations/0002's http_requests_1m_mv writes), so
 * `statsColumns` of a rollup source reads them: the live window aggregates per second this way and merges.
 */
export function rollupColumnsFromRaw(): string {
  return rollupColumns('raw');
}

/**
 * A source's rows aggregated into rollup-shaped columns, the shape `statsColumns` of a rollup reads: raw rows as
 * http_requests_1m_mv aggregates them, rollup rows re-merged as the cascading views do (sums and DD states merge
 * exactly, in any grouping). `table` qualifies every column read (`src.requests`), so an alias (`requests`) never
 * captures a column that another aggregate of the same SELECT reads.
 */
export function rollupColumns(
  kind: Source['kind'],
  opts: { table?: string; withQuantiles?: boolean } = {},
): string {
  const c = (name: string) => (opts.table ? `${opts.table}.${name}` : name);
  const raw = kind === 'raw';
  const cols = [
    raw ? 'count() AS requests' : `sum(${c('requests')}) AS requests`,
    ...STATUS_CLASS_SUFFIXES.map((s) =>
      raw
        ? `countIf(${c('status_class')} = '${s}') AS requests_${s}`
        : `sum(${c(`requests_${s}`)}) AS requests_${s}`,
    ),
    `sum(${c('bytes_sent')}) AS bytes_sent`,
    `sum(${c('bytes_received')}) AS bytes_received`,
    `max(${c(raw ? 'duration_ms' : 'duration_max_ms')}) AS duration_max_ms`,
  ];
  if (opts.withQuantiles ?? true)
    cols.push(
      raw
        ? `${LATENCY_QUANTILES_STATE}(${c('duration_ms')}) AS duration_quantiles`
        : `${LATENCY_QUANTILES_MERGE_STATE}(${c('duration_quantiles')}) AS duration_quantiles`,
    );
  return cols.join(',\n    ');
}

export function summaryQuery(database: string, source: Source, filters: Filters): BuiltQuery {
  const where = whereClause(source, filters);
  const table = sourceFrom(database, source);
  return {
    query: `SELECT\n  ${statsColumns(source)}\nFROM ${table.query}\nWHERE ${where.query}`,
    params: { ...where.params, ...table.params },
  };
}

/** The per-window numbers every stats answer carries (API, live, timeseries metrics). */
export const STATS_METRICS = [
  'requests',
  'rps',
  'error_rate',
  ...QUANTILE_NAMES,
  'max_ms',
  'bytes_sent',
  'bytes_received',
] as const;
export const ROUTE_SORTS = [...STATS_METRICS, 'route'] as const;
export type RouteSort = (typeof ROUTE_SORTS)[number];
const SORT_SQL: Record<RouteSort, string> = {
  requests: 'requests',
  rps: 'requests',
  error_rate: 'requests_5xx / requests',
  p50_ms: 'q[1]',
  p90_ms: 'q[2]',
  p95_ms: 'q[3]',
  p99_ms: 'q[4]',
  max_ms: 'max_ms',
  bytes_sent: 'bytes_sent',
  bytes_received: 'bytes_received',
  route: 'route',
};

/**
 * `ORDER BY <SORT_SQL[sort]> <order> NULLS LAST, route ASC` on rows already aggregated (a bucket cache's answer,
 * `QueryReader.windowSeries`): the same keys from the same numbers (quantiles unrounded, as the statement sorts
 * them), NaN and null last as ClickHouse puts them, strings compared as ClickHouse compares them (UTF-8 bytes).
 */
export function sortByRouteSort<T extends StatsRow & { route: string }>(
  rows: readonly T[],
  sort: RouteSort,
  order: 'asc' | 'desc',
): T[] {
  const quantile = (i: number) => (r: T) =>
    r.q?.[i] === undefined || r.q[i] === null ? null : Number(r.q[i]);
  const KEY: Record<RouteSort, (r: T) => number | string | null> = {
    requests: (r) => Number(r.requests),
    rps: (r) => Number(r.requests),
    error_rate: (r) => Number(r.requests_5xx) / Number(r.requests),
    p50_ms: quantile(0),
    p90_ms: quantile(1),
    p95_ms: quantile(2),
    p99_ms: quantile(3),
    max_ms: (r) => (r.max_ms === null ? null : Number(r.max_ms)),
    bytes_sent: (r) => Number(r.bytes_sent),
    bytes_received: (r) => Number(r.bytes_received),
    route: (r) => r.route,
  };
  const key = KEY[sort];
  const sign = order === 'asc' ? 1 : -1;
  const keyed = rows.map((r) => ({ r, k: key(r) }));
  keyed.sort((a, b) => {
    const aMissing = a.k === null || (typeof a.k === 'number' && Number.isNaN(a.k));
    const bMissing = b.k === null || (typeof b.k === 'number' && Number.isNaN(b.k));
    if (aMissing !== bMissing) return aMissing ? 1 : -1;
    if (!aMissing && a.k !== b.k) return sign * compareValues(a.k!, b.k!);
    return compareValues(a.r.route, b.r.route);
  });
  return keyed.map((x) => x.r);
}

/** Numbers by value, strings as ClickHouse orders them: by their UTF-8 bytes. */
export function compareValues(a: number | string, b: number | string): number {
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0;
  return Buffer.compare(Buffer.from(String(a)), Buffer.from(String(b)));
}

export function routesQuery(
  database: string,
  source: Source,
  filters: Filters,
  opts: { sort: RouteSort; order: 'asc' | 'desc'; limit: number },
): BuiltQuery {
  const where = whereClause(source, filters);
  const table = sourceFrom(database, source);
  const dir = opts.order === 'asc' ? 'ASC' : 'DESC';
  return {
    query:
      `SELECT\n  route_name AS route,\n  ${statsColumns(source)},\n  requests / sum(requests) OVER () AS share\n` +
      `FROM ${table.query}\nWHERE ${where.query}\nGROUP BY route_name\n` +
      `ORDER BY ${SORT_SQL[opts.sort]} ${dir} NULLS LAST, route ASC\nLIMIT {limit:UInt32}`,
    params: { ...where.params, ...table.params, limit: opts.limit },
  };
}

/** Upstream clusters a canary split lists at most. */
export const SPLIT_LIMIT = 1000;

export function splitQuery(database: string, source: Source, filters: Filters): BuiltQuery {
  const where = whereClause(source, filters);
  const table = sourceFrom(database, source);
  return {
    query:
      `SELECT\n  upstream_cluster,\n  ${statsColumns(source)}\nFROM ${table.query}\nWHERE ${where.query}\n` +
      `GROUP BY upstream_cluster\nORDER BY requests DESC, upstream_cluster ASC\nLIMIT {limit:UInt32}`,
    params: { ...where.params, ...table.params, limit: SPLIT_LIMIT },
  };
}

export function timeseriesQuery(
  database: string,
  source: Source,
  filters: Filters,
  opts: { step_s: number; groupBy?: Dimension; withQuantiles: boolean },
): BuiltQuery {
  const where = whereClause(source, filters);
  const table = sourceFrom(database, source);
  const t = timeColumn(source);
  const g = opts.groupBy ? DIMENSION_COLUMNS[opts.groupBy] : undefined;
  if (opts.groupBy && !g) throw new Error(`cannot group by ${opts.groupBy}`);
  return {
    query:
      `SELECT\n  intDiv(toUInt32(toUnixTimestamp(${t})), {step_s:UInt32}) * {step_s:UInt32} AS t,\n` +
      (g ? `  toString(${g}) AS g,\n` : '') +
      `  ${statsColumns(source, opts.withQuantiles)}\nFROM ${table.query}\nWHERE ${where.query}\n` +
      `GROUP BY t${g ? ', g' : ''}\nORDER BY t${g ? ', g' : ''}`,
    params: { ...where.params, ...table.params, step_s: opts.step_s },
  };
}

export function statusQuery(database: string, source: Source, filters: Filters, limit: number): BuiltQuery {
  const where = whereClause(source, filters);
  const table = sourceFrom(database, source);
  const count = source.kind === 'raw' ? 'count()' : 'sum(requests)';
  return {
    query:
      `SELECT\n  response_code,\n  any(status_class) AS status_class,\n  response_flags,\n  route_name AS route,\n  ${count} AS requests,\n` +
      `  requests / sum(requests) OVER () AS share\n` +
      `FROM ${table.query}\nWHERE ${where.query}\n` +
      `GROUP BY response_code, response_flags, route_name\n` +
      `ORDER BY status_class = '2xx' ASC, requests DESC, response_code ASC, route ASC\nLIMIT {limit:UInt32}`,
    params: { ...where.params, ...table.params, limit },
  };
}

/**
 * Dead letters waiting for `gatescope dead-letters replay`, by table, reason and error: the newest state of each
 * file in `ingest_dead_letters`, which every collector keeps up to date (the files are on the collectors' disks).
 */
export function deadLettersQuery(database: string): BuiltQuery {
  return {
    query:
      `SELECT table_name AS table, reason, error_name, count() AS files, sum(entries) AS entries,\n` +
      `  min(created_at) AS oldest, max(created_at) AS newest\n` +
      `FROM ${database}.ingest_dead_letters FINAL\nWHERE state = 'parked'\n` +
      `GROUP BY table_name, reason, error_name\nORDER BY entries DESC, table, reason, error_name`,
    params: {},
  };
}

export const TOP_DIMENSIONS = [
  'path_template',
  'path',
  'authority',
  'downstream_remote_address',
  'user_agent',
  'upstream_host',
] as const;
export type TopDimension = (typeof TOP_DIMENSIONS)[number];
export const TOP_SORTS = ['requests', 'errors', 'p99_ms'] as const;
export type TopSort = (typeof TOP_SORTS)[number];

export function topQuery(
  database: string,
  source: Source,
  filters: Filters,
  opts: { dimension: TopDimension; by: TopSort; limit: number },
): BuiltQuery {
  if (source.kind !== 'raw') throw new Error('top is answered from raw rows');
  const where = whereClause(source, filters);
  const table = sourceFrom(database, source);
  const col = ident(opts.dimension);
  return {
    query:
      `SELECT\n  toString(${col}) AS value,\n  count() AS requests,\n  countIf(status_class = '5xx') AS errors,\n` +
      `  errors / requests AS error_rate,\n  ${latencyQuantilesSql()} AS q,\n  q[1] AS p50_ms,\n  q[4] AS p99_ms,\n` +
      `  requests / sum(requests) OVER () AS share\n` +
      `FROM ${table.query}\nWHERE ${where.query}\nGROUP BY value\n` +
      `ORDER BY ${ident(opts.by)} DESC, requests DESC, value ASC\nLIMIT {limit:UInt32}`,
    params: { ...where.params, ...table.params, limit: opts.limit },
  };
}

/** Position of the last row of a page: the next page starts strictly after it (newest first). */
export interface RequestsCursor {
  /** start_time as ClickHouse prints DateTime64(6): `2024-05-01 10:00:00.123456`. */
  t: string;
  id: string;
}

export function encodeCursor(c: RequestsCursor): string {
  return Buffer.from(JSON.stringify([c.t, c.id]), 'utf8').toString('base64url');
}

export function decodeCursor(text: string): RequestsCursor | undefined {
  try {
    const v = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string') {
      if (!/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?$/.test(v[0])) return undefined;
      return { t: v[0], id: v[1] };
    }
  } catch {
    /* not a cursor */
  }
  return undefined;
}

export function requestsQuery(
  database: string,
  source: Source,
  filters: Filters,
  opts: {
    limit: number;
    cursor?: RequestsCursor;
    request_id?: string;
    min_duration_ms?: number;
    response_code?: number;
  },
): BuiltQuery {
  const extra: string[] = [];
  const params: Record<string, unknown> = { limit: opts.limit + 1 };
  if (opts.request_id !== undefined) {
    extra.push('request_id = {request_id:String}');
    params.request_id = opts.request_id;
  }
  if (opts.min_duration_ms !== undefined) {
    extra.push('duration_ms >= {min_duration_ms:Float64}');
    params.min_duration_ms = opts.min_duration_ms;
  }
  if (opts.response_code !== undefined) {
    extra.push('response_code = {response_code:UInt16}');
    params.response_code = opts.response_code;
  }
  if (opts.cursor) {
    extra.push(`(start_time, request_id) < (toDateTime64({cursor_t:String}, 6, 'UTC'), {cursor_id:String})`);
    params.cursor_t = opts.cursor.t;
    params.cursor_id = opts.cursor.id;
  }
  const where = whereClause(source, filters, extra);
  const table = sourceFrom(database, source);
  return {
    query:
      `SELECT *, status_class, formatDateTime(start_time, '%Y-%m-%d %H:%i:%S.%f', 'UTC') AS cursor_time\n` +
      `FROM ${table.query}\nWHERE ${where.query}\nORDER BY start_time DESC, request_id DESC\nLIMIT {limit:UInt32}`,
    params: { ...where.params, ...table.params, ...params },
  };
}

/** The statement with the per-query limits from configuration in its own SETTINGS clause. */
export function withLimits(q: BuiltQuery, limits: QueryLimits): BuiltQuery {
  return { query: q.query + settingsClause(queryLimitSettings(limits)), params: q.params };
}

/** What reading `source` (a rollup) would cost: the raw rows it stands for and the states it would merge. */
export function estimateQuery(database: string, source: Source): BuiltQuery {
  return {
    query: `SELECT sum(requests) AS raw_rows, count() AS states FROM ${database}.${source.table} WHERE bucket_start >= fromUnixTimestamp64Milli({from:Int64}) AND bucket_start < fromUnixTimestamp64Milli({to:Int64})`,
    params: { from: source.from, to: source.to },
  };
}
