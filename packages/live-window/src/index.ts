export { LiveWindow, LiveWindowRecorder } from './live-window.js';
export type {
  LiveWindowCell,
  LiveWindowPartial,
  LiveWindowOptions,
  LiveWindowFilters,
  LiveWindowRow,
  LivePointRow,
} from './live-window.js';
export { LatencySketch, LIVE_LATENCY_RELATIVE_ACCURACY } from './latency-sketch.js';
export type { LatencySketchData } from './latency-sketch.js';
