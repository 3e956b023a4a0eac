export { buildApp, type ApiDeps } from './app.js';
export { ApiError } from './errors.js';
export { DEFAULT_SQL_LIMITS, type SqlLimits } from './sql.js';
