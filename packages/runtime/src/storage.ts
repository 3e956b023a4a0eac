import {
  createClickHouse,
  migrate,
  provisionRoles,
  MigrationLockError,
  SchemaModeError,
  schemaStatus,
  type ClickHouse,
  type SchemaStatus,
} from '@gatescope/clickhouse';
import type { Config } from '@gatescope/config';
import { engineSqlLimits } from '@gatescope/query';
import type { Logger } from 'pino';

/**
 * How a process gets its storage:
 * - `openStorage` opens ClickHouse and brings the schema up to date. The all-in-one process does this, and so
 *   does anything on the embedded engine (one process owns the data directory anyway), and `gatescope migrate`.
 * - `connectStorage` is for the standalone services against a server (scale-out): they never run DDL. They
 *   watch for the schema version they need (`schema`) and report not ready until `gatescope migrate` applied it.
 */

function where(config: Config): string {
  return config.clickhouse.url
    ? `ClickHouse at ${config.clickhouse.url}`
    : `the embedded ClickHouse in ${config.dataDir}`;
}

/** Transport failures (a server still starting) are worth retrying; anything ClickHouse answered is not. */
function retryable(err: unknown): boolean {
  const answeredByClickHouse = typeof (err as { type?: unknown }).type === 'string'; // @clickhouse/client's ClickHouseError
  return !answeredByClickHouse && !(err instanceof SchemaModeError) && !(err instanceof MigrationLockError);
}

/**
 * Open ClickHouse and migrate it (holding the migration lock, so concurrent starters take turns). A server that
 * is still starting (compose) is retried for a minute; then the error says what to check.
 */
export async function openStorage(config: Config, logger: Logger): Promise<ClickHouse> {
  const { clickhouse } = config;
  const deadline = Date.now() + (clickhouse.url ? 60_000 : 0);
  let lastWaitLog = 0;
  for (let attempt = 1; ; attempt++) {
    const ch = await createClickHouse({ ...clickhouse, dataDir: config.dataDir });
    try {
      const { applied } = await migrate(ch, {
        retentionDays: config.retentionDays,
        rollupRetentionDays: config.rollupRetentionDays,
        cluster: clickhouse.cluster,
        lock: {
          onWait: (state) => {
            if (Date.now() - lastWaitLog < 10_000) return;
            lastWaitLog = Date.now();
            logger.info(
              { holder: state.holder, epoch: state.epoch },
              'another migrator holds the migration lock; waiting for it to finish',
            );
          },
        },
      });
      if (clickhouse.url && (clickhouse.roles.writer || clickhouse.roles.reader || clickhouse.roles.sql))
        await provision(ch, config, logger);
      logger.info(
        { engine: ch.engine, database: ch.database, applied, users: ch.users },
        `storage ready: ${where(config)}`,
      );
      return ch;
    } catch (err) {
      await ch.close().catch(() => {});
      if (Date.now() >= deadline || !retryable(err)) {
        throw new Error(
          `Could not prepare ${where(config)}: ${(err as Error).message}. ` +
            (clickhouse.url
              ? 'Check that the server is up and CLICKHOUSE_URL, CLICKHOUSE_USER and CLICKHOUSE_PASSWORD are right.'
              : 'Check that GATESCOPE_DATA_DIR is writable and not used by another gatescope process.'),
          { cause: err },
        );
      }
      logger.warn({ err, attempt }, `${where(config)} not ready yet; retrying`);
      await new Promise((r) => setTimeout(r, Math.min(5_000, 500 * attempt)));
    }
  }
}

/** Whether the schema a service needs is in place; polled until it is, then settled for good. */
export interface SchemaWatch {
  readonly ready: boolean;
  /** Why not ready, as a sentence that says what to do. */
  readonly problem?: string;
  /** Resolves once the schema is ready; rejects if the watch is closed first. */
  untilReady(): Promise<void>;
  /** Resolves after the first check, whatever it found. */
  checked(): Promise<void>;
  close(): void;
}

/** A schema known to be ready (this process just migrated it). */
export const SCHEMA_READY: SchemaWatch = {
  ready: true,
  untilReady: () => Promise.resolve(),
  checked: () => Promise.resolve(),
  close: () => {},
};

export function watchSchema(
  ch: ClickHouse,
  options: { cluster?: string; logger: Logger; intervalMs?: number; logEveryMs?: number },
): SchemaWatch {
  const intervalMs = options.intervalMs ?? 2_000;
  const logEveryMs = options.logEveryMs ?? 30_000;
  let ready = false;
  let problem: string | undefined = 'the schema version has not been checked yet';
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let lastLog = 0;
  let settle!: { resolve: () => void; reject: (e: Error) => void };
  const readyPromise = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  readyPromise.catch(() => {});
  let firstCheck!: () => void;
  const checked = new Promise<void>((r) => (firstCheck = r));
  const check = async () => {
    let status: SchemaStatus | undefined;
    try {
      status = await schemaStatus(ch, { cluster: options.cluster });
      problem = status.problem;
    } catch (err) {
      problem = `ClickHouse did not answer the schema check (${(err as Error).message}): check CLICKHOUSE_URL and the server`;
    }
    firstCheck();
    if (closed) return;
    if (status?.ready) {
      ready = true;
      problem = undefined;
      options.logger.info({ version: status.version }, 'schema is ready');
      settle.resolve();
      return;
    }
    if (Date.now() - lastLog >= logEveryMs) {
      lastLog = Date.now();
      options.logger.warn({ version: status?.version, required: status?.required }, `not ready: ${problem}`);
    }
    timer = setTimeout(() => void check(), intervalMs);
    timer.unref();
  };
  void check();
  return {
    get ready() {
      return ready;
    },
    get problem() {
      return problem;
    },
    untilReady: () => readyPromise,
    checked: () => checked,
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      if (!ready) settle.reject(new Error('stopped before the schema was ready'));
    },
  };
}

/**
 * Storage for a standalone service. With a server it connects without DDL and watches the schema; on the
 * embedded engine it migrates (nothing else can: the process owns the data directory).
 */
export async function connectStorage(
  config: Config,
  logger: Logger,
): Promise<{ clickhouse: ClickHouse; schema: SchemaWatch }> {
  if (!config.clickhouse.url) return { clickhouse: await openStorage(config, logger), schema: SCHEMA_READY };
  const clickhouse = await createClickHouse({ ...config.clickhouse, dataDir: config.dataDir });
  logger.info(
    { engine: clickhouse.engine, database: clickhouse.database },
    `storage: ${where(config)} (schema changes are left to \`gatescope migrate\`)`,
  );
  const schema = watchSchema(clickhouse, { cluster: config.clickhouse.cluster, logger });
  await schema.checked();
  return { clickhouse, schema };
}

/**
 * The migration step also creates the roles' users (CLICKHOUSE_WRITER_USER, CLICKHOUSE_READER_USER,
 * CLICKHOUSE_SQL_USER) when the main user (the migrator) may manage access; otherwise the operator created them from SECURITY.md, which is said once.
 */
async function provision(ch: ClickHouse, config: Config, logger: Logger): Promise<void> {
  const { roles, cluster } = config.clickhouse;
  const outcome = await provisionRoles(ch, {
    cluster,
    writer: roles.writer,
    reader: roles.reader && { ...roles.reader, limits: config.query.limits },
    sql: roles.sql && { ...roles.sql, limits: engineSqlLimits(config.sql.limits) },
  });
  if (outcome.provisioned)
    logger.info(
      { users: [roles.writer, roles.reader, roles.sql].flatMap((r) => (r ? [r.username] : [])) },
      'ClickHouse role users, grants and profiles are in place',
    );
  else {
    logger.warn(
      { reason: outcome.reason },
      `${config.clickhouse.username} may not create users: create ${[
        roles.writer?.username,
        roles.reader?.username,
        roles.sql?.username,
      ]
        .filter(Boolean)
        .join(' and ')} with the statements in SECURITY.md (## ClickHouse users)`,
    );
  }
}
