import { readJson, type ClickHouse, type QueryLimits } from '@gatescope/clickhouse';
import { QueryError } from './errors.js';
import { BucketCache, cacheable } from './bucket-cache.js';
import type { Filters } from './params.js';
import { planSource, rawIsCheaper, rawSource, type Dimension, type PlanInput, type Source } from './plan.js';
import type { PlannedQuestion, SeriesRow } from './series.js';
import { estimateQuery, withLimits, type BuiltQuery } from './sql.js';

export interface QueryReaderOptions {
  clickhouse: ClickHouse;
  /** Time, memory and threads of every query, in its own SETTINGS clause (GATESCOPE_QUERY_MAX_*). */
  limits: QueryLimits;
  /** The clock (tests pin it). */
  now?: () => number;
  /**
   * Answer windows read from per-minute and hourly rollups from bucket caches (`windowSeries`); default true.
   * Off: every window is its statement (benchmarks compare the two).
   */
  windowCache?: boolean;
}

/**
 * Partials each of the reader's two window caches holds at most: ≈ 3.4 KB of decoded state each, so ≈ 70 MB per
 * cache when full (by route over 50 routes: a 24 h window holds ≈ 1,350 hourly partials, a 3 h one ≈ 9,900 per-minute
 * ones and blocks).
 */
export const WINDOW_CACHE_MAX_PARTIALS = 20_000;
/** The longest window the per-minute window cache keeps (plus the minute a range not on a minute widens to). */
const MINUTE_WINDOW_MAX_MS = 3 * 3_600_000;
/** Windows remembered as asked once (for admission) before the list starts again. */
const ASKED_MAX = 1_000;

/** How long a rollup density measurement serves the planner. */
export const DENSITY_TTL_MS = 60_000;

/**
 * Every analytics read, for every caller (API, live ticks, alert evaluator): the reader role's connection, the
 * configured limits in the statement's own SETTINGS clause, a framed (whole-document JSON) answer, and a stopped
 * query turned into an error that says which limit and what to change. Also the planner's one I/O: whether a
 * per-minute rollup is cheaper than the raw rows it stands for, measured on the rollup and remembered for a minute.
 */
export class QueryReader {
  readonly database: string;
  private readonly ch: ClickHouse;
  private readonly limits: QueryLimits;
  private readonly now: () => number;
  private readonly density = new Map<string, { rawIsCheaper: boolean; at: number }>();
  private readonly caches: BucketCache[];
  /** Windows asked and not yet cached: `true` while their fill runs. */
  private readonly asked = new Map<string, boolean>();
  private readonly fills = new Set<Promise<void>>();
  /** Windows a cache could answer, by how they were answered, and fills started (metrics). */
  readonly windowCounts = { cache: 0, statement: 0, fills: 0 };

  constructor(o: QueryReaderOptions) {
    this.ch = o.clickhouse;
    this.database = o.clickhouse.database;
    this.limits = o.limits;
    this.now = o.now ?? Date.now;
    const cache = (granularity_s: 60 | 3600) =>
      new BucketCache(this.database, {
        granularity_s,
        retain: 'recent',
        maxPartials: WINDOW_CACHE_MAX_PARTIALS,
      });
    this.caches = (o.windowCache ?? true) ? [cache(60), cache(3600)] : [];
  }

  /** Resolves once the window fills running now have ended (tests, benchmarks). */
  async windowFills(): Promise<void> {
    await Promise.all([...this.fills]);
  }

  /** What the window caches hold: groups (windows) and partials. */
  windowCacheSize(): { groups: number; partials: number } {
    return {
      groups: this.caches.reduce((n, c) => n + c.size, 0),
      partials: this.caches.reduce((n, c) => n + c.partials, 0),
    };
  }

  /**
   * A window's stats per series (the `groupBy` values), when a bucket cache can answer it: a per-minute or hourly
   * rollup source over whole buckets (not raw rows, not `http_totals_1h`). The numbers are the window's statement's
   * (`BucketCache`: sums add, DDSketch states merge exactly, late rows are seen by the probe); `undefined` when no
   * cache can answer, and the caller runs its statement. Why: a window filtered beyond route and upstream cluster
   * re-reads every (route, authority, method, …) state of every bucket on each call, of which only the newest
   * bucket's change; the cache reads a probe and the newest buckets, and merges the rest in memory.
   */
  async windowSeries(
    source: Source,
    filters: Filters,
    groupBy: Dimension[],
  ): Promise<SeriesRow[] | undefined> {
    // Only windows on the wide `http_requests_*` rollups: a lean window (route / upstream cluster only) reads about
    // one state per route and bucket, which the engine answers in about the time the cache's probe and newest
    // bucket take (measured: 24 h routes 26.8 ms by statement, 30.5 ms through the cache).
    if (source.kind !== 'requests') return undefined;
    // Per-minute windows up to 3 h: a longer one costs its fill seconds of CPU (6 h filtered on method: 1.9 s, for
    // 42.8 vs 60.1 ms per call) and most of the cache's memory (≈ 20,000 partials over 50 routes).
    if (source.granularity_s === 60 && source.to - source.from > MINUTE_WINDOW_MAX_MS + 60_000)
      return undefined;
    const question: PlannedQuestion = {
      range: { from: source.from, to: source.to },
      filters,
      groupBy,
      source,
    };
    const cache = this.caches.find((c) => cacheable(question, c.granularity_s));
    if (!cache) return undefined;
    if (cache.refuses(question)) {
      this.windowCounts.statement++;
      return undefined;
    }
    const read = <T>(q: BuiltQuery) => this.rows<T>(q);
    if (!cache.holds(question)) {
      // Admission: a window is cached from its second ask on (a dashboard's refresh; not a one-off question), and
      // filled in the background while that ask and the next ones are answered by the statement: a first fill
      // reads every bucket's states (a 3 h window filtered on method: ≈ 0.5 s, 10x its statement).
      const key = JSON.stringify([cache.granularity_s, question.groupBy, filters, source.to - source.from]);
      const seen = this.asked.get(key);
      if (seen === undefined) {
        if (this.asked.size >= ASKED_MAX) this.asked.clear();
        this.asked.set(key, false);
      } else if (!seen) {
        this.asked.set(key, true);
        const fill = cache
          .rows([question], read)
          .then(() => undefined)
          .catch(() => undefined)
          .finally(() => {
            this.asked.delete(key);
            this.fills.delete(fill);
          });
        this.fills.add(fill);
        this.windowCounts.fills++;
      }
      this.windowCounts.statement++;
      return undefined;
    }
    this.windowCounts.cache++;
    const { rows } = await cache.rows([question], read);
    return rows;
  }

  async rows<T>(q: BuiltQuery): Promise<T[]> {
    const limited = withLimits(q, this.limits);
    try {
      return (await readJson<T>(this.ch.reader, { query: limited.query, params: limited.params })).data;
    } catch (err) {
      throw limitError(err, this.limits) ?? err;
    }
  }

  /**
   * `planSource`, then in auto mode keep a per-minute rollup only where it is cheaper than the raw rows it stands
   * for. That depends on the traffic's density (raw rows per rollup state), not on the range's length, so one small
   * query on the rollup measures it and the answer serves every question for a minute.
   */
  async plan(input: PlanInput): Promise<Source> {
    const source = planSource(input);
    if ((input.mode ?? 'auto') !== 'auto' || source.granularity_s !== 60) return source;
    let known = this.density.get(source.table);
    if (!known || this.now() - known.at > DENSITY_TTL_MS) {
      const [estimate] = await this.rows<{ raw_rows: number; states: number }>(
        estimateQuery(this.database, source),
      );
      known = {
        rawIsCheaper: rawIsCheaper({
          rawRows: Number(estimate?.raw_rows ?? 0),
          states: Number(estimate?.states ?? 0),
        }),
        at: this.now(),
      };
      this.density.set(source.table, known);
    }
    return known.rawIsCheaper ? rawSource(input.range) : source;
  }

  /** Seconds a rate is computed over: the source's covered range, not counting the future. */
  seconds(s: Source): number {
    return Math.max(1, (Math.min(s.to, Math.max(this.now(), s.from + 1000)) - s.from) / 1000);
  }
}

/** A query stopped by its limits (or an engine answer that was not its own): which, and what to change. */
export function limitError(err: unknown, limits: QueryLimits): QueryError | undefined {
  const e = err as { type?: string; message?: string; code?: string };
  if (e?.type === 'TIMEOUT_EXCEEDED') {
    return new QueryError(
      400,
      'ERR_QUERY_TIMEOUT',
      `The query ran longer than allowed (${limits.maxExecutionTimeS} s, GATESCOPE_QUERY_MAX_EXECUTION_TIME_S) and was stopped: narrow the time range or add filters`,
    );
  }
  if (e?.type === 'MEMORY_LIMIT_EXCEEDED') {
    return /\(total\)/.test(String(e.message))
      ? new QueryError(503, 'ERR_ENGINE_BUSY', 'The engine is short of memory right now; retry shortly')
      : new QueryError(
          400,
          'ERR_QUERY_MEMORY',
          `The query needs more memory than allowed (${limits.maxMemoryBytes} bytes, GATESCOPE_QUERY_MAX_MEMORY_BYTES): narrow the time range or add filters`,
        );
  }
  if (e?.code === 'ERR_ENGINE_FOREIGN_RESULT') {
    return new QueryError(503, 'ERR_ENGINE_FOREIGN_RESULT', (err as Error).message + ': retry');
  }
  return undefined;
}
