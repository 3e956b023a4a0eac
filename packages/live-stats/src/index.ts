export {
  normaliseFilters,
  withRestriction,
  filterKey,
  filterClause,
  LiveFilterError,
  LIVE_FILTER_NAMES,
  MAX_FILTER_VALUE_LENGTH,
} from './filters.js';
export type { LiveFilters, LiveFilterName } from './filters.js';
export { healthOf, judgeHealth, HealthMemory, KIALI_DEFAULT_THRESHOLDS } from './health.js';
export type { Health, HealthThresholds, HealthCounts, HealthJudgement } from './health.js';
export { windowQuery, pointsQuery, tailQuery, limited } from './sql.js';
export type { LiveQuery, WindowQueryOptions, PointsQueryOptions } from './sql.js';
export {
  shapeWindow,
  shapePoint,
  sparkline,
  statusClasses,
  emptyStatusClasses,
  emptyPoint,
  round3,
  PointSeries,
} from './stats.js';
export type {
  LiveStats,
  LiveTotals,
  LiveRoute,
  LivePoint,
  StatusClasses,
  WindowRow,
  PointRow,
  ShapeWindowOptions,
} from './stats.js';
export { TailCursor, TailLimiter, tailRowKey } from './tail.js';
