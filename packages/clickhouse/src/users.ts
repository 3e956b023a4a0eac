import type { ClickHouse, ClickHouseRole, RoleCredentials } from './clickhouse.js';
import { ident } from './ident.js';
import { quoteString } from './sql-text.js';

/**
 * The ClickHouse server users gatescope runs as, least privilege each, and the DDL that creates them:
 * - `writer` (the collector): `INSERT` on the tables it fills (`WRITER_INSERT_TABLES`) and `SELECT` on the schema
 *   version only, no DDL, no reads of traffic. The rollups are filled by materialized views, which run as their
 *   definer (the migrator), so the writer needs no grant on them.
 * - `reader` (API analytics, live ticks, alerts, Grafana) and `sql` (ad-hoc SQL): `SELECT` on the gatescope
 *   database and nothing else, a settings profile with `readonly = 1` whose limits are maxima the engine
 *   enforces, and (ad-hoc SQL) a quota.
 * - the migrator: the user `gatescope migrate` runs as (CLICKHOUSE_USER of that step). It creates the others, so
 *   it must exist first: `renderMigratorGrants` lists what it needs, for the operator (SECURITY.md).
 * Run by the migration step when the migrator may manage access; otherwise the operator runs the same statements.
 *
 * `readonly = 1` forbids every setting change, including the ones gatescope sends with each query. Those are
 * marked `CHANGEABLE_IN_READONLY`, limits with a `MAX`: gatescope's own values (from its configuration, equal to
 * the profile's) pass, anything above them is refused by the server. A setting sent with the value it already
 * has is not a change, so the overflow modes are `CONST`.
 */
export interface QueryLimits {
  /** Seconds (`max_execution_time`). */
  maxExecutionTimeS: number;
  /** Bytes (`max_memory_usage`). */
  maxMemoryBytes: number;
  /** Threads per query (`max_threads`). */
  maxThreads: number;
}
/** The engine-side values for ad-hoc SQL (@gatescope/query `engineSqlLimits` derives them from the caps). */
export interface SqlLimits extends QueryLimits {
  maxResultRows: number;
  maxResultBytes: number;
}

/** The per-query limit settings every read sends (API analytics, live ticks), from configuration only. */
export function queryLimitSettings(l: QueryLimits): Record<string, number | string> {
  return {
    max_execution_time: l.maxExecutionTimeS,
    timeout_overflow_mode: 'throw',
    max_memory_usage: l.maxMemoryBytes,
    max_threads: l.maxThreads,
  };
}

export interface RoleDdlOptions {
  database: string;
  cluster?: string;
  writer?: RoleCredentials;
  reader?: RoleCredentials & { limits: QueryLimits };
  sql?: RoleCredentials & { limits: SqlLimits };
}

/**
 * Tables no read role may see: receiver URLs and signing secrets (alerting). In a cluster the Distributed table
 * and the shards' `…_local` tables are both refused.
 */
export const PRIVATE_TABLES = ['alert_receiver_secrets', 'alert_receiver_secrets_local'] as const;

/**
 * The tables the collector inserts into: raw entries and its dead-letter index. A table the collector starts
 * writing gets its line here, and `gatescope migrate` grants it at the next run.
 */
export const WRITER_INSERT_TABLES = [
  'http_requests',
  'tcp_connections',
  'ingest_dead_letters',
  'ingest_ledger',
] as const;
/** What the collector reads: the schema version it waits for (`schemaStatus`). */
export const WRITER_SELECT_TABLES = ['schema_migrations'] as const;

/** ad-hoc SQL's quota: queries a minute and execution seconds an hour, whatever client uses the user. */
export const SQL_QUOTA = { queriesPerMinute: 120, executionSecondsPerHour: 1800 } as const;

/** Settings gatescope sends with ad-hoc SQL that the profile lets it change: framing and the per-token filter. */
const SQL_CHANGEABLE = [
  'additional_table_filters',
  'format_custom_escaping_rule',
  'format_custom_field_delimiter',
  'format_custom_row_before_delimiter',
  'format_custom_row_after_delimiter',
  'format_custom_row_between_delimiter',
  'format_custom_result_before_delimiter',
  'format_custom_result_after_delimiter',
];

function limitSettings(l: QueryLimits): string[] {
  const max = (name: string, v: number) => `${name} = ${v} MAX ${v} CHANGEABLE_IN_READONLY`;
  return [
    max('max_execution_time', l.maxExecutionTimeS),
    max('max_memory_usage', l.maxMemoryBytes),
    max('max_threads', l.maxThreads),
    "timeout_overflow_mode = 'throw' CONST",
  ];
}

const COMMON = [
  'readonly = 1',
  "date_time_output_format = 'iso' CHANGEABLE_IN_READONLY",
  'output_format_json_quote_64bit_integers = 0 CHANGEABLE_IN_READONLY',
  'allow_introspection_functions = 0 CONST',
  'allow_ddl = 0 CONST',
  // A client that hangs up cancels its query on the server.
  'cancel_http_readonly_queries_on_client_close = 1',
];

/**
 * The writer may not run DDL or introspection; it is not `readonly` (it inserts) and sets its insert settings
 * (deduplication tokens, `distributed_foreground_insert`) per statement.
 */
const WRITER = ['allow_ddl = 0 CONST', 'allow_introspection_functions = 0 CONST'];

type Role = ClickHouseRole | 'writer';

/** The statements that create (or bring in line) the role users, in order. Names and values are checked/quoted. */
export function renderRoleDdl(o: RoleDdlOptions): string[] {
  const db = ident(o.database);
  const on = o.cluster ? ` ON CLUSTER ${quoteString(o.cluster)}` : '';
  const out: string[] = [];
  const roles: [Role, RoleCredentials, string[]][] = [];
  if (o.writer) roles.push(['writer', o.writer, WRITER]);
  if (o.reader) roles.push(['reader', o.reader, [...COMMON, ...limitSettings(o.reader.limits)]]);
  if (o.sql) {
    const l = o.sql.limits;
    roles.push([
      'sql',
      o.sql,
      [
        ...COMMON,
        ...limitSettings(l),
        `max_result_rows = ${l.maxResultRows} MAX ${l.maxResultRows} CHANGEABLE_IN_READONLY`,
        `max_result_bytes = ${l.maxResultBytes} MAX ${l.maxResultBytes} CHANGEABLE_IN_READONLY`,
        "result_overflow_mode = 'throw' CONST",
        ...SQL_CHANGEABLE.map((s) => `${s} CHANGEABLE_IN_READONLY`),
      ],
    ]);
  }
  for (const [role, cred, settings] of roles) {
    const user = ident(cred.username);
    const profile = `${db}_${role}`;
    const identified = `IDENTIFIED WITH sha256_password BY ${quoteString(cred.password)}`;
    const tail = `DEFAULT DATABASE ${db} SETTINGS PROFILE ${quoteString(profile)}`;
    out.push(
      `CREATE SETTINGS PROFILE OR REPLACE ${profile}${on} SETTINGS ${settings.join(', ')}`,
      `CREATE USER IF NOT EXISTS ${user}${on} ${identified} ${tail}`,
      `ALTER USER ${user}${on} ${identified} ${tail}`,
      `REVOKE${on} ALL ON *.* FROM ${user}`,
    );
    if (role === 'writer') {
      for (const t of WRITER_INSERT_TABLES) out.push(`GRANT${on} INSERT ON ${db}.${t} TO ${user}`);
      for (const t of WRITER_SELECT_TABLES) out.push(`GRANT${on} SELECT ON ${db}.${t} TO ${user}`);
    } else {
      out.push(`GRANT${on} SELECT ON ${db}.* TO ${user}`);
      for (const t of PRIVATE_TABLES) out.push(`REVOKE${on} SELECT ON ${db}.${t} FROM ${user}`);
    }
    if (role === 'sql') {
      out.push(
        `CREATE QUOTA OR REPLACE ${profile}${on} FOR INTERVAL 1 minute MAX queries = ${SQL_QUOTA.queriesPerMinute}, ` +
          `FOR INTERVAL 1 hour MAX execution_time = ${SQL_QUOTA.executionSecondsPerHour} TO ${user}`,
      );
    }
  }
  return out;
}

/**
 * What the migrator user needs, for an operator who creates it instead of running `gatescope migrate` as an
 * administrator: DDL and the bookkeeping on the gatescope database, `SELECT`/`INSERT` with grant option (it
 * grants them to the roles), creating and altering users, profiles and quotas, and `CLUSTER` for `ON CLUSTER`.
 * The materialized views it creates run as it (SQL SECURITY DEFINER, ClickHouse's default): keep the user.
 */
export function renderMigratorGrants(o: { username: string; database: string; cluster?: string }): string[] {
  const db = ident(o.database);
  const user = ident(o.username);
  const on = o.cluster ? ` ON CLUSTER ${quoteString(o.cluster)}` : '';
  return [
    `GRANT${on} CREATE DATABASE, CREATE TABLE, CREATE VIEW, DROP TABLE, DROP VIEW, ALTER TABLE, ALTER VIEW, TRUNCATE, OPTIMIZE, SHOW ON ${db}.* TO ${user}`,
    `GRANT${on} SELECT, INSERT ON ${db}.* TO ${user} WITH GRANT OPTION`,
    `GRANT${on} CREATE USER, ALTER USER, CREATE SETTINGS PROFILE, ALTER SETTINGS PROFILE, DROP SETTINGS PROFILE, CREATE QUOTA, ALTER QUOTA, DROP QUOTA ON *.* TO ${user}`,
    ...(o.cluster ? [`GRANT${on} CLUSTER ON *.* TO ${user}`] : []),
  ];
}

/**
 * Create the role users with the main user. Returns why not when the main user may not manage access (the
 * operator then runs `renderRoleDdl`'s statements, see SECURITY.md); other failures throw.
 */
export async function provisionRoles(
  ch: ClickHouse,
  o: Omit<RoleDdlOptions, 'database'>,
): Promise<{ provisioned: boolean; reason?: string }> {
  const statements = renderRoleDdl({ ...o, database: ch.database });
  for (const [i, query] of statements.entries()) {
    try {
      await ch.client.command({ query });
    } catch (err) {
      const e = err as { type?: string; message?: string };
      if (i === 0 && (e.type === 'ACCESS_DENIED' || /access storage|readonly/i.test(e.message ?? ''))) {
        return { provisioned: false, reason: String(e.message ?? err) };
      }
      throw err;
    }
  }
  return { provisioned: true };
}
