export { createClickHouse, ClickHouseUnavailableError } from './clickhouse.js';
export type { ClickHouse, ClickHouseOptions, InsertSettings } from './clickhouse.js';
export { migrate, renderMigration, listMigrations } from './migrations.js';
export type { MigrateOptions, Migration } from './migrations.js';
