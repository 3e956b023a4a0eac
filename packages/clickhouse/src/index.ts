export { createClickHouse, ClickHouseUnavailableError, CLIENT_SETTINGS } from './clickhouse.js';
export { ident } from './ident.js';
export type {
  ClickHouse,
  ClickHouseOptions,
  InsertResult,
  InsertOptions,
  InsertSettings,
  ClickHouseRole,
  RoleCredentials,
  StreamTextOptions,
} from './clickhouse.js';
export { classifyInsertError } from './insert-errors.js';
export type { InsertFailure } from './insert-errors.js';
export {
  migrate,
  listMigrations,
  requiredSchemaVersion,
  schemaStatus,
  BOOKKEEPING_SQL,
  SchemaModeError,
} from './migrations.js';
export type { MigrateOptions, Migration, SchemaStatus } from './migrations.js';
export { renderMigration, storageTableName, LOCAL_SUFFIX, REPLICA_PATH } from './render.js';
export type { RenderOptions } from './render.js';
export { acquireMigrationLock, lockState, MigrationLockError } from './lock.js';
export type { LockOptions, LockRow, LockState, MigrationLock } from './lock.js';
export { quoteString, settingsClause } from './sql-text.js';
export type { SettingValue } from './sql-text.js';
export { readJson, ForeignResultError, foreignResults } from './read.js';
export type { JsonResult } from './read.js';
export {
  renderRoleDdl,
  renderMigratorGrants,
  provisionRoles,
  queryLimitSettings,
  SQL_QUOTA,
  WRITER_INSERT_TABLES,
  PRIVATE_TABLES,
} from './users.js';
export type { QueryLimits, SqlLimits, RoleDdlOptions } from './users.js';
