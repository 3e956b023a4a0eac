export { QueryError, QueryParamError } from './errors.js';
export {
  parseTimeRange,
  parseFilters,
  parseDuration,
  parseInstant,
  parseIntParam,
  parseEnumParam,
  parseNumberParam,
  singleParam,
  listParam,
  STATUS_CLASSES,
  FILTER_NAMES,
  DEFAULT_RANGE_MS,
  MAX_RANGE_MS,
} from './params.js';
export type { RawParams, TimeRange, Filters, StatusClass, Restriction } from './params.js';
export {
  planSource,
  rawSource,
  rawIsCheaper,
  RAW_ROWS_PER_STATE,
  autoStep,
  filterDimensions,
  SOURCE_MODES,
  NICE_STEPS_S,
  MAX_POINTS_HARD,
  HOURLY_FROM_MS,
  MINUTELY_FROM_MS,
  ROLLUP_TIERS_S,
  tierParts,
  sourceParts,
} from './plan.js';
export type { Source, SourcePart, SourceKind, SourceMode, Dimension, PlanInput } from './plan.js';
export {
  estimateQuery,
  summaryQuery,
  routesQuery,
  splitQuery,
  timeseriesQuery,
  statusQuery,
  deadLettersQuery,
  topQuery,
  requestsQuery,
  whereClause,
  filterConditions,
  withLimits,
  statsColumns,
  rollupColumnsFromRaw,
  timeColumn,
  encodeCursor,
  decodeCursor,
  ROUTE_SORTS,
  STATS_METRICS,
  TOP_DIMENSIONS,
  TOP_SORTS,
  ROLLUP_QUANTILES,
  DIMENSION_COLUMNS,
} from './sql.js';
export type { BuiltQuery, RouteSort, TopDimension, TopSort, RequestsCursor } from './sql.js';
export { toStats } from './stats.js';
export type { Stats, StatsRow } from './stats.js';
export {
  PARSE_STATEMENT,
  explainStatement,
  notSelect,
  parseAst,
  checkAst,
  syntaxViolation,
  restrictionPredicate,
  isDeniedFunction,
  GENERATOR_TABLE_FUNCTIONS,
  DENIED_FUNCTIONS,
  RESTRICTION_COLUMNS,
} from './sql-guard.js';
export type { SqlViolation, SqlViolationCode, SqlCheckContext, AstNode } from './sql-guard.js';
export {
  runSettings,
  engineSqlLimits,
  framing,
  FramedResultReader,
  SqlResultError,
  rowsAsObjects,
  rowsAsJson,
  rowsAsJsonPieces,
  toCsv,
  AdmissionGate,
  AdmissionRefused,
  RESULT_FORMAT,
  ENGINE_RESULT_BYTES_FACTOR,
  ENGINE_RESULT_ROWS_MARGIN,
} from './sql-run.js';
export type { SqlRunLimits, SqlResult, Framing } from './sql-run.js';
export { valuesQuery, flowsQuery, schemaQuery, VALUE_DIMENSIONS, GATEWAY_EXPR } from './explore.js';
export type { ValueDimension } from './explore.js';
export {
  compareCanary,
  chooseBaseline,
  verdictOf,
  spanLabel,
  serviceName,
  shortClusterName,
  MIN_CANARY_REQUESTS,
  SAME_LATENCY,
} from './canary.js';
export type { ClusterStats, CanaryCluster, CanaryResult, VsBaseline, BaselineChoice } from './canary.js';
export { seriesStatsQuery, planSeriesQuestion, rateSeconds } from './series.js';
export type { SeriesQuestion, SeriesRow, PlannedQuestion } from './series.js';
export { BucketCache, BUCKET_CACHE_MAX_PARTIALS } from './bucket-cache.js';
export type { BucketCacheOptions, BucketCacheCycle, ReadRows } from './bucket-cache.js';
export {
  LatencySketch,
  exactQuantile,
  latencyQuantilesSql,
  latencyQuantilesMergeSql,
  LATENCY_RELATIVE_ACCURACY,
  LATENCY_QUANTILES,
  LATENCY_QUANTILES_STATE,
  LATENCY_QUANTILES_MERGE,
  LATENCY_STATE_TYPE,
  QUANTILE_LEVELS,
  QUANTILE_NAMES,
  decodeDDState,
  latencySketchFromState,
  DenseLatencySketch,
  DDStateError,
} from './quantiles.js';
export type { LatencySketchData, QuantileName, DDState, DDStateStore } from './quantiles.js';
export { QueryReader, limitError, DENSITY_TTL_MS } from './reader.js';
export type { QueryReaderOptions } from './reader.js';
export {
  windowStats,
  routeStats,
  timeseries,
  clusterStats,
  splitDeltas,
  fillSeries,
  metricValue,
  buckets,
  parseMetrics,
  parseStep,
  sourceInfo,
  TIMESERIES_METRICS,
  TIMESERIES_GROUPS,
  DEFAULT_TIMESERIES_METRICS,
} from './answers.js';
export type {
  WindowQuestion,
  WindowStats,
  RouteStats,
  Series,
  SplitCluster,
  TimeseriesMetric,
  TimeseriesGroup,
} from './answers.js';
export { liveWindowQuery, livePointsQuery, liveTailQuery, liveTailRow } from './live.js';
export type { LiveRangeOptions } from './live.js';
