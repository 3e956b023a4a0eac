import { ident } from '@gatescope/clickhouse';
import { tierTable, type Dimension } from './plan.js';
import type { Filters } from './params.js';
import {
  DDStateError,
  decodeDDState,
  DenseLatencySketch,
  LATENCY_QUANTILES_MERGE_STATE,
  type DDState,
} from './quantiles.js';
import { prefixed, seriesStatsQuery, type PlannedQuestion, type SeriesRow } from './series.js';
import { DIMENSION_COLUMNS, filterConditions, type BuiltQuery } from './sql.js';

/**
 * An incremental cache of the rollup questions a process asks again and again: it answers `seriesStatsQuery`'s
 * rows, the same numbers, from buckets kept in memory, and asks ClickHouse only which buckets changed and what is
 * in those. Two users, one class: the alert evaluator's rules every cycle (per-minute buckets, `retain: 'asked'`),
 * and the API's windows (`QueryReader.windowSeries`: a per-minute and an hourly cache, `retain: 'recent'`), where a
 * 24 h routes call re-read ≈ 1,250 hourly states of which only the newest hour's had changed.
 * Below, "minute" is one bucket of the cache's granularity (`granularity_s`: a minute, or an hour for the hourly
 * windows of 12 h and more), "10-minute block" ten of them.
 *
 * Why: planning a statement costs the embedded engine ≈ 1–5 ms per layer, parameter and function (≈ 35 ms for the
 * evaluator's statement over an empty range), and every cycle re-read ~61 minutes of DD states of which only the
 * newest one or two had changed. Questions are grouped by group-by (a group: every filter set, flag and window of
 * its questions) and each group keeps, per minute, per series and per filter mask (which of the group's filter sets
 * hold), a partial: the sums `statsColumns` needs, the max, each flag's count and the decoded DD state
 * (`decodeDDState`). A cycle is
 *   1. one statement: `sum(requests)` per minute of `http_requests_1m` over the cached range (the probe, no state
 *      read), and every group's newest two minutes in full (they change every cycle: no need to ask);
 *   2. only when an older minute's sum differs from the one stored with it (late rows; every minute on the first
 *      cycle or after a group's questions changed shape): a second statement fetching those minutes;
 *   3. each question answered by merging its window's partials in JavaScript: the questions of one group, filter set
 *      and window end in one pass from the newest minute back (the 1 h window goes on where the 15 m one stops),
 *      sums added, maxima taken, states merged into a `DenseLatencySketch`; whole 10-minute blocks merged once and
 *      kept until one of their minutes is stored again.
 * The partials come as `GROUP BY minute, series, mask` with `base64Encode(toString(quantilesDDMergeState(…)))`:
 * base64 in JSON keeps `readJson`'s framing (a foreign result cannot pass for this one); RowBinary moved the first
 * fill's states 2.6x faster (0.58 vs 1.5 s, measured) but has no such framing, and a cycle reads two minutes.
 *
 * Why the numbers are exactly `seriesStatsQuery`'s: a question read from per-minute rollups (`granularity_s` 60,
 * tiered or not) covers whole minutes [from, to), and its tiers answer what the per-minute table alone answers
 * (series.test.ts); `http_routes_1m` is `http_requests_1m` re-aggregated by a cascading view, so both give the same
 * numbers for a lean question. A question's rows are the merge of the partials of its minutes whose mask has its
 * filter set's bit: sums of integers add exactly, max is max, and DDSketch states merge by adding bucket counts,
 * which `DenseLatencySketch` does and then ranks as `quantilesDDMerge` ranks (quantiles.test.ts). A series is
 * present when it has requests, as there. Staleness: a minute only ever gains requests (inserts add rows, every
 * rollup row counts ≥ 1 request; merges and deduplicated retries change no sum), so a minute whose probed sum is the
 * one stored with it holds what it held then. The stored sum is exactly what was read: every minute is read with the
 * rows no filter set holds (mask 0, one row, no state) and stores the sum of all its rows, so a read that saw less
 * than the probe (a replica behind the one the probe read) differs from the next probe and is read again.
 *
 * Not cached, asked with `seriesStatsQuery` as before (in the same cycle, in parallel): raw-row sources (a
 * `path_template` filter, `source=raw`), sources of another granularity than the cache's, a group-by no rollup keeps, a group with
 * more than 30 filter sets (one mask bit each), and groups that would make the cache hold more than
 * `maxPartials` partials (below); such a group is retried after `overflowRetryCycles` cycles.
 */

/**
 * A group whose questions all filter and group by route and upstream cluster only (planned `routes`) is read from
 * `http_routes_{1m,1h}`, any other from `http_requests_{1m,1h}`: the former is the latter's rows re-aggregated by
 * route and upstream cluster (migrations/0002's cascading view: sums and DD states merged exactly), so the same
 * buckets give the same numbers from fewer rows. Each table read is probed.
 */
const FAMILY_FOR: Record<'routes' | 'requests', 'http_routes' | 'http_requests'> = {
  routes: 'http_routes',
  requests: 'http_requests',
};
/**
 * The newest buckets are read in full every cycle with the probe (one statement): they are the ones that change.
 * Two minutes (the previous one still gets the batches in flight), one hour (the previous hour changes only in the
 * first seconds of the next one, and the probe sees that; each hourly state read costs the statement ≈ 0.1 ms).
 */
const NEWEST_BUCKETS: Record<60 | 3600, number> = { 60: 2, 3600: 1 };
export type ReadRows = <T>(q: BuiltQuery) => Promise<T[]>;

/**
 * Partials the cache holds at most (one per minute, series and filter mask, and per kept 10-minute block). Their
 * decoded states are the bulk of its memory: 3.4 KB of bins per partial in the evaluator benchmark (1,000 requests/s
 * over 50 routes: 6,500 partials, 21.9 MB), so 30,000 is ≈ 100 MB: e.g. 1 h windows over ≈ 450 series with two
 * filter sets, or 6 h ones over ≈ 80.
 */
export const BUCKET_CACHE_MAX_PARTIALS = 30_000;
/**
 * Older minutes read per statement (per group): the benchmark's hour (9,150 states, 29 MB of JSON) took 0.2 s to
 * parse and 0.2 s to decode in one piece; 10 minutes of it ≈ 65 ms of the event loop at a time.
 */
const FETCH_CHUNK_BUCKETS = 10;
/** Filter sets per group: one bit each in a JavaScript integer mask. */
const MAX_FILTER_SETS = 30;
/** Closed 10-minute blocks are merged once and kept (a 1 h window: 5 blocks and the minutes around them). */
const BLOCK_BUCKETS = 10;
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

export interface BucketCacheOptions {
  /** The rollup tier the cache keeps: per minute (default) or per hour (windows of 12 h and more). */
  granularity_s?: 60 | 3600;
  /**
   * Which groups it keeps between calls. `asked` (the alert evaluator: the same questions every cycle): one group
   * per group-by, holding every filter set asked with it, and only the groups of the last call. `recent` (API
   * windows: each call asks its own question): one group per (group-by, filters, window length), kept until the
   * memory bound or `maxGroups` evicts the least recently asked.
   */
  retain?: 'asked' | 'recent';
  /** Groups kept with `retain: 'recent'` (default 64). */
  maxGroups?: number;
  maxPartials?: number;
  /** Cycles a group over the bound is asked with `seriesStatsQuery` before the cache tries it again (default 40). */
  overflowRetryCycles?: number;
}

/** What one `rows()` call did, for benchmarks and metrics. */
export interface BucketCacheCycle {
  /** Questions answered from the cache / with `seriesStatsQuery`. */
  cached: number;
  fallback: number;
  /** Groups (one per group-by) the cache answered. */
  groups: number;
  /** Older minutes probed, and minutes read (the newest ones, and older ones whose sum changed), per group. */
  minutesProbed: number;
  minutesFetched: number;
  partialsFetched: number;
  /** Partials held after the cycle (minutes' and blocks'), and the bytes of their decoded states' bins. */
  partials: number;
  stateBytes: number;
  /** The first statement (probe and newest minutes), the second (older changed minutes), the merging. */
  probeMs: number;
  fetchMs: number;
  answerMs: number;
  /** Set when the cache is off (a state it cannot decode): every question went to `seriesStatsQuery`. */
  disabled?: string;
}

const emptyCycle = (): BucketCacheCycle => ({
  cached: 0,
  fallback: 0,
  groups: 0,
  minutesProbed: 0,
  minutesFetched: 0,
  partialsFetched: 0,
  partials: 0,
  stateBytes: 0,
  probeMs: 0,
  fetchMs: 0,
  answerMs: 0,
});

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
  /** Its sum(requests) as stored: never more than the partials hold (see the top of this file). */
  sum: number;
  partials: Partial[];
  /** When it was stored (the group's `stored` then): a block built later holds its current partials. */
  seq: number;
}

interface Group {
  groupBy: Dimension[];
  /** The rollup table read (`http_routes_1m` …) and its bucket width in ms. */
  table: string;
  unit: number;
  /** The cache's call counter when it was last asked (`retain: 'recent'` evicts the oldest). */
  used: number;
  /** Set once a call answered from it (`holds`). */
  filled?: boolean;
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

interface Active {
  group: Group;
  asked: Asked[];
  /** The group's range, and where its newest minutes (read in full every cycle) start. */
  from: number;
  to: number;
  newest: number;
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

/**
 * Whether a cache of `granularity_s` can answer a question: a rollup source of that tier (tiered or not) over whole
 * buckets, grouped by dimensions the rollups keep.
 */
export function cacheable(q: PlannedQuestion, granularity_s: number): boolean {
  const s = q.source;
  if (s.granularity_s !== granularity_s || (s.kind !== 'routes' && s.kind !== 'requests')) return false;
  if (!q.groupBy.every((d) => DIMENSION_COLUMNS[d])) return false;
  const unit = granularity_s * 1000;
  return s.from % unit === 0 && s.to % unit === 0;
}

const filterKey = (f: Filters) => JSON.stringify(f);
/** `grp` of the probe's rows in the first statement (groups are numbered from 0). */
const PROBE_GROUP = 65_535;

export class BucketCache {
  private readonly groups = new Map<string, Group>();
  private readonly overflow = new Map<string, number>();
  private readonly maxPartials: number;
  private readonly retryCycles: number;
  private readonly maxGroups: number;
  readonly granularity_s: 60 | 3600;
  private readonly retain: 'asked' | 'recent';
  private readonly unit: number;
  private cycle = 0;
  private disabled: string | undefined;
  /** Calls run one after another: a call prunes and stores the buckets another one may be answering from. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly database: string,
    options: BucketCacheOptions = {},
  ) {
    this.maxPartials = options.maxPartials ?? BUCKET_CACHE_MAX_PARTIALS;
    this.retryCycles = options.overflowRetryCycles ?? 40;
    this.maxGroups = options.maxGroups ?? 64;
    this.granularity_s = options.granularity_s ?? 60;
    this.retain = options.retain ?? 'asked';
    this.unit = this.granularity_s * 1000;
  }

  /** Groups held now that have answered (a group being filled for the first time does not count yet). */
  get size(): number {
    let n = 0;
    for (const g of this.groups.values()) if (g.filled) n++;
    return n;
  }

  /** The group a question belongs to (see `retain`). */
  private groupKey(q: PlannedQuestion): string {
    return this.retain === 'asked'
      ? JSON.stringify(q.groupBy)
      : JSON.stringify([q.groupBy, q.filters, q.source.to - q.source.from]);
  }

  /**
   * Whether a question's group has been filled (answered from the cache at least once): asking it again reads only
   * the probe, the newest buckets and what changed. With `retain: 'recent'`, where questions come and go.
   */
  holds(q: PlannedQuestion): boolean {
    return this.groups.get(this.groupKey(q))?.filled === true;
  }

  /** Whether a question's group went over the memory bound lately (it is asked with the statement for now). */
  refuses(q: PlannedQuestion): boolean {
    return (this.overflow.get(this.groupKey(q)) ?? 0) > this.cycle;
  }

  /** Partials held now (every group). */
  get partials(): number {
    let n = 0;
    for (const g of this.groups.values()) n += g.partials;
    return n;
  }

  /** Bytes of the decoded states' bins held (the bulk of the cache's memory). */
  stateBytes(): number {
    let bytes = 0;
    const add = (partials: Partial[]) => {
      for (const p of partials)
        if (p.state) bytes += p.state.positive.counts.byteLength + p.state.negative.counts.byteLength;
    };
    for (const g of this.groups.values()) {
      for (const m of g.minutes.values()) add(m.partials);
      for (const b of g.blocks.values()) add(b.partials);
    }
    return bytes;
  }

  /** Forget everything (the next call fetches every minute again). */
  clear(): void {
    this.groups.clear();
    this.overflow.clear();
  }

  /**
   * The rows `seriesStatsQuery(database, questions)` returns, in no particular order: cached questions from memory
   * (after the probe and fetch statements), the others from `seriesStatsQuery` over them alone. A state the
   * decoder cannot read (another ClickHouse serialisation) turns the cache off for good: every question is then
   * asked with `seriesStatsQuery`, the same numbers, and `cycle.disabled` says why.
   */
  rows(
    questions: readonly PlannedQuestion[],
    read: ReadRows,
  ): Promise<{ rows: SeriesRow[]; cycle: BucketCacheCycle }> {
    const run = this.queue.then(() => this.answer(questions, read));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async answer(
    questions: readonly PlannedQuestion[],
    read: ReadRows,
  ): Promise<{ rows: SeriesRow[]; cycle: BucketCacheCycle }> {
    if (this.disabled === undefined) {
      try {
        return await this.cachedRows(questions, read);
      } catch (err) {
        if (!(err instanceof DDStateError)) throw err;
        this.clear();
        this.disabled = err.message;
      }
    }
    const rows = await this.fallback(
      questions.map((question, index) => ({ index, question })),
      read,
    );
    return { rows, cycle: { ...emptyCycle(), fallback: questions.length, disabled: this.disabled } };
  }

  private async cachedRows(
    questions: readonly PlannedQuestion[],
    read: ReadRows,
  ): Promise<{ rows: SeriesRow[]; cycle: BucketCacheCycle }> {
    this.cycle++;
    const cycle = emptyCycle();
    // Which questions the cache answers, by group (see `retain`).
    const byGroup = new Map<string, { groupBy: Dimension[]; asked: Asked[] }>();
    const rest: Asked[] = [];
    questions.forEach((question, index) => {
      const key = this.groupKey(question);
      if (!cacheable(question, this.granularity_s) || (this.overflow.get(key) ?? 0) > this.cycle)
        return rest.push({ index, question });
      const entry = byGroup.get(key) ?? { groupBy: question.groupBy, asked: [] };
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
    if (this.retain === 'asked')
      for (const key of this.groups.keys()) if (!byGroup.has(key)) this.groups.delete(key);
    const fallback = (asked: Asked[]) => {
      const answer = this.fallback(asked, read);
      // Awaited below; marked handled so that a failure of the cached path first leaves no unhandled rejection.
      answer.catch(() => undefined);
      return answer;
    };
    const pending = [fallback(rest)];

    // The groups' shapes: a changed shape (a rule added, a filter set gone) starts the group afresh.
    const active: Active[] = [];
    for (const [key, entry] of byGroup) {
      const filterSets = [...new Set(entry.asked.map((a) => filterKey(a.question.filters)))].sort();
      const flags = [
        ...new Set(entry.asked.flatMap((a) => (a.question.responseFlag ? [a.question.responseFlag] : []))),
      ].sort();
      const quantiles = entry.asked.some((a) => a.question.quantiles ?? true);
      const lean = entry.asked.every((a) => a.question.source.kind === 'routes');
      const table = tierTable(FAMILY_FOR[lean ? 'routes' : 'requests'], this.granularity_s);
      const signature = JSON.stringify([filterSets, flags, quantiles, table]);
      let group = this.groups.get(key);
      if (!group || group.signature !== signature) {
        group = {
          groupBy: entry.groupBy,
          table,
          unit: this.unit,
          used: 0,
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
      group.used = this.cycle;
      active.push({
        group,
        asked: entry.asked,
        from,
        to,
        newest: Math.max(from, to - NEWEST_BUCKETS[this.granularity_s] * this.unit),
      });
      this.prune(group, from, to);
    }
    cycle.groups = active.length;
    if (active.length === 0) {
      const rows = (await Promise.all(pending)).flat();
      cycle.fallback = rest.length;
      return { rows, cycle };
    }

    // 1. one statement: the probe over every cached minute, and the newest minutes of every group.
    let t0 = performance.now();
    const tables = [...new Set(active.map((a) => a.group.table))];
    const first = await read<FetchRow>(this.firstQuery(active, tables));
    // Per table: a group's stored sums are compared with its own table's (the cascading views' inserts into the two
    // families are not one snapshot).
    const probes = new Map(tables.map((t) => [t, new Map<number, number>()]));
    const newest = active.map(() => new Map<number, FetchRow[]>());
    for (const row of first) {
      const g = Number(row.grp);
      if (g > PROBE_GROUP - tables.length)
        probes.get(tables[PROBE_GROUP - g])!.set(Number(row.minute), Number(row.requests));
      else {
        const m = Number(row.minute);
        const list = newest[g].get(m);
        if (list) list.push(row);
        else newest[g].set(m, [row]);
      }
    }
    active.forEach(({ group, newest: from, to }, g) => {
      for (let m = from; m < to; m += group.unit) {
        // Stored with the sum of the rows read with them (every mask, 0 included), so a later probe compares with
        // exactly what is held whatever the two branches' snapshots were.
        const rows = newest[g].get(m) ?? [];
        let sum = 0;
        for (const r of rows) sum += Number(r.requests);
        const partials = rows.filter((r) => Number(r.mask) !== 0).map((r) => toPartial(r, group));
        this.store(group, m, sum, partials);
        cycle.minutesFetched++;
        cycle.partialsFetched += partials.length;
      }
    });
    cycle.probeMs = performance.now() - t0;

    // 2. the older minutes whose sum changed (late rows; every minute on the first cycle), read after the probe, so
    // what is read holds at least what the probe counted: a minute stored with the probe's sum is fetched again if
    // it held more.
    t0 = performance.now();
    const wanted: { group: Group; minutes: number[] }[] = [];
    const probed = (group: Group, m: number) => probes.get(group.table)!.get(m) ?? 0;
    for (const { group, from, newest: until } of active) {
      const changed: number[] = [];
      for (let m = from; m < until; m += group.unit) {
        cycle.minutesProbed++;
        const sum = probed(group, m);
        const held = group.minutes.get(m);
        if (held && held.sum === sum) continue;
        if (sum === 0) this.store(group, m, 0, []);
        else changed.push(m);
      }
      if (changed.length) wanted.push({ group, minutes: changed });
    }
    // In chunks of FETCH_CHUNK_BUCKETS per group: a first fill's JSON (≈ 3 KB of base64 per state) is parsed and
    // decoded a chunk at a time, so the process's event loop is never held for the whole of it.
    for (let c = 0; wanted.some((w) => w.minutes.length > c); c += FETCH_CHUNK_BUCKETS) {
      const chunk = wanted
        .map((w) => ({ group: w.group, minutes: w.minutes.slice(c, c + FETCH_CHUNK_BUCKETS) }))
        .filter((w) => w.minutes.length > 0);
      // With the rows no filter set holds (mask 0, no state), so each minute is stored with the sum of what was
      // read: a replica behind the one the probe read cannot leave a minute stored as complete.
      const rows = await read<FetchRow>(this.fetchQuery(chunk));
      const fresh = chunk.map(() => new Map<number, { sum: number; partials: Partial[] }>());
      for (const row of rows) {
        const g = Number(row.grp);
        const m = Number(row.minute);
        let read = fresh[g].get(m);
        if (!read) fresh[g].set(m, (read = { sum: 0, partials: [] }));
        read.sum += Number(row.requests);
        if (Number(row.mask) !== 0) read.partials.push(toPartial(row, chunk[g].group));
      }
      chunk.forEach(({ group, minutes }, g) => {
        for (const m of minutes) {
          const { sum, partials } = fresh[g].get(m) ?? { sum: 0, partials: [] };
          this.store(group, m, sum, partials);
          cycle.minutesFetched++;
          cycle.partialsFetched += partials.length;
        }
      });
    }
    cycle.fetchMs = performance.now() - t0;

    // The memory bound: groups not asked in this call go first, least recently asked first (`retain: 'recent'`),
    // then the largest groups of this call go back to the statement until the rest fits.
    let held = this.partials;
    if (this.retain === 'recent' && (held > this.maxPartials || this.groups.size > this.maxGroups)) {
      const asked = new Set(active.map((a) => a.group));
      const idle = [...this.groups].filter(([, g]) => !asked.has(g)).sort(([, a], [, b]) => a.used - b.used);
      for (const [key, g] of idle) {
        if (held <= this.maxPartials && this.groups.size <= this.maxGroups) break;
        held -= g.partials;
        this.groups.delete(key);
      }
    }
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
    for (const { group } of active) group.filled = true;
    cycle.fallback = rest.length;
    cycle.partials = this.partials;
    cycle.stateBytes = this.stateBytes();
    for (const part of await Promise.all(pending)) rows.push(...part);
    return { rows, cycle };
  }

  /** Drops the minutes and blocks outside [from, to). */
  private prune(group: Group, from: number, to: number): void {
    for (const [m, minute] of group.minutes)
      if (m < from || m >= to) {
        group.minutes.delete(m);
        group.partials -= minute.partials.length;
      }
    for (const [key, block] of group.blocks) {
      const start = Number(key.split(' ')[1]);
      if (start < from || start + BLOCK_BUCKETS * group.unit > to) {
        group.blocks.delete(key);
        group.partials -= block.partials.length;
      }
    }
  }

  private store(group: Group, m: number, sum: number, partials: Partial[]): void {
    group.partials += partials.length - (group.minutes.get(m)?.partials.length ?? 0);
    group.minutes.set(m, { sum, partials, seq: ++group.stored });
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

  /**
   * The first statement of a cycle: `sum(requests)` per minute over the minutes older than the newest ones (rows
   * with `grp` PROBE_GROUP - the table's index, the sum in `requests`; one probe per table read), and every
   * group's newest minutes in full (`fetchQuery`).
   */
  private firstQuery(active: Active[], tables: string[]): BuiltQuery {
    const zeros = SUM_COLUMNS.slice(1)
      .map((c) => `toUInt64(0) AS ${c}`)
      .join(', ');
    const probes: BuiltQuery[] = [];
    tables.forEach((table, t) => {
      const reading = active.filter((a) => a.group.table === table);
      const from = Math.min(...reading.map((a) => a.from));
      const until = Math.max(...reading.map((a) => a.newest));
      if (until <= from) return;
      probes.push({
        query:
          `SELECT toUInt16(${PROBE_GROUP - t}) AS grp, toInt64(toUnixTimestamp(p.bucket_start)) * 1000 AS minute, ` +
          `CAST([], 'Array(String)') AS series, toUInt32(0) AS mask, toUInt64(sum(p.requests)) AS requests, ${zeros}, ` +
          `toFloat64(0) AS max_ms, CAST([], 'Array(UInt64)') AS flagged, '' AS state ` +
          `FROM ${ident(this.database)}.${ident(table)} AS p ` +
          `WHERE p.bucket_start >= fromUnixTimestamp64Milli({probe${t}_from:Int64}, 'UTC') ` +
          `AND p.bucket_start < fromUnixTimestamp64Milli({probe${t}_to:Int64}, 'UTC') GROUP BY minute`,
        params: { [`probe${t}_from`]: from, [`probe${t}_to`]: until },
      });
    });
    const newest = this.fetchQuery(
      active.map((a) => ({ group: a.group, minutes: bucketsOf(a.newest, a.to, a.group.unit) })),
    );
    const all = [...probes, newest];
    return {
      query: all.map((q) => q.query).join('\nUNION ALL\n'),
      params: Object.assign({}, ...all.map((q) => q.params)) as Record<string, unknown>,
    };
  }

  /**
   * One UNION ALL branch per group: the minutes' partials per (minute, series, filter mask), and the rows no filter
   * set holds (mask 0, one row per minute, no state), so the minute's whole sum comes with its partials.
   */
  private fetchQuery(wanted: { group: Group; minutes: number[] }[]): BuiltQuery {
    const parts = wanted.map(({ group, minutes }, g) => {
      const params: Record<string, unknown> = {
        minutes,
        from: Math.min(...minutes),
        to: Math.max(...minutes) + group.unit,
      };
      const columns = group.groupBy.length
        ? `[${group.groupBy.map((d) => `toString(src.${DIMENSION_COLUMNS[d]})`).join(', ')}]`
        : "CAST([], 'Array(String)')";
      const series = `if(mask = 0, CAST([], 'Array(String)'), ${columns})`;
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
        ? `if(mask = 0, '', base64Encode(toString(${LATENCY_QUANTILES_MERGE_STATE}(src.duration_quantiles))))`
        : "''";
      const query =
        `SELECT toUInt16(${g}) AS grp, toInt64(toUnixTimestamp(src.bucket_start)) * 1000 AS minute, ${series} AS series, ` +
        `toUInt32(${bits.join(' + ')}) AS mask, ` +
        SUM_COLUMNS.map((c) => `toUInt64(sum(src.${c})) AS ${c}`).join(', ') +
        `, max(src.duration_max_ms) AS max_ms, ${flagged} AS flagged, ${state} AS state ` +
        `FROM ${ident(this.database)}.${ident(group.table)} AS src ` +
        `WHERE src.bucket_start >= fromUnixTimestamp64Milli({from:Int64}, 'UTC') ` +
        `AND src.bucket_start < fromUnixTimestamp64Milli({to:Int64}, 'UTC') ` +
        `AND minute IN {minutes:Array(Int64)} GROUP BY minute, series, mask`;
      return prefixed({ query, params }, `g${g}_`);
    });
    return {
      query: parts.map((p) => p.query).join('\nUNION ALL\n'),
      params: Object.assign({}, ...parts.map((p) => p.params)) as Record<string, unknown>,
    };
  }
}

const bucketsOf = (from: number, to: number, unit: number) => {
  const out: number[] = [];
  for (let m = from; m < to; m += unit) out.push(m);
  return out;
};

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
  const block = BLOCK_BUCKETS * group.unit;
  for (let m = start; m < start + block; m += group.unit)
    newest = Math.max(newest, group.minutes.get(m)?.seq ?? 0);
  const held = group.blocks.get(key);
  if (held && held.seq >= newest) return held.partials;
  const accs = new Map<string, Accumulator>();
  for (let m = start; m < start + block; m += group.unit)
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
  const block = BLOCK_BUCKETS * group.unit;
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
    for (let end = to; end > oldest;) {
      const start = end - block;
      // A question starting inside (start, end) needs its own edge: no block there.
      const whole =
        end % block === 0 &&
        start >= oldest &&
        (next >= list.length || list[next].question.source.from <= start);
      const m = whole ? start : end - group.unit;
      const partials = whole ? blockPartials(group, bit, start) : (group.minutes.get(m)?.partials ?? []);
      accumulate(accs, partials, bit, group.flags.length, m >= sketchFrom);
      while (next < list.length && list[next].question.source.from === m) emit(list[next++]);
      end = m;
    }
  }
}
