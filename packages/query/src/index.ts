export { QueryParamError } from './errors.js';
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
export type { RawParams, TimeRange, Filters, StatusClass } from './params.js';
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
} from './plan.js';
export type { Source, SourceKind, SourceMode, Dimension, PlanInput } from './plan.js';
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
  statsColumns,
  encodeCursor,
  decodeCursor,
  ROUTE_SORTS,
  TOP_DIMENSIONS,
  TOP_SORTS,
  QUANTILE_LEVELS,
  ROLLUP_QUANTILES,
  DIMENSION_COLUMNS,
} from './sql.js';
export type { BuiltQuery, RouteSort, TopDimension, TopSort, RequestsCursor } from './sql.js';
export { toStats } from './stats.js';
export type { Stats, StatsRow } from './stats.js';
export { checkSqlPlan, SAFE_TABLE_FUNCTIONS, FORBIDDEN_FUNCTIONS } from './sql-guard.js';
export type { SqlViolation } from './sql-guard.js';
