import { ident } from '@gatescope/clickhouse';
import type { Dimension } from './plan.js';
import type { Filters } from './params.js';
import {
  decodeDDState,
  DenseLatencySketch,
  LATENCY_QUANTILES_MERGE_STATE,
  type DDState,
} from './quantiles.js';
import { prefixed, seriesStatsQuery, type PlannedQuestion, type SeriesRow } from './series.js';
import { DIMENSION_COLUMNS, filterConditions, type BuiltQuery } from './sql.js';

/**
 * An incremental per-minute cache of the rollup questions a process asks again and again (the alert evaluator's
 * rules, every cycle): it answers `seriesStatsQuery`'s rows, the same numbers, from minutes kept in memory, and asks
 * ClickHouse only which minutes changed and what is in those.
 *
 * Why: planning a statement costs the embedded engine ≈ 1–5 ms per layer, parameter and function (≈ 35 ms for the
 * evaluator's statement over an empty range) and every cycle re-read ~61 minutes of states of which only the newest
 * one or two had changed. Here a cycle is two small statements, the same shape every time:
 *   1. probe: `sum(requests)` per minute of each family's per-minute table (`http_routes_1m`, `http_requests_1m`)
 *      over the cached range, no state read. A minute only ever gains requests (inserts add rows, every rollup row
 *      counts ≥ 1 request; merges and deduplicated retries change no sum), so a minute whose sum is the one seen
 *      when it was fetched holds what it held then.
 *   2. fetch: for the minutes whose sum changed (the current minute, late rows into an old one; every minute on the
 *      first cycle), per (minute, series, filter mask) the partial `statsColumns` needs: the sums, max, each flag's
 *      `sumIf` and the merged DD state (`base64Encode(toString(quantilesDDMergeState(…)))`), decoded in JavaScript
 *      (`decodeDDState`). One statement for all groups (a UNION ALL branch per family and group-by).
 * Each question is then answered by merging its window's minutes in JavaScript: the questions of one group, filter
 * set and window end are answered in one pass from the newest minute back (a 1 h window continues where the 15 m
 * one stops), sums added, maxima taken, states merged into a `DenseLatencySketch`.
 *
 * Why the numbers are exactly `seriesStatsQuery`'s: a question read from per-minute rollups (`granularity_s` 60,
 * tiered or not) covers whole minutes [from, to), and its tiers answer what the per-minute table alone answers
 * (series.test.ts). The per-minute table's rows of a minute, grouped by series and by which filter sets hold, are
 * the partials; a question's rows are those of its minutes whose mask has its filter set's bit. Sums of integers
 * add exactly, max is max, and DDSketch states merge by adding bucket counts, which `DenseLatencySketch` does and
 * then ranks as `quantilesDDMerge` ranks (quantiles.test.ts). A series is present when it has requests, as there.
 *
 * Not cached, asked with `seriesStatsQuery` as before (in the same cycle, in parallel): raw-row sources (a
 * `path_template` filter, `source=raw`), hourly sources (windows ≥ 12 h), a group-by no rollup keeps, a group with
 * more than 30 filter sets (one mask bit each), and groups that would make the cache hold more than
 * `maxPartials` partials (below); such a group is retried after `overflowRetryCycles` cycles.
 */

type Family = 'http_routes' | 'http_requests';
export type ReadRows = <T>(q: BuiltQuery) => Promise<T[]>;

/**
 * Partials the cache holds at most (one per minute, series and filter mask). A partial with its decoded state is
 * ≈ 1–3 KB (a minute of one route at 1,000 requests/s spans ≈ 150–300 buckets of 8 bytes), so 50,000 is ≲ 150 MB:
 * e.g. 1 h windows over 800 series, or 6 h over 130. The evaluator benchmark holds ≈ 6,000.
 */
export const MINUTE_CACHE_MAX_PARTIALS = 50_000;
/** Filter sets per group: one bit each in a JavaScript integer mask. */
const MAX_FILTER_SETS = 30;
const MINUTE_MS = 60_000;
/** Closed 10-minute blocks are merged once and kept (a 1 h window: 5 blocks and the minutes around them). */
const BLOCK_MS = 600_000;
const SUM_COLUMNS = [
  'requests',
  'requests_1xx',
  'requests_2xx',
  'requests_3xx',
  'requests_4xx',
  'requests_5xx',
  'requests_none',
  'bytes_sent',
  'bytes_received',
] as const;

export interface MinuteCacheOptions {
  maxPartials?: number;
  /** Cycles a group over the bound is asked with `seriesStatsQuery` before the cache tries it again (default 40). */
  overflowRetryCycles?: number;
}

/** What one `rows()` call did, for benchmarks and metrics. */
export interface MinuteCacheCycle {
  /** Questions answered from the cache / with `seriesStatsQuery`. */
  cached: number;
  fallback: number;
  /** Groups (rollup family and group-by) the cache answered. */
  groups: number;
  /** Minutes probed, and fetched because their sum changed (or they were new), counted per group. */
  minutesProbed: number;
  minutesFetched: number;
  partialsFetched: number;
  /** Partials held after the cycle. */
  partials: number;
  probeMs: number;
  fetchMs: number;
  answerMs: number;
}

interface Partial {
  key: string;
  series: string[];
  mask: number;
  sums: Float64Array;
  max: number;
  flagged: Float64Array;
  state: DDState | undefined;
}

interface Minute {
  /** The probe's sum(requests) when the minute was fetched. */
  sum: number;
  partials: Partial[];
  /** When it was stored (the group's `stored` then): a block built later holds its current partials. */
  seq: number;
}

interface Group {
  family: Family;
  groupBy: Dimension[];
  signature: string;
  filterSets: Filters[];
  flags: string[];
  quantiles: boolean;
  minutes: Map<number, Minute>;
  partials: number;
  /** Minutes stored so far (each minute's `seq`). */
  stored: number;
  /** Merged 10-minute blocks per filter set: `${bit} ${start}` -> one partial per series (mask = the bit). */
  blocks: Map<string, { seq: number; partials: Partial[] }>;
}

interface Asked {
  index: number;
  question: PlannedQuestion;
}

interface FetchRow {
  grp: number;
  minute: number;
  series: string[];
  mask: number;
  requests: number;
  requests_1xx: number;
  requests_2xx: number;
  requests_3xx: number;
  requests_4xx: number;
  requests_5xx: number;
  requests_none: number;
  bytes_sent: number;
  bytes_received: number;
  max_ms: number;
  flagged: number[];
  state: string;
}

/** The rollup family a per-minute question reads, or undefined when the cache cannot answer it. */
function cacheableFamily(q: PlannedQuestion): Family | undefined {
  const s = q.source;
  if (s.granularity_s !== 60 || (s.kind !== 'routes' && s.kind !== 'requests')) return undefined;
  if (!q.groupBy.every((d) => DIMENSION_COLUMNS[d])) return undefined;
  if (s.from % MINUTE_MS !== 0 || s.to % MINUTE_MS !== 0) return undefined;
  return s.kind === 'routes' ? 'http_routes' : 'http_requests';
}

const filterKey = (f: Filters) => JSON.stringify(f);

export class MinuteCache {
  private readonly groups = new Map<string, Group>();
  private readonly overflow = new Map<string, number>();
  private readonly maxPartials: number;
  private readonly retryCycles: number;
  private cycle = 0;

  constructor(
    private readonly database: string,
    options: MinuteCacheOptions = {},
  ) {
    this.maxPartials = options.maxPartials ?? MINUTE_CACHE_MAX_PARTIALS;
    this.retryCycles = options.overflowRetryCycles ?? 40;
  }

  /** Partials held now (every group). */
  get partials(): number {
    let n = 0;
    for (const g of this.groups.values()) n += g.partials;
    return n;
  }

  /** Forget everything (the next call fetches every minute again). */
  clear(): void {
    this.groups.clear();
    this.overflow.clear();
  }

  /**
   * The rows `seriesStatsQuery(database, questions)` returns, in no particular order: cached questions from memory
   * (after the probe and fetch statements), the others from `seriesStatsQuery` over them alone.
   */
  async rows(
    questions: readonly PlannedQuestion[],
    read: ReadRows,
  ): Promise<{ rows: SeriesRow[]; cycle: MinuteCacheCycle }> {
    this.cycle++;
    const cycle: MinuteCacheCycle = {
      cached: 0,
      fallback: 0,
      groups: 0,
      minutesProbed: 0,
      minutesFetched: 0,
      partialsFetched: 0,
      partials: 0,
      probeMs: 0,
      fetchMs: 0,
      answerMs: 0,
    };
    // Which questions the cache answers, by group (family and group-by).
    const byGroup = new Map<string, { family: Family; groupBy: Dimension[]; asked: Asked[] }>();
    const rest: Asked[] = [];
    questions.forEach((question, index) => {
      const family = cacheableFamily(question);
      const key = JSON.stringify([family, question.groupBy]);
      if (!family || (this.overflow.get(key) ?? 0) > this.cycle) return rest.push({ index, question });
      const entry = byGroup.get(key) ?? { family, groupBy: question.groupBy, asked: [] };
      entry.asked.push({ index, question });
      byGroup.set(key, entry);
    });
    for (const [key, entry] of byGroup) {
      const filterSets = new Set(entry.asked.map((a) => filterKey(a.question.filters)));
      if (filterSets.size > MAX_FILTER_SETS) {
        rest.push(...entry.asked);
        byGroup.delete(key);
      }
    }
    for (const key of this.groups.keys()) if (!byGroup.has(key)) this.groups.delete(key);
    const fallback = (asked: Asked[]) => this.fallback(asked, read);
    const pending = [fallback(rest)];

    // The groups' shapes: a changed shape (a rule added, a filter set gone) starts the group afresh.
    const active: { group: Group; asked: Asked[]; from: number; to: number }[] = [];
    for (const [key, entry] of byGroup) {
      const filterSets = [...new Set(entry.asked.map((a) => filterKey(a.question.filters)))].sort();
      const flags = [
        ...new Set(entry.asked.flatMap((a) => (a.question.responseFlag ? [a.question.responseFlag] : []))),
      ].sort();
      const quantiles = entry.asked.some((a) => a.question.quantiles ?? true);
      const signature = JSON.stringify([filterSets, flags, quantiles]);
      let group = this.groups.get(key);
      if (!group || group.signature !== signature) {
        group = {
          family: entry.family,
          groupBy: entry.groupBy,
          signature,
          filterSets: filterSets.map((f) => JSON.parse(f) as Filters),
          flags,
          quantiles,
          minutes: new Map(),
          partials: 0,
          stored: 0,
          blocks: new Map(),
        };
        this.groups.set(key, group);
      }
      const from = Math.min(...entry.asked.map((a) => a.question.source.from));
      const to = Math.max(...entry.asked.map((a) => a.question.source.to));
      active.push({ group, asked: entry.asked, from, to });
    }
    if (active.length === 0) {
      const rows = (await Promise.all(pending)).flat();
      cycle.fallback = rest.length;
      return { rows, cycle };
    }

    cycle.groups = active.length;
    // 1. probe
    let t0 = performance.now();
    const sums = await this.probe(active, read);
    cycle.probeMs = performance.now() - t0;

    // 2. fetch what changed
    t0 = performance.now();
    const wanted: { group: Group; minutes: number[]; sums: Map<number, number> }[] = [];
    for (const { group, from, to } of active) {
      for (const [m, minute] of group.minutes)
        if (m < from || m >= to) {
          group.minutes.delete(m);
          group.partials -= minute.partials.length;
        }
      for (const [key, block] of group.blocks) {
        const start = Number(key.split(' ')[1]);
        if (start < from || start + BLOCK_MS > to) {
          group.blocks.delete(key);
          group.partials -= block.partials.length;
        }
      }
      const probed = sums.get(group.family)!;
      const changed: number[] = [];
      for (let m = from; m < to; m += MINUTE_MS) {
        cycle.minutesProbed++;
        const sum = probed.get(m) ?? 0;
        const held = group.minutes.get(m);
        if (held && held.sum === sum) continue;
        if (sum === 0) {
          if (held) group.partials -= held.partials.length;
          group.minutes.set(m, { sum, partials: [], seq: ++group.stored });
        } else changed.push(m);
      }
      if (changed.length) wanted.push({ group, minutes: changed, sums: probed });
    }
    if (wanted.length) {
      const built = this.fetchQuery(wanted);
      const rows = await read<FetchRow>(built);
      const fresh = wanted.map(() => new Map<number, Partial[]>());
      for (const row of rows) {
        const { group } = wanted[Number(row.grp)];
        const minute = Number(row.minute);
        const list = fresh[Number(row.grp)].get(minute) ?? [];
        list.push(toPartial(row, group));
        fresh[Number(row.grp)].set(minute, list);
      }
      wanted.forEach(({ group, minutes, sums: probed }, g) => {
        for (const m of minutes) {
          const partials = fresh[g].get(m) ?? [];
          const held = group.minutes.get(m);
          group.partials += partials.length - (held?.partials.length ?? 0);
          group.minutes.set(m, { sum: probed.get(m) ?? 0, partials, seq: ++group.stored });
          cycle.minutesFetched++;
          cycle.partialsFetched += partials.length;
        }
      });
    }
    cycle.fetchMs = performance.now() - t0;

    // The memory bound: the largest groups go back to the statement until the rest fits.
    let held = this.partials;
    if (held > this.maxPartials) {
      for (const entry of [...active].sort((a, b) => b.group.partials - a.group.partials)) {
        if (held <= this.maxPartials) break;
        held -= entry.group.partials;
        const key = [...this.groups].find(([, g]) => g === entry.group)![0];
        this.groups.delete(key);
        this.overflow.set(key, this.cycle + this.retryCycles);
        active.splice(active.indexOf(entry), 1);
        rest.push(...entry.asked);
        pending.push(fallback(entry.asked));
      }
    }

    // 3. answer
    t0 = performance.now();
    const rows: SeriesRow[] = [];
    for (const { group, asked } of active) {
      answerGroup(group, asked, rows);
      cycle.cached += asked.length;
    }
    cycle.answerMs = performance.now() - t0;
    cycle.fallback = rest.length;
    cycle.partials = this.partials;
    for (const part of await Promise.all(pending)) rows.push(...part);
    return { rows, cycle };
  }

  private async fallback(asked: Asked[], read: ReadRows): Promise<SeriesRow[]> {
    if (asked.length === 0) return [];
    const rows = await read<SeriesRow>(
      seriesStatsQuery(
        this.database,
        asked.map((a) => a.question),
      ),
    );
    return rows.map((r) => ({ ...r, question: asked[Number(r.question)].index }));
  }

  /** sum(requests) per minute of each family's per-minute table over the union of its groups' ranges. */
  private async probe(
    active: { group: Group; from: number; to: number }[],
    read: ReadRows,
  ): Promise<Map<Family, Map<number, number>>> {
    const ranges = new Map<Family, { from: number; to: number }>();
    for (const { group, from, to } of active) {
      const r = ranges.get(group.family);
      ranges.set(
        group.family,
        r ? { from: Math.min(r.from, from), to: Math.max(r.to, to) } : { from, to },
      );
    }
    const families = [...ranges.keys()];
    const params: Record<string, unknown> = {};
    const branches = families.map((family, k) => {
      params[`p${k}_from`] = ranges.get(family)!.from;
      params[`p${k}_to`] = ranges.get(family)!.to;
      return (
        `SELECT toUInt8(${k}) AS family, toInt64(toUnixTimestamp(bucket_start)) * 1000 AS minute, sum(requests) AS total ` +
        `FROM ${ident(this.database)}.${ident(`${family}_1m`)} ` +
        `WHERE bucket_start >= fromUnixTimestamp64Milli({p${k}_from:Int64}, 'UTC') ` +
        `AND bucket_start < fromUnixTimestamp64Milli({p${k}_to:Int64}, 'UTC') GROUP BY minute`
      );
    });
    const rows = await read<{ family: number; minute: number; total: number }>({
      query: branches.join('\nUNION ALL\n'),
      params,
    });
    const out = new Map<Family, Map<number, number>>(families.map((f) => [f, new Map()]));
    for (const r of rows) out.get(families[Number(r.family)])!.set(Number(r.minute), Number(r.total));
    return out;
  }

  /** One UNION ALL branch per group: its changed minutes' partials per (minute, series, filter mask). */
  private fetchQuery(wanted: { group: Group; minutes: number[] }[]): BuiltQuery {
    const parts = wanted.map(({ group, minutes }, g) => {
      const params: Record<string, unknown> = {
        minutes,
        from: Math.min(...minutes),
        to: Math.max(...minutes) + MINUTE_MS,
      };
      const series = group.groupBy.length
        ? `[${group.groupBy.map((d) => `toString(src.${DIMENSION_COLUMNS[d]})`).join(', ')}]`
        : "CAST([], 'Array(String)')";
      const bits = group.filterSets.map((filters, k) => {
        const f = filterConditions(filters);
        if (!f.conditions.length) return `${2 ** k}`;
        const cond = prefixed({ query: f.conditions.join(' AND '), params: f.params }, `f${k}_`);
        Object.assign(params, cond.params);
        return `if(${cond.query}, ${2 ** k}, 0)`;
      });
      group.flags.forEach((flag, k) => (params[`flag${k}`] = flag));
      const flagged = group.flags.length
        ? `[${group.flags.map((_, k) => `toUInt64(sumIf(src.requests, has(src.response_flags, {flag${k}:String})))`).join(', ')}]`
        : "CAST([], 'Array(UInt64)')";
      const state = group.quantiles
        ? `base64Encode(toString(${LATENCY_QUANTILES_MERGE_STATE}(src.duration_quantiles)))`
        : "''";
      const query =
        `SELECT toUInt16(${g}) AS grp, toInt64(toUnixTimestamp(src.bucket_start)) * 1000 AS minute, ${series} AS series, ` +
        `toUInt32(${bits.join(' + ')}) AS mask, ` +
        SUM_COLUMNS.map((c) => `sum(src.${c}) AS ${c}`).join(', ') +
        `, max(src.duration_max_ms) AS max_ms, ${flagged} AS flagged, ${state} AS state ` +
        `FROM ${ident(this.database)}.${ident(`${group.family}_1m`)} AS src ` +
        `WHERE src.bucket_start >= fromUnixTimestamp64Milli({from:Int64}, 'UTC') ` +
        `AND src.bucket_start < fromUnixTimestamp64Milli({to:Int64}, 'UTC') ` +
        `AND minute IN {minutes:Array(Int64)} AND mask != 0 GROUP BY minute, series, mask`;
      return prefixed({ query, params }, `g${g}_`);
    });
    return {
      query: parts.map((p) => p.query).join('\nUNION ALL\n'),
      params: Object.assign({}, ...parts.map((p) => p.params)) as Record<string, unknown>,
    };
  }
}

function toPartial(row: FetchRow, group: Group): Partial {
  const sums = new Float64Array(SUM_COLUMNS.length);
  SUM_COLUMNS.forEach((c, i) => (sums[i] = Number(row[c])));
  return {
    key: JSON.stringify(row.series),
    series: row.series,
    mask: Number(row.mask),
    sums,
    max: Number(row.max_ms),
    flagged: Float64Array.from(row.flagged, Number),
    state: group.quantiles ? decodeDDState(Buffer.from(row.state, 'base64')) : undefined,
  };
}

interface Accumulator {
  series: string[];
  sums: Float64Array;
  max: number;
  flagged: Float64Array;
  sketch: DenseLatencySketch | undefined;
}

/** Adds partials (of `bit`) into per-series accumulators; states only when `sketches`. */
function accumulate(
  accs: Map<string, Accumulator>,
  partials: readonly Partial[],
  bit: number,
  flags: number,
  sketches: boolean,
): void {
  for (const p of partials) {
    if ((p.mask & bit) === 0) continue;
    let acc = accs.get(p.key);
    if (!acc) {
      acc = {
        series: p.series,
        sums: new Float64Array(SUM_COLUMNS.length),
        max: -Infinity,
        flagged: new Float64Array(flags),
        sketch: undefined,
      };
      accs.set(p.key, acc);
    }
    const sums = acc.sums;
    for (let i = 0; i < sums.length; i++) sums[i] += p.sums[i];
    if (p.max > acc.max) acc.max = p.max;
    for (let i = 0; i < p.flagged.length; i++) acc.flagged[i] += p.flagged[i];
    if (sketches && p.state) (acc.sketch ??= new DenseLatencySketch()).merge(p.state);
  }
}

/**
 * The 10-minute block at `start` for filter bit `bit`: its minutes merged into one partial per series, kept until one
 * of its minutes is stored again (late rows) or it leaves the cached range.
 */
function blockPartials(group: Group, bit: number, start: number): Partial[] {
  const key = `${bit} ${start}`;
  let newest = 0;
  for (let m = start; m < start + BLOCK_MS; m += MINUTE_MS) newest = Math.max(newest, group.minutes.get(m)?.seq ?? 0);
  const held = group.blocks.get(key);
  if (held && held.seq >= newest) return held.partials;
  const accs = new Map<string, Accumulator>();
  for (let m = start; m < start + BLOCK_MS; m += MINUTE_MS)
    accumulate(accs, group.minutes.get(m)?.partials ?? [], bit, group.flags.length, true);
  const partials: Partial[] = [];
  for (const [k, acc] of accs)
    partials.push({
      key: k,
      series: acc.series,
      mask: bit,
      sums: acc.sums,
      max: acc.max,
      flagged: acc.flagged,
      state: acc.sketch?.toState(),
    });
  group.partials += partials.length - (held?.partials.length ?? 0);
  group.blocks.set(key, { seq: group.stored, partials });
  return partials;
}

/**
 * A group's questions answered from its minutes: per filter set and window end, one pass from the newest minute
 * back, emitting each question's rows when the pass reaches its first minute. Where a whole 10-minute block lies
 * in the pass and no question starts inside it, the block's merged partials stand for its ten minutes.
 */
function answerGroup(group: Group, asked: Asked[], out: SeriesRow[]): void {
  const passes = new Map<string, Asked[]>();
  for (const a of asked) {
    const key = `${group.filterSets.findIndex((f) => filterKey(f) === filterKey(a.question.filters))}\u0000${a.question.source.to}`;
    passes.set(key, [...(passes.get(key) ?? []), a]);
  }
  for (const [key, list] of passes) {
    const bit = 2 ** Number(key.split('\u0000')[0]);
    list.sort((a, b) => b.question.source.from - a.question.source.from);
    const to = list[0].question.source.to;
    const oldest = list[list.length - 1].question.source.from;
    const sketchFrom = Math.min(
      ...list.filter((a) => a.question.quantiles ?? true).map((a) => a.question.source.from),
    );
    const accs = new Map<string, Accumulator>();
    const emit = ({ index, question }: Asked) => {
      const flag = question.responseFlag ? group.flags.indexOf(question.responseFlag) : -1;
      const quantiles = question.quantiles ?? true;
      for (const acc of accs.values()) {
        if (acc.sums[0] === 0) continue;
        out.push({
          question: index,
          series: acc.series,
          requests: acc.sums[0],
          requests_1xx: acc.sums[1],
          requests_2xx: acc.sums[2],
          requests_3xx: acc.sums[3],
          requests_4xx: acc.sums[4],
          requests_5xx: acc.sums[5],
          requests_none: acc.sums[6],
          bytes_sent: acc.sums[7],
          bytes_received: acc.sums[8],
          max_ms: acc.max,
          q: quantiles && acc.sketch ? acc.sketch.quantiles() : [],
          flagged: flag >= 0 ? acc.flagged[flag] : 0,
        });
      }
    };
    let next = 0;
    // `m`: the oldest minute not yet added; the pass adds [m, end) then moves below it.
    for (let end = to; end > oldest; ) {
      const start = end - BLOCK_MS;
      // A question starting inside (start, end) needs its own edge: no block there.
      const whole =
        end % BLOCK_MS === 0 &&
        start >= oldest &&
        (next >= list.length || list[next].question.source.from <= start);
      const m = whole ? start : end - MINUTE_MS;
      const partials = whole ? blockPartials(group, bit, start) : (group.minutes.get(m)?.partials ?? []);
      accumulate(accs, partials, bit, group.flags.length, m >= sketchFrom);
      while (next < list.length && list[next].question.source.from === m) emit(list[next++]);
      end = m;
    }
  }
}
