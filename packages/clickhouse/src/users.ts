import type { ClickHouse, ClickHouseRole, RoleCredentials } from './clickhouse.js';
import { ident } from './ident.js';
import { quoteString } from './sql-text.js';

/**
 * The ClickHouse server users gatescope's read paths run as, and the DDL that creates them: each role gets
 * `SELECT` on the gatescope database and nothing else, a settings profile with `readonly = 1` whose limits are
 * maxima the engine enforces, and (ad-hoc SQL) a quota. Run by the migration step when the main user may manage
 * access; otherwise the operator runs the same statements (`SECURITY.md`, `## SQL`).
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
  reader?: RoleCredentials & { limits: QueryLimits };
  sql?: RoleCredentials & { limits: SqlLimits };
}

/**
 * Tables no read role may see: receiver URLs and signing secrets (alerting). In a cluster the Distributed table
 * and the shards' `…_local` tables are both refused.
 */
export const PRIVATE_TABLES = ['alert_receiver_secrets', 'alert_receiver_secrets_local'] as const;

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

/** The statements that create (or bring in line) the role users, in order. Names and values are checked/quoted. */
export function renderRoleDdl(o: RoleDdlOptions): string[] {
  const db = ident(o.database);
  const on = o.cluster ? ` ON CLUSTER ${quoteString(o.cluster)}` : '';
  const out: string[] = [];
  const roles: [ClickHouseRole, RoleCredentials, string[]][] = [];
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
      `GRANT${on} SELECT ON ${db}.* TO ${user}`,
      ...PRIVATE_TABLES.map((t) => `REVOKE${on} SELECT ON ${db}.${t} FROM ${user}`),
    );
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
