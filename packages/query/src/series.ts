import { ident } from '@gatescope/clickhouse';
import { planSource, type Dimension, type Source, type SourceMode } from './plan.js';
import type { Filters, TimeRange } from './params.js';
import { DIMENSION_COLUMNS, statsColumns, whereClause, type BuiltQuery } from './sql.js';
import type { StatsRow } from './stats.js';

/**
 * Many stats questions in one statement: each question (a range, filters, optional group-by dimensions and an
 * optional response flag to count) is planned like an API call (`planSource`), answered with the same stats
 * columns and quantile definition as the API (`statsColumns`, `toStats`), and the answers come back together,
 * tagged with the question's index. The alert evaluator asks all its rules this way: one round trip per
 * cycle instead of one per rule (the per-call overhead, not the scan, dominates short windows).
 */
export interface SeriesQuestion {
  range: TimeRange;
  filters: Filters;
  groupBy: Dimension[];
  /** Also count the requests carrying this Envoy response flag (`UH`), as `flagged`. */
  responseFlag?: string;
  /** Where to answer from, as the API's `source` parameter; default `auto`. */
  mode?: SourceMode;
}

/** One row: a question's index, its series (the group-by values, in order) and that series' stats. */
export interface SeriesRow extends StatsRow {
  question: number;
  series: string[];
  flagged: number | string;
}

/** The source a question is answered from: the API's planning, with the flag's dimension when it counts one. */
export function planSeriesQuestion(q: SeriesQuestion): Source {
  const groupBy: Dimension[] = q.responseFlag ? [...q.groupBy, 'response_flag'] : q.groupBy;
  return planSource({ range: q.range, filters: q.filters, groupBy, mode: q.mode ?? 'auto' });
}

/** Renames every `{name:Type}` placeholder of a statement we built (user text is never in it) to `{p_name:Type}`. */
function prefixed(q: BuiltQuery, prefix: string): BuiltQuery {
  return {
    query: q.query.replace(/\{([A-Za-z_][A-Za-z0-9_]*):/g, `{${prefix}$1:`),
    params: Object.fromEntries(Object.entries(q.params).map(([k, v]) => [prefix + k, v])),
  };
}

export function seriesStatsQuery(
  database: string,
  questions: readonly (SeriesQuestion & { source: Source })[],
): BuiltQuery {
  if (questions.length === 0) throw new Error('seriesStatsQuery needs at least one question');
  const parts: string[] = [];
  const params: Record<string, unknown> = {};
  questions.forEach((q, i) => {
    const cols = q.groupBy.map((d) => {
      const c = DIMENSION_COLUMNS[d];
      if (!c) throw new Error(`cannot group by ${d}`);
      return `toString(${c})`;
    });
    const raw = q.source.kind === 'raw';
    const flagged = q.responseFlag
      ? raw
        ? 'toUInt64(countIf(has(response_flags, {flag:String})))'
        : // `src.requests`: the column, not the `requests` sum statsColumns names alike.
          'toUInt64(sumIf(src.requests, has(response_flags, {flag:String})))'
      : 'toUInt64(0)';
    const where = whereClause(q.source, q.filters);
    const part = prefixed(
      {
        query:
          `SELECT toUInt32(${i}) AS question, ${cols.length ? `[${cols.join(', ')}]` : "CAST([], 'Array(String)')"} AS series, ` +
          `${statsColumns(q.source)}, ${flagged} AS flagged ` +
          `FROM ${ident(database)}.${ident(q.source.table)} AS src WHERE ${where.query}` +
          (cols.length ? ' GROUP BY series' : ''),
        params: { ...where.params, ...(q.responseFlag ? { flag: q.responseFlag } : {}) },
      },
      `q${i}_`,
    );
    parts.push(part.query);
    Object.assign(params, part.params);
  });
  return { query: parts.join('\nUNION ALL\n'), params };
}

/** Seconds a rate over `source` is computed over: its span up to now (a window never counts the future). */
export function rateSeconds(source: Source, now: number): number {
  return Math.max(1, (Math.min(source.to, Math.max(now, source.from + 1000)) - source.from) / 1000);
}
