import { ident } from '@gatescope/clickhouse';
import { planSource, sourceParts, type Dimension, type Source, type SourceMode } from './plan.js';
import type { Filters, TimeRange } from './params.js';
import {
  DIMENSION_COLUMNS,
  filterConditions,
  rollupColumns,
  statsColumns,
  timeColumn,
  type BuiltQuery,
} from './sql.js';
import type { StatsRow } from './stats.js';

/**
 * Many stats questions in one statement: each question (a range, filters, optional group-by dimensions and an
 * optional response flag to count) is planned like an API call (`planSource`), answered with the same stats
 * columns and quantile definition as the API (`statsColumns`' aggregates, `toStats`), and the answers come back
 * together, tagged with the question's index. The alert evaluator asks all its rules this way: one round trip per
 * cycle instead of one per rule.
 *
 * One scan per source table, not one per question. What a cycle costs is reading the rollup rows, above all
 * deserialising their DDSketch states (≈ 3 µs each on the embedded engine, against well under 1 µs to merge one),
 * and the questions of a cycle overlap: a 1 h window holds the 15 m, 5 m and 1 m ones, a filtered question reads a
 * subset of an unfiltered one's rows. So the questions that share a table, a group-by and a need for quantiles
 * (a "scan") are answered together:
 *   1. the scan reads the table once over the union of their ranges (a window planned in tiers, plan.ts
 *      `tierParts`, reads each tier's table over the union of the parts in it), and tags every row with a bitmask
 *      of the questions it belongs to (`question_mask`, bit j: the row lies in one of question j's parts, in that
 *      part's tier, and question j's filters hold, as `whereClause` says);
 *   2. it aggregates the rows per (series, mask) into rollup-shaped partials (`rollupColumns`: sums, max and DD
 *      states merged into one state), so each row's state is read and merged once;
 *   3. per series, each question's stats are the `-If` aggregates of the partials whose mask has its bit
 *      (`rollupStatsAggregates({ where })`: sums add, DD states merge exactly, so these are the numbers the API's
 *      statement gives for that question alone), then split into one row per question (ARRAY JOIN).
 * Questions that need no quantiles (counts, rates, flags) are scanned apart and never read a state. A series with
 * no requests in a question's range has no row for it (the API would answer zeros).
 * User text (filter values, flags) only travels in bound parameters, prefixed per scan and question.
 */
export interface SeriesQuestion {
  range: TimeRange;
  filters: Filters;
  groupBy: Dimension[];
  /** Also count the requests carrying this Envoy response flag (`UH`), as `flagged`. */
  responseFlag?: string;
  /** Where to answer from, as the API's `source` parameter; default `auto`. */
  mode?: SourceMode;
  /** Whether the latency quantiles (`q`) are wanted; default true. Without them no DD state is read. */
  quantiles?: boolean;
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
export function prefixed(q: BuiltQuery, prefix: string): BuiltQuery {
  return {
    query: q.query.replace(/\{([A-Za-z_][A-Za-z0-9_]*):/g, `{${prefix}$1:`),
    params: Object.fromEntries(Object.entries(q.params).map(([k, v]) => [prefix + k, v])),
  };
}

/** How `statsColumns` reads partials: rollup-shaped columns (only the kind matters). */
const ROLLUP_SHAPED: Source = { kind: 'requests', granularity_s: 60, table: '', from: 0, to: 0 };

/** Questions per scan: one bit each in the UInt64 mask. */
export const QUESTIONS_PER_SCAN = 64;

export type PlannedQuestion = SeriesQuestion & { source: Source };
type Question = PlannedQuestion;
type Scan = { index: number; question: Question }[];

/**
 * The scans a set of questions needs. Questions on one table with one group-by share a scan (at most 64 per scan),
 * which reads the DD states over the range of those that want quantiles; one that wants none rides along when its
 * range lies inside that one, else it goes to a scan that reads no state at all.
 */
export function seriesScans(questions: readonly Question[]): { scan: Scan; quantiles: boolean }[] {
  const byTable = new Map<string, Scan>();
  questions.forEach((question, index) => {
    const key = JSON.stringify([question.source.table, question.groupBy]);
    byTable.set(key, [...(byTable.get(key) ?? []), { index, question }]);
  });
  const scans: { scan: Scan; quantiles: boolean }[] = [];
  const push = (list: Scan, quantiles: boolean) => {
    for (let i = 0; i < list.length; i += QUESTIONS_PER_SCAN)
      scans.push({ scan: list.slice(i, i + QUESTIONS_PER_SCAN), quantiles });
  };
  for (const list of byTable.values()) {
    const wanting = list.filter((s) => s.question.quantiles ?? true);
    const from = Math.min(...wanting.map((s) => s.question.source.from));
    const to = Math.max(...wanting.map((s) => s.question.source.to));
    const inside = (s: Scan[number]) => s.question.source.from >= from && s.question.source.to <= to;
    push(
      list.filter((s) => (s.question.quantiles ?? true) || inside(s)),
      true,
    );
    push(
      list.filter((s) => !(s.question.quantiles ?? true) && !inside(s)),
      false,
    );
  }
  return scans.filter((s) => s.scan.length > 0);
}

function seriesColumns(groupBy: readonly Dimension[]): string {
  const cols = groupBy.map((d) => {
    const c = DIMENSION_COLUMNS[d];
    if (!c) throw new Error(`cannot group by ${d}`);
    return `toString(src.${c})`;
  });
  return cols.length ? `[${cols.join(', ')}]` : "CAST([], 'Array(String)')";
}

/**
 * A row's time in epoch ms, for the membership test: `[from, to)` in ms holds exactly when `whereClause`'s
 * `t >= fromUnixTimestamp64Milli(from) AND t < fromUnixTimestamp64Milli(to)` does (the ms bounds are whole; a
 * raw start_time's microseconds floor to the same millisecond comparisons).
 */
function timeMs(source: Source): string {
  return source.kind === 'raw'
    ? 'toUnixTimestamp64Milli(src.start_time)'
    : 'toInt64(toUnixTimestamp(src.bucket_start)) * 1000';
}

/** Sorted, overlapping or touching intervals joined: the ranges a table is read over. */
function unionOf(intervals: readonly { from: number; to: number }[]): { from: number; to: number }[] {
  const out: { from: number; to: number }[] = [];
  for (const iv of [...intervals].sort((a, b) => a.from - b.from)) {
    const last = out[out.length - 1];
    if (last && iv.from <= last.to) last.to = Math.max(last.to, iv.to);
    else out.push({ ...iv });
  }
  return out;
}

/** `t` within any of the intervals (one parenthesised condition), the bounds bound as `{<prefix><i>_from:Int64}` … */
function inIntervals(
  t: string,
  intervals: readonly { from: number; to: number }[],
  prefix: string,
  params: Record<string, unknown>,
): string {
  const any = intervals
    .map(({ from, to }, i) => {
      params[`${prefix}${i}_from`] = from;
      params[`${prefix}${i}_to`] = to;
      return (
        `(${t} >= fromUnixTimestamp64Milli({${prefix}${i}_from:Int64}, 'UTC') AND ` +
        `${t} < fromUnixTimestamp64Milli({${prefix}${i}_to:Int64}, 'UTC'))`
      );
    })
    .join(' OR ');
  return `(${any})`;
}

/** One scan's statement: rows `(question, series, stats…, flagged)` for its questions. */
function scanQuery(database: string, scan: Scan, withQuantiles: boolean): BuiltQuery {
  const first = scan[0].question;
  const kind = first.source.kind;
  const t = timeColumn(first.source);
  const params: Record<string, unknown> = { questions: scan.map((s) => s.index) };
  // The tables read: one for an untiered scan, else every tier some question's parts use (plan.ts `tierParts`),
  // each over the union of those parts only (a 1 h window's ten-minute blocks are not re-read as minutes because
  // a 5 m window reads the last minutes).
  const tables = [
    ...new Set(scan.flatMap(({ question }) => sourceParts(question.source).map((p) => p.table))),
  ];
  // Each question's parts as (question bit, table, from, to); a question's parts never overlap, so a row matches
  // at most one part of each question.
  const pieces = scan.flatMap(({ question }, j) => sourceParts(question.source).map((p) => ({ j, ...p })));
  const intervalsOf = (table: string) => unionOf(pieces.filter((p) => p.table === table));
  // 1. membership, bit j for question j: one of its parts holds the row, and its filters hold (below). Rollup rows
  // sit on bucket starts, so the questions a row's time belongs to are known per (table, bucket) before the scan:
  // looked up per row (`transform`) instead of testing every part of every question on every row. Raw rows test
  // each question's range (one expression for all questions, so the statement's size, and the engine's time to
  // plan it, grows with the distinct filter sets, not with the questions).
  const bucketMasks = (table: string, k: number, time: string): string => {
    const masks = new Map<number, bigint>();
    for (const p of pieces.filter((x) => x.table === table))
      for (let b = p.from; b < p.to; b += p.granularity_s * 1000)
        masks.set(b, (masks.get(b) ?? 0n) | (1n << BigInt(p.j)));
    params[`tier${k}_buckets`] = [...masks.keys()];
    params[`tier${k}_masks`] = [...masks.values()].map(String);
    return (
      `transform(${time}, {tier${k}_buckets:Array(Int64)}, ` +
      `arrayMap(m -> toUInt64(m), {tier${k}_masks:Array(String)}), toUInt64(0))`
    );
  };
  const bucketMs = (column: string) => `toInt64(toUnixTimestamp(${column})) * 1000`;
  const tiered = tables.length > 1 || first.source.parts !== undefined;
  const source = tiered
    ? '(\n    ' +
      tables
        .map(
          (table, k) =>
            `SELECT *, ${bucketMasks(table, k, bucketMs('bucket_start'))} AS time_mask ` +
            `FROM ${ident(database)}.${ident(table)} WHERE ` +
            inIntervals(t, intervalsOf(table), `tier${k}_`, params),
        )
        .join('\n    UNION ALL\n    ') +
      '\n  ) AS src'
    : `${ident(database)}.${ident(first.source.table)} AS src`;
  const readRange = tiered ? [] : [inIntervals(`src.${t}`, intervalsOf(first.source.table), 'range', params)];
  let timeBits: string;
  if (tiered) timeBits = 'src.time_mask';
  else if (kind !== 'raw') timeBits = bucketMasks(first.source.table, 0, bucketMs('src.bucket_start'));
  else {
    Object.assign(params, {
      froms: pieces.map((p) => p.from),
      tos: pieces.map((p) => p.to),
      bits: pieces.map((p) => p.j),
    });
    const ms = timeMs(first.source);
    timeBits =
      `arraySum(arrayMap((f, t, j) -> bitShiftLeft(toUInt64(${ms} >= f AND ${ms} < t), j), ` +
      `{froms:Array(Int64)}, {tos:Array(Int64)}, {bits:Array(UInt8)}))`;
  }
  const filterSets = new Map<string, { filters: Filters; mask: bigint }>();
  scan.forEach(({ question }, j) => {
    const key = JSON.stringify(question.filters);
    const set = filterSets.get(key) ?? { filters: question.filters, mask: 0n };
    set.mask |= 1n << BigInt(j);
    filterSets.set(key, set);
  });
  const filterBits = [...filterSets.values()].map(({ filters, mask }, k) => {
    params[`mask${k}`] = mask.toString();
    const f = filterConditions(filters);
    if (!f.conditions.length) return `{mask${k}:UInt64}`;
    const cond = prefixed({ query: f.conditions.join(' AND '), params: f.params }, `f${k}_`);
    Object.assign(params, cond.params);
    return `if(${cond.query}, {mask${k}:UInt64}, toUInt64(0))`;
  });
  // Flag counts: one partial column per distinct flag; each question sums its own.
  const flags = [...new Set(scan.flatMap(({ question }) => question.responseFlag ?? []))];
  flags.forEach((flag, k) => (params[`flag${k}`] = flag));
  const flagColumns = flags.map(
    (_, k) =>
      (kind === 'raw'
        ? `countIf(has(src.response_flags, {flag${k}:String}))`
        : `sumIf(src.requests, has(src.response_flags, {flag${k}:String}))`) + ` AS flagged_${k}`,
  );
  // Each question's flag column, 1-based; past the end is the trailing 0 (no flag).
  if (flags.length)
    params.flag_slots = scan.map(({ question }) =>
      question.responseFlag ? flags.indexOf(question.responseFlag) + 1 : flags.length + 1,
    );
  // 2. partials per (series, membership): each row read and merged once.
  const where = [...readRange, 'question_mask != 0'].join(' AND ');
  const partials =
    `SELECT ${seriesColumns(first.groupBy)} AS series,\n    ` +
    `bitAnd(${timeBits}, ${filterBits.join(' + ')}) AS question_mask,\n    ` +
    [rollupColumns(kind, { table: 'src', withQuantiles }), ...flagColumns].join(',\n    ') +
    `\n  FROM ${source}\n  WHERE ${where}\n  GROUP BY series, question_mask`;
  // 3. split: each partial joins every question whose bit it has, then each (question, series) is aggregated as
  // the API aggregates a rollup (`statsColumns`): sums add, DD states merge exactly.
  const flagged = flags.length
    ? `sum([${flags.map((_, k) => `flagged_${k}`).join(', ')}, toUInt64(0)][{flag_slots:Array(UInt8)}[slot + 1]])`
    : 'toUInt64(0)';
  return {
    query:
      `SELECT {questions:Array(UInt32)}[slot + 1] AS question, series,\n  ${statsColumns(ROLLUP_SHAPED, withQuantiles)},\n` +
      (withQuantiles ? '' : "  CAST([], 'Array(Float64)') AS q,\n") +
      `  ${flagged} AS flagged\n` +
      `FROM (\n  ${partials}\n)\nARRAY JOIN bitPositionsToArray(question_mask) AS slot\nGROUP BY slot, series`,
    params,
  };
}

export function seriesStatsQuery(database: string, questions: readonly Question[]): BuiltQuery {
  if (questions.length === 0) throw new Error('seriesStatsQuery needs at least one question');
  const parts = seriesScans(questions).map(({ scan, quantiles }, s) =>
    prefixed(scanQuery(database, scan, quantiles), `s${s}_`),
  );
  return {
    query: parts.map((p) => p.query).join('\nUNION ALL\n'),
    params: Object.assign({}, ...parts.map((p) => p.params)) as Record<string, unknown>,
  };
}

/** Seconds a rate over `source` is computed over: its span up to now (a window never counts the future). */
export function rateSeconds(source: Source, now: number): number {
  return Math.max(1, (Math.min(source.to, Math.max(now, source.from + 1000)) - source.from) / 1000);
}
