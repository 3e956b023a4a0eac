/**
 * The latency sketch of the collector's live window: ClickHouse's `quantilesDD(0.005, …)` (a DDSketch with 0.5 %
 * relative accuracy) kept in memory, mergeable (bucket counts add), so per-thread and per-replica partial windows
 * merge into one exactly.
 *
 * Same rules as the engine (src/AggregateFunctions/DDSketch): gamma = (1 + α) / (1 − α); a value v > 0 goes to
 * bucket trunc(ln(v) / ln(gamma)); 0 ms counts as a zero; the quantile q of n values is the bucket holding the
 * ⌊q·(n − 1)⌋-th value (0-based), reported as gamma^key · (1 + α).
 *
 * One definition for the whole product lives in @gatescope/query (`LatencySketch`, branch `query`); this class is
 * the same sketch restricted to what the live window needs (durations are never negative), named alike so the two
 * unify when both are on main: import that one here and delete this file.
 */
export const LIVE_LATENCY_RELATIVE_ACCURACY = 0.005;

const GAMMA = (1 + LIVE_LATENCY_RELATIVE_ACCURACY) / (1 - LIVE_LATENCY_RELATIVE_ACCURACY);
const MULTIPLIER = 1 / Math.log(GAMMA);
/** Below this a duration counts as 0 (the engine's min_possible = DBL_MIN · gamma). */
const MIN_POSITIVE = 2.2250738585072014e-308 * GAMMA;

/** A sketch as plain data (between threads and processes): bucket keys ascending, their counts, zeros. */
export interface LatencySketchData {
  zeros: number;
  keys: number[];
  counts: number[];
}

export class LatencySketch {
  private readonly buckets = new Map<number, number>();
  private zeros = 0;
  private total = 0;

  get count(): number {
    return this.total;
  }

  /** A duration in ms (negative or NaN values are not durations: counted as 0). */
  add(value: number, weight = 1): this {
    if (value > MIN_POSITIVE) {
      const k = Math.trunc(Math.log(value) * MULTIPLIER);
      this.buckets.set(k, (this.buckets.get(k) ?? 0) + weight);
    } else this.zeros += weight;
    this.total += weight;
    return this;
  }

  merge(other: LatencySketch): this {
    for (const [k, c] of other.buckets) this.buckets.set(k, (this.buckets.get(k) ?? 0) + c);
    this.zeros += other.zeros;
    this.total += other.total;
    return this;
  }

  mergeData(data: LatencySketchData): this {
    for (let i = 0; i < data.keys.length; i++) {
      const k = data.keys[i];
      this.buckets.set(k, (this.buckets.get(k) ?? 0) + data.counts[i]);
      this.total += data.counts[i];
    }
    this.zeros += data.zeros;
    this.total += data.zeros;
    return this;
  }

  /** The quantile at `level` as quantilesDD reports it; null when empty. */
  quantile(level: number): number | null {
    if (this.total === 0) return null;
    const rank = level * (this.total - 1);
    if (rank < this.zeros) return 0;
    const keys = [...this.buckets.keys()].sort((a, b) => a - b);
    let running = this.zeros;
    for (const k of keys) {
      running += this.buckets.get(k)!;
      if (running > rank) return Math.exp(k / MULTIPLIER) * (1 + LIVE_LATENCY_RELATIVE_ACCURACY);
    }
    return Math.exp(keys[keys.length - 1] / MULTIPLIER) * (1 + LIVE_LATENCY_RELATIVE_ACCURACY);
  }

  quantiles(levels: readonly number[]): (number | null)[] {
    return levels.map((l) => this.quantile(l));
  }

  toData(): LatencySketchData {
    const keys = [...this.buckets.keys()].sort((a, b) => a - b);
    return { zeros: this.zeros, keys, counts: keys.map((k) => this.buckets.get(k)!) };
  }
}
