/**
 * One definition of a latency quantile for every reader: the API (raw rows and rollups), the live socket, the
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

export {
  LATENCY_RELATIVE_ACCURACY,
  QUANTILE_LEVELS,
  QUANTILE_NAMES,
  LatencySketch,
  exactQuantile,
  decodeDDState,
  latencySketchFromState,
  DenseLatencySketch,
  DDStateError,
} from '@gatescope/live-window';
export type { QuantileName, LatencySketchData, DDState, DDStateStore } from '@gatescope/live-window';
import { LATENCY_RELATIVE_ACCURACY, QUANTILE_LEVELS } from '@gatescope/live-window';

const PARAMS = `${LATENCY_RELATIVE_ACCURACY}, ${QUANTILE_LEVELS.join(', ')}`;
/** The aggregate over raw durations: `quantilesDD(0.005, 0.5, 0.9, 0.95, 0.99)`. */
export const LATENCY_QUANTILES = `quantilesDD(${PARAMS})`;
/** Its state, as the rollup materialized views write it. */
export const LATENCY_QUANTILES_STATE = `quantilesDDState(${PARAMS})`;
/** Merging rollup states: the same numbers as `LATENCY_QUANTILES` over the same raw rows. */
export const LATENCY_QUANTILES_MERGE = `quantilesDDMerge(${PARAMS})`;
/** Merging states into a state (DDSketch bucket counts add, so merging in any grouping is exact). */
export const LATENCY_QUANTILES_MERGE_STATE = `quantilesDDMergeState(${PARAMS})`;
/** The rollup column type (must match migrations/0002_create_rollups.sql). */
export const LATENCY_STATE_TYPE = `AggregateFunction(quantilesDD(${PARAMS}), Float64)`;

/** The quantiles of raw durations (`column` in ms), as an array in QUANTILE_LEVELS order. */
export function latencyQuantilesSql(column = 'duration_ms'): string {
  return `${LATENCY_QUANTILES}(${column})`;
}
/** The quantiles merged from rollup states; with `where`, of the rows meeting it only (`quantilesDDMergeIf`). */
export function latencyQuantilesMergeSql(column = 'duration_quantiles', where?: string): string {
  return where
    ? `quantilesDDMergeIf(${PARAMS})(${column}, ${where})`
    : `${LATENCY_QUANTILES_MERGE}(${column})`;
}
