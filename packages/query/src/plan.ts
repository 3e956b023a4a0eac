import { QueryParamError } from './errors.js';
import type { Filters, TimeRange } from './params.js';

/**
 * Where a question is answered from.
 * - `raw`: `http_requests`, exact, every column. Used for short ranges and for dimensions no rollup keeps.
 * - `routes`: `http_routes_{1m,1h}`, one row per (bucket, route, upstream cluster): the fastest, for questions
 *   that filter or group only by route / upstream cluster.
 * - `requests`: `http_requests_{1m,1h}`, every filterable dimension except paths.
 * - `totals`: `http_totals_1h`, one row per hour and nothing else: questions with no filter and no grouping.
 */
export type SourceKind = 'raw' | 'routes' | 'requests' | 'totals';
export type SourceMode = 'auto' | 'raw' | 'rollup';
export const SOURCE_MODES = ['auto', 'raw', 'rollup'] as const;

/** The dimensions a question filters or groups by. */
export type Dimension =
  | 'route'
  | 'upstream_cluster'
  | 'gateway'
  | 'authority'
  | 'method'
  | 'status_class'
  | 'response_flag'
  | 'response_code'
  | 'path_template'
  | 'raw_only';

const LEAN_DIMENSIONS = new Set<Dimension>(['route', 'upstream_cluster']);
const FULL_DIMENSIONS = new Set<Dimension>([
  ...LEAN_DIMENSIONS,
  'gateway',
  'authority',
  'method',
  'status_class',
  'response_flag',
  'response_code',
]);

export interface Source {
  kind: SourceKind;
  /** Bucket width of the rollup in seconds; 0 for raw rows. */
  granularity_s: number;
  table: string;
  /** Epoch ms actually covered: rollup reads are widened to whole buckets (`from` down, `to` up). */
  from: number;
  to: number;
  /**
   * Set when the range is read from tiers (`tierParts`): the coarser tables' whole blocks and `table`'s edges,
   * together exactly [from, to). Unset: `table` alone over [from, to).
   */
  parts?: SourcePart[];
}

/** One table of a tiered read, over [from, to) (epoch ms, whole buckets of that table). */
export interface SourcePart {
  table: string;
  granularity_s: number;
  from: number;
  to: number;
}

/**
 * The tiers of each rollup family in seconds, finest first (migrations 0002 and 0008): each is fed by a view from
 * the inserts of the one below, so every tier holds every request, late ones included. A 10-minute block is 10
 * whole minutes (epoch multiples of its width). No 6-hour tier: a 24 h routes read of six-hour blocks plus hourly
 * edges measured slower than the 25 hourly states alone (migrations/0008), and every tier costs each insert.
 */
export const ROLLUP_TIERS_S: Record<'http_routes' | 'http_requests', readonly number[]> = {
  http_routes: [60, 600, 3600],
  http_requests: [60, 600, 3600],
};
const TIER_SUFFIX: Record<number, string> = { 60: '1m', 600: '10m', 3600: '1h' };

/** A family's table at a tier: `http_routes` + 600 -> `http_routes_10m`. */
export function tierTable(family: 'http_routes' | 'http_requests', granularity_s: number): string {
  const suffix = TIER_SUFFIX[granularity_s];
  if (!suffix) throw new Error(`no rollup tier of ${granularity_s} s`);
  return `${family}_${suffix}`;
}

/**
 * [from, to) (whole buckets of `base_s`) as the coarsest whole blocks it contains plus finer edges, recursively:
 * 6 h of minutes = the whole hours + 10-minute blocks + minutes around them; 1 h of minutes = 5 ten-minute blocks
 * + the minutes around them. Reading a quantile state costs the engine ≈ 10-17 µs at every tier, so fewer states
 * is faster, less each UNION ALL branch (≈ 3 ms); DDSketch states merge
 * exactly, so the answer is the one `base_s`'s table alone gives. Parts come in time order and never overlap.
 */
export function tierParts(
  family: 'http_routes' | 'http_requests',
  base_s: number,
  from: number,
  to: number,
): SourcePart[] {
  const tiers = ROLLUP_TIERS_S[family].filter((g) => g >= base_s);
  const cover = (a: number, b: number, level: number): SourcePart[] => {
    if (a >= b) return [];
    const g = tiers[level];
    if (level === 0) return [{ table: tierTable(family, g), granularity_s: g, from: a, to: b }];
    const ms = g * 1000;
    const lo = Math.ceil(a / ms) * ms;
    const hi = Math.floor(b / ms) * ms;
    if (lo >= hi) return cover(a, b, level - 1);
    return [
      ...cover(a, lo, level - 1),
      { table: tierTable(family, g), granularity_s: g, from: lo, to: hi },
      ...cover(hi, b, level - 1),
    ];
  };
  return cover(from, to, tiers.length - 1);
}

/** The parts a source is read from: its tiers, or its own table over its range. */
export function sourceParts(source: Source): SourcePart[] {
  return (
    source.parts ?? [
      { table: source.table, granularity_s: source.granularity_s, from: source.from, to: source.to },
    ]
  );
}

export const ROLLUP_GRANULARITIES_S = [3600, 60] as const;
/** From this span on, ranges are read from hourly buckets (widening adds at most 1/12 of the span). */
export const HOURLY_FROM_MS = 12 * 3_600_000;
/** From this span on, ranges are read from per-minute buckets. Shorter ones are cheap and exact from raw rows. */
export const MINUTELY_FROM_MS = 3_600_000;

export function filterDimensions(filters: Filters): Dimension[] {
  const dims = (Object.keys(filters) as (keyof Filters)[]).filter(
    (k) => k !== 'restriction' && (filters[k] as unknown[] | undefined)?.length,
  ) as Dimension[];
  // A restriction filters on the columns it names: only a source keeping them can answer.
  if (filters.restriction?.authorities) dims.push('authority');
  if (filters.restriction?.gateways) dims.push('gateway');
  return [...new Set(dims)];
}

export interface PlanInput {
  range: TimeRange;
  filters: Filters;
  /** Dimensions grouped by (beyond the filters). */
  groupBy?: Dimension[];
  /** Timeseries step in seconds: the rollup granularity must divide it. */
  step_s?: number;
  mode?: SourceMode;
}

/** The raw table over exactly the asked range. */
export function rawSource(range: TimeRange): Source {
  return { kind: 'raw', granularity_s: 0, table: 'http_requests', from: range.from, to: range.to };
}

/**
 * Merging one quantile state costs about as much as reading this many raw rows for the same statistics
 * (measured on the embedded engine: ≈ 22 µs per quantilesDD(0.005) state merged vs ≈ 0.14 µs per raw row).
 */
export const RAW_ROWS_PER_STATE = 160;

/**
 * Whether a per-minute rollup read would cost more than the raw rows it stands for. At modest traffic a
 * minute bucket holds few requests per route and merging its quantile state is dearer than scanning them;
 * at high traffic the rollup wins. `rawRows` and `states` come from the rollup itself (`estimateQuery`).
 */
export function rawIsCheaper(estimate: { rawRows: number; states: number }): boolean {
  return estimate.rawRows < estimate.states * RAW_ROWS_PER_STATE;
}

export function planSource(input: PlanInput): Source {
  const { range, mode = 'auto' } = input;
  const dims = new Set<Dimension>([...filterDimensions(input.filters), ...(input.groupBy ?? [])]);
  const rollupable = [...dims].every((d) => FULL_DIMENSIONS.has(d));
  const raw = rawSource(range);
  if (mode === 'raw') return raw;
  if (!rollupable) {
    if (mode === 'rollup') {
      const missing = [...dims].filter((d) => !FULL_DIMENSIONS.has(d));
      throw new QueryParamError(
        'ERR_QUERY_NO_ROLLUP',
        'source',
        `source=rollup cannot answer this: no rollup keeps ${missing.join(', ')}; use source=auto or source=raw`,
      );
    }
    return raw;
  }
  const span = range.to - range.from;
  const fits = (g: number) => input.step_s === undefined || input.step_s % g === 0;
  let granularity: number | undefined;
  if (mode === 'rollup') {
    granularity = ROLLUP_GRANULARITIES_S.find((g) => fits(g) && (span >= HOURLY_FROM_MS || g === 60));
    if (granularity === undefined) {
      throw new QueryParamError(
        'ERR_QUERY_NO_ROLLUP',
        'step',
        'source=rollup needs a step that is a whole number of minutes',
      );
    }
  } else {
    if (span >= HOURLY_FROM_MS && fits(3600)) granularity = 3600;
    else if (span >= MINUTELY_FROM_MS && fits(60)) granularity = 60;
  }
  if (granularity === undefined) return raw;
  const g = granularity * 1000;
  const lean = [...dims].every((d) => LEAN_DIMENSIONS.has(d));
  const from = Math.floor(range.from / g) * g;
  const to = Math.ceil(range.to / g) * g;
  if (granularity === 3600 && dims.size === 0)
    return { kind: 'totals', granularity_s: granularity, table: 'http_totals_1h', from, to };
  const family = lean ? 'http_routes' : 'http_requests';
  const source: Source = {
    kind: lean ? 'routes' : 'requests',
    granularity_s: granularity,
    table: tierTable(family, granularity),
    from,
    to,
  };
  // A timeseries keeps its step: its buckets are read at the planned granularity. A window (summary, routes,
  // split, status codes, alert values) reads the coarsest whole blocks it contains.
  if (input.step_s !== undefined) return source;
  const parts = tierParts(family, granularity, from, to);
  return parts.length === 1 && parts[0].table === source.table ? source : { ...source, parts };
}

export const NICE_STEPS_S = [
  10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
] as const;
export const MAX_POINTS = 100;
export const MAX_POINTS_HARD = 11_000;

/**
 * The automatic step: the finest nice step giving at most 100 points; from 12 h on whole hours, so the hourly
 * rollup (a few states per route per hour) serves it. `minStep` raises the floor (source=rollup needs minutes).
 */
export function autoStep(range: TimeRange, minStep_s = 0): number {
  const span_s = (range.to - range.from) / 1000;
  for (const s of NICE_STEPS_S) {
    if (s < minStep_s) continue;
    if (span_s / s > MAX_POINTS) continue;
    if (span_s * 1000 >= HOURLY_FROM_MS && s < 3600) continue;
    return s;
  }
  return 86400 * Math.ceil(span_s / 86400 / MAX_POINTS);
}
