export { LiveWindow, LiveWindowRecorder, liveFilterMatch, matchesLiveFilters } from './live-window.js';
export type {
  LiveWindowCell,
  LiveFilterKeys,
  LiveWindowPartial,
  LiveWindowOptions,
  LiveWindowFilters,
  LiveWindowRow,
  LivePointRow,
  LiveStatsColumns,
} from './live-window.js';
export {
  LatencySketch,
  LATENCY_RELATIVE_ACCURACY,
  QUANTILE_LEVELS,
  QUANTILE_NAMES,
  exactQuantile,
} from './latency-sketch.js';
export type { LatencySketchData, QuantileName } from './latency-sketch.js';
export { decodeDDState, latencySketchFromState, DenseLatencySketch, DDStateError } from './dd-state.js';
export type { DDState, DDStateStore } from './dd-state.js';
