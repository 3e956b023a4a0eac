import { QueryParamError } from './errors.js';
import { autoStep, MAX_POINTS_HARD, type Dimension, type Source, type SourceMode } from './plan.js';
import {
  parseDuration,
  singleParam,
  STATUS_CLASSES,
  type Filters,
  type RawParams,
  type TimeRange,
} from './params.js';
import type { QueryReader } from './reader.js';
import {
  compareValues,
  SPLIT_LIMIT,
  routesQuery,
  sortByRouteSort,
  splitQuery,
  STATS_METRICS,
  summaryQuery,
  timeseriesQuery,
  type RouteSort,
} from './sql.js';
import { toStats, type Stats, type StatsRow } from './stats.js';

/**
 * The questions every reader asks, answered one way: plan the source, run the statement, shape the rows. The API
 * serialises these answers, the alert evaluator judges them, and the live socket and Grafana use the same SQL
 * builders, so a number is the same wherever it is read.
 */

/** What a source is, as answers report it. */
export const sourceInfo = (s: Source) => ({
  kind: s.kind,
  table: s.table,
  granularity_s: s.granularity_s,
  /** Every table read, coarsest tier first when the window was read from tiers (plan.ts `tierParts`). */
  tables: s.parts
    ? [...new Set(s.parts.map((p) => p.table))].sort((a, b) => maxGranularity(s, b) - maxGranularity(s, a))
    : [s.table],
});
const maxGranularity = (s: Source, table: string) =>
  Math.max(...(s.parts ?? []).filter((p) => p.table === table).map((p) => p.granularity_s));

export interface WindowQuestion {
  range: TimeRange;
  filters: Filters;
  mode?: SourceMode;
}

export interface WindowStats {
  source: Source;
  stats: Stats;
}

/**
 * Totals over a window with filters: requests, rate, status classes, p50/p90/p95/p99 (quantilesDD, see
 * quantiles.ts) from raw rows or rollups as the planner chooses — the numbers the API's summary shows. The stable
 * entry point for the alert evaluator.
 */
export async function windowStats(reader: QueryReader, q: WindowQuestion): Promise<WindowStats> {
  const source = await reader.plan({ range: q.range, filters: q.filters, mode: q.mode });
  const cached = await reader.windowSeries(source, q.filters, []);
  const [row] = cached ?? (await reader.rows<StatsRow>(summaryQuery(reader.database, source, q.filters)));
  return { source, stats: toStats(row, reader.seconds(source)) };
}

export interface RouteStats extends Stats {
  route: string;
  /** Share of the window's requests. */
  share: number;
}

/** Per-route stats over a window, sorted and limited: the API's routes table and a per-route alert's input. */
export async function routeStats(
  reader: QueryReader,
  q: WindowQuestion & { sort?: RouteSort; order?: 'asc' | 'desc'; limit?: number },
): Promise<{ source: Source; routes: RouteStats[] }> {
  const source = await reader.plan({ range: q.range, filters: q.filters, mode: q.mode, groupBy: ['route'] });
  const sort = q.sort ?? 'requests';
  const order = q.order ?? (sort === 'route' ? 'asc' : 'desc');
  const limit = q.limit ?? 100;
  const cached = await reader.windowSeries(source, q.filters, ['route']);
  let list: (StatsRow & { route: string; share: number })[];
  if (cached) {
    // routesQuery's share, order and limit on the cache's rows.
    const total = cached.reduce((n, r) => n + Number(r.requests), 0);
    const rows = cached.map((r) => ({ ...r, route: r.series[0], share: Number(r.requests) / total }));
    list = sortByRouteSort(rows, sort, order).slice(0, limit);
  } else {
    list = await reader.rows(routesQuery(reader.database, source, q.filters, { sort, order, limit }));
  }
  const secs = reader.seconds(source);
  return {
    source,
    routes: list.map((r) => ({ route: r.route, share: Number(r.share) || 0, ...toStats(r, secs) })),
  };
}

// ---- time series ---------------------------------------------------------------------------------------------

export const TIMESERIES_METRICS = [...STATS_METRICS, ...STATUS_CLASSES] as const;
export type TimeseriesMetric = (typeof TIMESERIES_METRICS)[number];
export const TIMESERIES_GROUPS = [
  'route',
  'upstream_cluster',
  'status_class',
  'authority',
  'method',
  'gateway',
] as const;
export type TimeseriesGroup = (typeof TIMESERIES_GROUPS)[number];
export const DEFAULT_TIMESERIES_METRICS = 'rps,error_rate,p50_ms,p99_ms';

/** `rps,p99_ms` -> the metrics, or an error naming the one that is not a metric. */
export function parseMetrics(text: string | undefined): TimeseriesMetric[] {
  const metrics = (text ?? DEFAULT_TIMESERIES_METRICS)
    .split(',')
    .map((m) => m.trim())
    .filter(Boolean);
  const bad = metrics.find((m) => !(TIMESERIES_METRICS as readonly string[]).includes(m));
  if (bad !== undefined || metrics.length === 0) {
    throw new QueryParamError(
      'ERR_QUERY_BAD_PARAM',
      'metrics',
      `metrics: "${bad ?? ''}" is not one of ${TIMESERIES_METRICS.join(', ')}`,
    );
  }
  return metrics as TimeseriesMetric[];
}

/** The `step` parameter in seconds, or the automatic step for the range (source=rollup needs whole minutes). */
export function parseStep(params: RawParams, range: TimeRange, mode: SourceMode): number {
  const text = singleParam(params, 'step');
  if (text === undefined) return autoStep(range, mode === 'rollup' ? 60 : 0);
  const ms = parseDuration(text);
  if (ms === undefined || ms % 1000 !== 0) {
    throw new QueryParamError(
      'ERR_QUERY_BAD_STEP',
      'step',
      `step="${text}" is not a duration in whole seconds (10s, 1m, 1h)`,
    );
  }
  if ((range.to - range.from) / ms > MAX_POINTS_HARD) {
    throw new QueryParamError(
      'ERR_QUERY_BAD_STEP',
      'step',
      `step=${text} gives more than ${MAX_POINTS_HARD} points for this range: use a larger step`,
    );
  }
  return ms / 1000;
}

export interface Series {
  labels: Record<string, string>;
  /** [bucket start epoch ms, value]; every bucket of the range, empty ones filled (counts 0, latencies null). */
  points: [number, number | null][];
}

/** The value of one metric in one bucket's stats (absent bucket: counts 0, ratios and latencies null). */
export function metricValue(st: Stats | undefined, metric: TimeseriesMetric): number | null {
  switch (metric) {
    case 'requests':
    case 'rps':
    case 'bytes_sent':
    case 'bytes_received':
      return st ? st[metric] : 0;
    case 'error_rate':
      return st && st.requests > 0 ? st.error_rate : null;
    case 'p50_ms':
    case 'p90_ms':
    case 'p95_ms':
    case 'p99_ms':
    case 'max_ms':
      return st ? st[metric] : null;
    default:
      return st ? st.status_classes[metric] : 0;
  }
}

/** Bucket starts (epoch s) covering [from, to), aligned to the step. */
export function buckets(from: number, to: number, step_s: number): number[] {
  const out: number[] = [];
  for (let t = Math.floor(from / 1000 / step_s) * step_s; t * 1000 < to; t += step_s) out.push(t);
  return out;
}

/**
 * Rows of `timeseriesQuery` (one per bucket and group) -> one series per group and metric, every bucket filled,
 * the `limit` busiest groups (by requests over the range) first.
 */
export function fillSeries(
  rows: readonly (StatsRow & { t: number | string; g?: string })[],
  o: {
    from: number;
    to: number;
    step_s: number;
    metrics: readonly TimeseriesMetric[];
    groupBy?: TimeseriesGroup;
    limit?: number;
  },
): Series[] {
  const groups = new Map<string, Map<number, Stats>>();
  const totals = new Map<string, number>();
  for (const r of rows) {
    const key = r.g ?? '';
    let byT = groups.get(key);
    if (!byT) groups.set(key, (byT = new Map()));
    const st = toStats(r, o.step_s);
    byT.set(Number(r.t), st);
    totals.set(key, (totals.get(key) ?? 0) + st.requests);
  }
  if (!o.groupBy && groups.size === 0) groups.set('', new Map());
  const keys = [...groups.keys()]
    .sort((a, b) => (totals.get(b) ?? 0) - (totals.get(a) ?? 0) || a.localeCompare(b))
    .slice(0, o.limit ?? 20);
  const ts = buckets(o.from, o.to, o.step_s);
  const series: Series[] = [];
  for (const key of keys) {
    const byT = groups.get(key)!;
    for (const metric of o.metrics) {
      const labels: Record<string, string> = { metric };
      if (o.groupBy) labels[o.groupBy] = key;
      series.push({ labels, points: ts.map((t) => [t * 1000, metricValue(byT.get(t), metric)]) });
    }
  }
  return series;
}

export async function timeseries(
  reader: QueryReader,
  q: WindowQuestion & {
    step_s: number;
    metrics: readonly TimeseriesMetric[];
    groupBy?: TimeseriesGroup;
    limit?: number;
  },
): Promise<{ source: Source; step_s: number; series: Series[] }> {
  const groupBy: Dimension[] = q.groupBy ? [q.groupBy] : [];
  const source = await reader.plan({
    range: q.range,
    filters: q.filters,
    mode: q.mode,
    step_s: q.step_s,
    groupBy,
  });
  const withQuantiles = q.metrics.some((m) => m.startsWith('p') || m === 'max_ms');
  const rows = await reader.rows<StatsRow & { t: number; g?: string }>(
    timeseriesQuery(reader.database, source, q.filters, {
      step_s: q.step_s,
      groupBy: q.groupBy,
      withQuantiles,
    }),
  );
  return {
    source,
    step_s: q.step_s,
    series: fillSeries(rows, { ...q, from: source.from, to: source.to }),
  };
}

// ---- canary split ----------------------------------------------------------------------------------------------

export interface SplitCluster extends Stats {
  upstream_cluster: string;
  baseline: boolean;
  share: number;
  share_diff: number;
  error_rate_diff: number;
  p50_ms_diff: number | null;
  p99_ms_diff: number | null;
  p50_ratio: number | null;
  p99_ratio: number | null;
}

const diff = (a: number | null, b: number | null) =>
  a === null || b === null ? null : Math.round((a - b) * 1000) / 1000;
const ratio = (a: number | null, b: number | null) => (a === null || b === null || b === 0 ? null : a / b);

/** Each cluster against the largest one (the baseline; `stats` busiest first, as splitQuery orders them). */
export function splitDeltas(stats: readonly (Stats & { upstream_cluster: string })[]): {
  requests: number;
  baseline: string | null;
  clusters: SplitCluster[];
} {
  const total = stats.reduce((s, c) => s + c.requests, 0);
  const base = stats[0];
  const baseShare = base && total ? base.requests / total : 0;
  return {
    requests: total,
    baseline: base?.upstream_cluster ?? null,
    clusters: stats.map((c) => {
      const share = total ? c.requests / total : 0;
      return {
        ...c,
        baseline: c === base,
        share,
        share_diff: share - baseShare,
        error_rate_diff: c.error_rate - base.error_rate,
        p50_ms_diff: diff(c.p50_ms, base.p50_ms),
        p99_ms_diff: diff(c.p99_ms, base.p99_ms),
        p50_ratio: ratio(c.p50_ms, base.p50_ms),
        p99_ratio: ratio(c.p99_ms, base.p99_ms),
      };
    }),
  };
}

/** Per-upstream-cluster stats of a window (the canary split), busiest first. */
export async function clusterStats(
  reader: QueryReader,
  q: WindowQuestion,
): Promise<{ source: Source; clusters: (Stats & { upstream_cluster: string })[] }> {
  const source = await reader.plan({
    range: q.range,
    filters: q.filters,
    mode: q.mode,
    groupBy: ['upstream_cluster'],
  });
  const cached = await reader.windowSeries(source, q.filters, ['upstream_cluster']);
  const list: (StatsRow & { upstream_cluster: string })[] = cached
    ? // splitQuery's order and limit on the cache's rows.
      cached
        .map((r) => ({ ...r, upstream_cluster: r.series[0] }))
        .sort(
          (a, b) =>
            compareValues(Number(b.requests), Number(a.requests)) ||
            compareValues(a.upstream_cluster, b.upstream_cluster),
        )
        .slice(0, SPLIT_LIMIT)
    : await reader.rows(splitQuery(reader.database, source, q.filters));
  const secs = reader.seconds(source);
  return {
    source,
    clusters: list.map((r) => ({ upstream_cluster: r.upstream_cluster, ...toStats(r, secs) })),
  };
}
