/**
 * One definition of a latency quantile for every reader (this package has no dependencies, so the collector's
 * decoder threads load it alone; @gatescope/query re-exports it with the SQL side): the API (raw rows and rollups), the live socket, the
 * Grafana panels, the alert evaluator and any in-process window (a collector's live counters).
 *
 * The definition is ClickHouse's `quantilesDD(0.005, …)` (a DDSketch with 0.5 % relative accuracy), and
 * `LatencySketch` below reproduces it bit for bit in JavaScript, so a sketch kept in memory, a state merged from the
 * rollups and a query over raw rows answer the same number for the same requests.
 *
 * How ClickHouse 26.x computes it (src/AggregateFunctions/DDSketch.h, DDSketch/Mapping.h, DDSketch/Store.h):
 * - gamma = (1 + α) / (1 − α), multiplier = 1 / ln(gamma);
 * - a value v > min_possible (DBL_MIN·gamma) goes to bucket key(v) = trunc(ln(v) · multiplier) (a C++ cast: toward
 *   zero, so floor for v ≥ 1 and ceil for v < 1); values in [−min_possible, min_possible] (0 ms) count as zeros,
 *   negative ones go to a mirrored store;
 * - the quantile q of n values is at rank r = q·(n − 1); the answer is the bucket holding the ⌊r⌋-th value
 *   (0-based: the first bucket whose running count exceeds r), reported as value(key) = gamma^key · (1 + α);
 * - states merge by adding bucket counts, so merging is exact: a rollup's merged states equal one sketch of the
 *   same rows.
 *
 * Error bound against the exact order statistic x₍⌊r⌋₎: within α = 0.5 % for values ≥ 1 ms; for values under 1 ms
 * the key truncates upward and the reported value is up to (1 + α)·gamma − 1 ≈ 1.5 % (< 15 µs) above it; 0 ms is
 * exact. The rollup tables store states of exactly this function (migrations/0002_create_rollups.sql).
 */

/** The DDSketch relative accuracy α of every latency quantile (0.5 %). */
export const LATENCY_RELATIVE_ACCURACY = 0.005;
/** The quantile levels every stats question returns, in this order: q[1]=p50, q[2]=p90, q[3]=p95, q[4]=p99. */
export const QUANTILE_LEVELS = [0.5, 0.9, 0.95, 0.99] as const;
/** Their names in every answer (API, live, Grafana panels). */
export const QUANTILE_NAMES = ['p50_ms', 'p90_ms', 'p95_ms', 'p99_ms'] as const;
export type QuantileName = (typeof QUANTILE_NAMES)[number];

/** A sketch as plain data, for sending across threads or processes: `[key, count]` pairs per store. */
export interface LatencySketchData {
  relative_accuracy: number;
  zero_count: number;
  positive: [number, number][];
  negative: [number, number][];
}

/**
 * ClickHouse's quantilesDD in JavaScript: same bucket keys, same rank rule, same reported values. Mergeable
 * (counts add), so per-second or per-replica sketches combine into one window exactly.
 */
export class LatencySketch {
  readonly relativeAccuracy: number;
  private readonly multiplier: number;
  private readonly minPossible: number;
  private readonly maxPossible: number;
  private readonly positive = new Map<number, number>();
  private readonly negative = new Map<number, number>();
  private zeros = 0;
  private negatives = 0;
  private total = 0;

  constructor(relativeAccuracy: number = LATENCY_RELATIVE_ACCURACY) {
    if (!(relativeAccuracy > 0 && relativeAccuracy < 1))
      throw new RangeError(`relative accuracy must be between 0 and 1, got ${relativeAccuracy}`);
    this.relativeAccuracy = relativeAccuracy;
    const gamma = (1 + relativeAccuracy) / (1 - relativeAccuracy);
    this.multiplier = 1 / Math.log(gamma);
    this.minPossible = DBL_MIN * gamma;
    this.maxPossible = Number.MAX_VALUE / gamma;
  }

  /** Values added (weights summed). */
  get count(): number {
    return this.total;
  }

  /** The bucket key of a positive value (ClickHouse: `static_cast<int>(log(v) * multiplier)`). */
  key(value: number): number {
    return Math.trunc(Math.log(value) * this.multiplier);
  }

  /** The value reported for a bucket: its lower bound times (1 + α). */
  value(key: number): number {
    return Math.exp(key / this.multiplier) * (1 + this.relativeAccuracy);
  }

  /**
   * Which store a value counts in: 1 the positive one (at `key(value)`), -1 the mirrored one (at `key(-value)`), 0
   * the zeros. Throws for a value out of the sketch's range.
   */
  storeOf(value: number): 1 | -1 | 0 {
    if (value > this.minPossible) {
      if (value > this.maxPossible) throw new RangeError(`value ${value} is out of range`);
      return 1;
    }
    if (value < -this.minPossible) {
      if (-value > this.maxPossible) throw new RangeError(`value ${value} is out of range`);
      return -1;
    }
    return 0;
  }

  add(value: number, weight = 1): this {
    if (!(weight > 0)) throw new RangeError('weight must be a positive number');
    const store = this.storeOf(value);
    if (store === 1) {
      const k = this.key(value);
      this.positive.set(k, (this.positive.get(k) ?? 0) + weight);
    } else if (store === -1) {
      const k = this.key(-value);
      this.negative.set(k, (this.negative.get(k) ?? 0) + weight);
      this.negatives += weight;
    } else {
      this.zeros += weight;
    }
    this.total += weight;
    return this;
  }

  merge(other: LatencySketch): this {
    sameAccuracy(this.relativeAccuracy, other.relativeAccuracy);
    for (const [k, c] of other.positive) this.positive.set(k, (this.positive.get(k) ?? 0) + c);
    for (const [k, c] of other.negative) this.negative.set(k, (this.negative.get(k) ?? 0) + c);
    this.zeros += other.zeros;
    this.negatives += other.negatives;
    this.total += other.total;
    return this;
  }

  /** Add a sketch sent as data (`toJSON`), as `merge` does. */
  mergeJSON(data: LatencySketchData): this {
    sameAccuracy(this.relativeAccuracy, data.relative_accuracy);
    for (const [k, c] of data.positive) this.positive.set(k, (this.positive.get(k) ?? 0) + c);
    let negatives = 0;
    for (const [k, c] of data.negative) {
      this.negative.set(k, (this.negative.get(k) ?? 0) + c);
      negatives += c;
    }
    this.zeros += data.zero_count;
    this.negatives += negatives;
    this.total += data.zero_count + negatives + data.positive.reduce((a, p) => a + p[1], 0);
    return this;
  }

  /** The quantile at `level` (0..1) as ClickHouse's quantilesDD reports it; NaN when empty. */
  quantile(level: number): number {
    if (!(level >= 0 && level <= 1) || this.total === 0) return NaN;
    const rank = level * (this.total - 1);
    const negCount = this.negatives;
    if (rank < negCount) {
      // The mirrored store counts from its largest magnitude down.
      const reversed = negCount - rank - 1;
      return -this.value(keyAtRank(this.negative, reversed, false));
    }
    if (rank < this.zeros + negCount) return 0;
    return this.value(keyAtRank(this.positive, rank - this.zeros - negCount, true));
  }

  /** The quantiles at `levels` (default p50, p90, p95, p99); null for an empty sketch. */
  quantiles(levels: readonly number[] = QUANTILE_LEVELS): (number | null)[] {
    return levels.map((l) => (this.total === 0 ? null : this.quantile(l)));
  }

  toJSON(): LatencySketchData {
    const pairs = (m: Map<number, number>) => [...m].sort((a, b) => a[0] - b[0]);
    return {
      relative_accuracy: this.relativeAccuracy,
      zero_count: this.zeros,
      positive: pairs(this.positive),
      negative: pairs(this.negative),
    };
  }

  static fromJSON(data: LatencySketchData): LatencySketch {
    const s = new LatencySketch(data.relative_accuracy);
    for (const [k, c] of data.positive) s.positive.set(k, (s.positive.get(k) ?? 0) + c);
    for (const [k, c] of data.negative) s.negative.set(k, (s.negative.get(k) ?? 0) + c);
    s.zeros = data.zero_count;
    s.negatives = data.negative.reduce((a, p) => a + p[1], 0);
    s.total = data.zero_count + s.negatives + data.positive.reduce((a, p) => a + p[1], 0);
    return s;
  }
}

/** Sketches merge only with sketches of the same relative accuracy (the same bucket keys). */
export function sameAccuracy(mine: number, theirs: number): void {
  if (theirs !== mine)
    throw new RangeError(`cannot merge sketches of relative accuracy ${theirs} and ${mine}`);
}

/** The smallest normal double (C++ `std::numeric_limits<double>::min()`). */
const DBL_MIN = 2.2250738585072014e-308;

/** ClickHouse's DDSketchDenseStore::keyAtRank over the store's keys in ascending order. */
function keyAtRank(store: Map<number, number>, rank: number, lower: boolean): number {
  const keys = [...store.keys()].sort((a, b) => a - b);
  let running = 0;
  for (const k of keys) {
    running += store.get(k)!;
    if ((lower && running > rank) || (!lower && running >= rank + 1)) return k;
  }
  return keys[keys.length - 1];
}

/**
 * The exact order statistic the sketch approximates: the ⌊q·(n − 1)⌋-th smallest value (0-based). `sorted` must be
 * ascending. Tests and benchmarks compare every path with it.
 */
export function exactQuantile(sorted: ArrayLike<number>, level: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.floor(level * (sorted.length - 1))];
}
