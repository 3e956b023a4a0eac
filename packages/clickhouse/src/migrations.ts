import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ClickHouse } from './clickhouse.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export interface MigrateOptions {
  retentionDays: number;
  rollupRetentionDays: number;
  /** `ON CLUSTER` target for scale-out DDL; unset for the embedded engine or a single server. */
  cluster?: string;
}

const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/', import.meta.url));

/** The numbered SQL files, in order: `0001_create_access_log.sql` -> version 1. */
export function listMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => ({
      version: Number(f.slice(0, 4)),
      name: f.replace(/\.sql$/, ''),
      sql: readFileSync(dir + f, 'utf8'),
    }));
}

/** Fill the template parameters and split into statements (files hold no `;` outside statement ends). */
export function renderMigration(sql: string, vars: { database: string } & MigrateOptions): string[] {
  const values: Record<string, string> = {
    database: vars.database,
    on_cluster: vars.cluster ? `ON CLUSTER '${vars.cluster}'` : '',
    retention_days: String(vars.retentionDays),
    rollup_retention_days: String(vars.rollupRetentionDays),
  };
  const rendered = sql.replace(/--.*$/gm, '').replace(/\{\{(\w+)\}\}/g, (_, k: string) => {
    if (!(k in values)) throw new Error(`migration uses unknown parameter {{${k}}}`);
    return values[k];
  });
  return rendered
    .split(/;\s*$/m)
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * Apply every migration not yet recorded in `<db>.schema_migrations`, in order. Idempotent: the statements
 * themselves use IF NOT EXISTS, and applied versions are skipped. Then bring the retention TTLs in line
 * with the configuration (a changed GATESCOPE_RETENTION_DAYS takes effect at the next start).
 */
export async function migrate(ch: ClickHouse, options: MigrateOptions): Promise<{ applied: string[] }> {
  const db = ch.database;
  const onCluster = options.cluster ? ` ON CLUSTER '${options.cluster}'` : '';
  await ch.client.command({ query: `CREATE DATABASE IF NOT EXISTS ${db}${onCluster}` });
  await ch.client.command({
    query: `CREATE TABLE IF NOT EXISTS ${db}.schema_migrations${onCluster} (version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = MergeTree ORDER BY version`,
  });
  const done = await ch.client.query({
    query: `SELECT version FROM ${db}.schema_migrations`,
    format: 'JSONEachRow',
  });
  const appliedVersions = new Set((await done.json<{ version: number }>()).map((r) => Number(r.version)));
  const applied: string[] = [];
  for (const m of listMigrations()) {
    if (appliedVersions.has(m.version)) continue;
    for (const statement of renderMigration(m.sql, { database: db, ...options })) {
      await ch.client.command({ query: statement });
    }
    await ch.client.insert({
      table: `${db}.schema_migrations`,
      values: [{ version: m.version, name: m.name }],
      format: 'JSONEachRow',
    });
    applied.push(m.name);
  }
  await applyRetention(ch, options);
  return { applied };
}

/**
 * Which tables' TTL follows which retention setting: the raw tables keep `retentionDays` of `start_time`;
 * rollup tables (named `<table>_1m`, `_1h`, `_1d`, …, time column `bucket_start`) keep `rollupRetentionDays`.
 */
function retentionRule(
  table: string,
): { column: string; setting: 'retentionDays' | 'rollupRetentionDays' } | undefined {
  if (table === 'http_requests' || table === 'tcp_connections')
    return { column: 'start_time', setting: 'retentionDays' };
  if (/_\d+[smhd]$/.test(table)) return { column: 'bucket_start', setting: 'rollupRetentionDays' };
  return undefined;
}

async function applyRetention(ch: ClickHouse, options: MigrateOptions): Promise<void> {
  const rs = await ch.client.query({
    query: `SELECT name, engine_full FROM system.tables WHERE database = {db:String}`,
    query_params: { db: ch.database },
    format: 'JSONEachRow',
  });
  for (const { name, engine_full } of await rs.json<{ name: string; engine_full: string }>()) {
    const rule = retentionRule(name);
    if (!rule) continue;
    const days = options[rule.setting];
    if (engine_full.includes(`toIntervalDay(${days})`)) continue;
    await ch.client.command({
      query: `ALTER TABLE ${ch.database}.${name}${options.cluster ? ` ON CLUSTER '${options.cluster}'` : ''} MODIFY TTL toDateTime(${rule.column}) + INTERVAL ${days} DAY`,
      clickhouse_settings: { materialize_ttl_after_modify: 0 },
    });
  }
}
