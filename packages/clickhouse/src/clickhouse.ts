import { createReadStream, mkdirSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ClickHouseLogLevel, createClient, parseError, type ClickHouseClient } from '@clickhouse/client';
import { ident } from './ident.js';
import { quoteString, settingsClause } from './sql-text.js';
import { spanAttributes, tracedClient, type TraceTarget } from './trace.js';
import { withSpan } from '@gatescope/telemetry';

/**
 * Who a query runs as. `main`: ingest, migrations (the configured user). `reader`: the API's analytics and the
 * live ticks. `sql`: ad-hoc SQL. On a server each role may have its own ClickHouse user (read-only profile,
 * grants on the gatescope database only); without one it falls back to the main user. On the embedded engine
 * each role has its own connection to the one engine: session state and a timed-out query's leftovers (chdb hands
 * them to the next query on the same connection) never cross from one role to another.
 */
export type ClickHouseRole = 'reader' | 'sql';
export interface RoleCredentials {
  username: string;
  password: string;
}

export interface ClickHouseOptions {
  /** A ClickHouse server (`http://host:8123`). Unset: the embedded engine (chdb) under `dataDir`. */
  url?: string;
  username?: string;
  password?: string;
  database: string;
  /** Where the embedded engine keeps its data; ignored with a server. */
  dataDir: string;
  /** A server request that sends and receives nothing for this long fails with a timeout. Default 60 s. */
  requestTimeoutMs?: number;
  /** Dedicated server users per role; a role without one uses the main user. Ignored by the embedded engine. */
  roles?: Partial<Record<ClickHouseRole, RoleCredentials>>;
}

/** Options of a streamed read (`ClickHouse.streamText`). */
export interface StreamTextOptions {
  /** Output format, e.g. `CustomSeparatedWithNamesAndTypes`. */
  format: string;
  signal?: AbortSignal;
}

/**
 * The one storage handle every service gets. `client` is a plain `@clickhouse/client` instance whichever engine
 * is behind it; `insertNative` is the collector's bulk path, implemented the fastest way each engine allows.
 */
export interface ClickHouse {
  readonly client: ClickHouseClient;
  /** The API's analytics and the live ticks (`reader` role). */
  readonly reader: ClickHouseClient;
  /** Ad-hoc SQL's own statements: parsing and checking the user's text (`sql` role). */
  readonly sql: ClickHouseClient;
  readonly engine: 'embedded' | 'server';
  readonly database: string;
  /** The ClickHouse user each role runs as (the main user when the role has none of its own). */
  readonly users: Readonly<Record<'main' | ClickHouseRole, string>>;
  /**
   * Run one statement as the `sql` role and yield its output text as ClickHouse produces it, chunk by chunk, so
   * the caller can stop reading at a cap (break out of the loop: the query is cancelled).
   */
  streamText(statement: string, options: StreamTextOptions): AsyncIterable<string>;
  /**
   * Insert ClickHouse Native blocks (one, or several concatenated) for `columns` into `database.table`, from
   * memory or from a file of them (the collector's write-ahead log segments: the embedded engine reads the file
   * itself, a server gets it streamed). Resolves once ClickHouse committed them. `settings` apply to this insert
   * only (its own SETTINGS clause), e.g. `insert_deduplication_token`.
   */
  insertNative(
    table: string,
    columns: readonly string[],
    data: Buffer | Buffer[] | { file: string },
    settings?: InsertSettings,
    options?: InsertOptions,
  ): Promise<InsertResult>;
  /** True when ClickHouse answers a trivial query. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export class ClickHouseUnavailableError extends Error {
  readonly code = 'ERR_CLICKHOUSE_UNAVAILABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ClickHouseUnavailableError';
  }
}

/** Settings of one INSERT: integers (`max_partitions_per_insert_block`) or strings (`insert_deduplication_token`). */
export type InsertSettings = Readonly<Record<string, number | string>>;

export interface InsertOptions {
  /** Tell whether ClickHouse found these blocks already stored (see InsertResult). */
  checkDuplicate?: boolean;
  /**
   * The data's format: Native blocks (default), or JSONEachRow for a few small rows of types the Native writer does
   * not cover (the delivery ledger's Maps). Either way the settings go in the statement's own SETTINGS clause.
   */
  format?: 'Native' | 'JSONEachRow';
  /** Rows in the data, for the insert's span (`db.response.returned_rows`-style attribute); not sent to ClickHouse. */
  rows?: number;
  /**
   * The insert's query id on a server, the same for every attempt of one batch: an attempt the client gave up on
   * (a timeout) may still be running there, and the server refuses a second query with a running query's id
   * (QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING, retried later) rather than running both side by side.
   */
  queryId?: string;
}

export interface InsertResult {
  /**
   * With `checkDuplicate`: ClickHouse had already stored these blocks (the same insert deduplication token),
   * so this insert wrote nothing. Unset when not checked.
   */
  duplicate?: boolean;
}

const chunksOf = (data: Buffer | Buffer[]) => (Array.isArray(data) ? data : [data]);

/**
 * The handle as callers see it: every client traced (trace.ts), and `insertNative` in a `clickhouse.insert_native`
 * span with its table, rows (`options.rows`, the caller knows them) and whether it was a duplicate.
 */
function traced(ch: ClickHouse): ClickHouse {
  const target = (role: TraceTarget['role']): TraceTarget => ({
    database: ch.database,
    role,
    engine: ch.engine,
  });
  const insertNative = ch.insertNative.bind(ch);
  return {
    ...ch,
    client: tracedClient(ch.client, target('main')),
    reader: tracedClient(ch.reader, target('reader')),
    sql: tracedClient(ch.sql, target('sql')),
    streamText: ch.streamText.bind(ch),
    ping: ch.ping.bind(ch),
    close: ch.close.bind(ch),
    insertNative: (table, columns, data, settings, options) =>
      withSpan(
        'clickhouse.insert_native',
        {
          kind: 'client',
          attributes: {
            ...spanAttributes(target('main'), `INSERT INTO ${ch.database}.${table} FORMAT Native`),
            'db.collection.name': table,
            ...(options?.rows !== undefined ? { 'gatescope.clickhouse.written_rows': options.rows } : {}),
          },
        },
        async (span) => {
          const result = await insertNative(table, columns, data, settings, options);
          if (result.duplicate !== undefined)
            span.setAttribute('gatescope.clickhouse.duplicate', result.duplicate);
          return result;
        },
      ),
  };
}

export async function createClickHouse(options: ClickHouseOptions): Promise<ClickHouse> {
  const database = ident(options.database);
  if (options.url) return traced(createServer(options, database));
  return traced(await createEmbedded(options, database));
}

/** Output settings every client sends: the read-only role profiles (users.ts) hold the same values. */
export const CLIENT_SETTINGS = {
  date_time_output_format: 'iso',
  output_format_json_quote_64bit_integers: 0,
} as const;

function createServer(options: ClickHouseOptions, database: string): ClickHouse {
  const open = (username: string, password: string, role?: ClickHouseRole) =>
    createClient({
      url: options.url,
      username,
      password,
      // Role users read the gatescope database: unqualified table names resolve there.
      ...(role ? { database } : {}),
      request_timeout: options.requestTimeoutMs ?? 60_000,
      max_open_connections: role === 'sql' ? 4 : 16,
      // Failures reach the callers, which log them once with context (pino); the client's own console logger stays quiet.
      log: { level: ClickHouseLogLevel.OFF },
      clickhouse_settings: { ...CLIENT_SETTINGS },
    });
  const mainUser = options.username ?? 'default';
  const client = open(mainUser, options.password ?? '');
  const roleClient = (role: ClickHouseRole) => {
    const own = options.roles?.[role];
    return own
      ? { client: open(own.username, own.password, role), user: own.username }
      : { client: open(mainUser, options.password ?? '', role), user: mainUser };
  };
  const reader = roleClient('reader');
  const sql = roleClient('sql');
  return {
    client,
    reader: reader.client,
    sql: sql.client,
    engine: 'server',
    database,
    users: { main: mainUser, reader: reader.user, sql: sql.user },
    async *streamText(statement, { format, signal }) {
      const rs = await sql.client.query({
        query: statement,
        format: format as 'CustomSeparatedWithNamesAndTypes',
        abort_signal: signal,
      });
      // Raw formats come back one line per row; the framing is line-based, so lines are handed on as they come.
      for await (const rows of rs.stream() as AsyncIterable<unknown[]>) {
        yield (rows as { text: string }[]).map((r) => r.text + '\n').join('');
      }
    },
    async insertNative(table, columns, data, settings, options) {
      const result = await client.exec({
        query: `INSERT INTO ${database}.${ident(table)} (${columns.map((c) => ident(c)).join(', ')})${settingsClause(settings ?? {})} FORMAT ${options?.format ?? 'Native'}`,
        values:
          'file' in data ? createReadStream(data.file) : Readable.from(chunksOf(data), { objectMode: false }),
        // In a cluster `table` is Distributed: answer only once every shard committed its part, so a resolved
        // insert is stored (the default queues it on the receiving node and answers at once).
        clickhouse_settings: { distributed_foreground_insert: 1 },
        ...(options?.queryId && { query_id: options.queryId }),
      });
      result.stream.resume();
      // A deduplicated insert writes nothing: the server's summary says so.
      return options?.checkDuplicate ? { duplicate: result.summary?.written_rows === '0' } : {};
    },
    ping: async () => (await client.ping()).success,
    async close() {
      await Promise.all([client.close(), reader.client.close(), sql.client.close()]);
    },
  };
}

interface ChdbStream extends AsyncIterable<{ text(): string }> {
  cancel(): void;
}
interface ChdbSession {
  queryAsync(sql: string, opts?: { format?: string }): Promise<unknown>;
  queryStream(sql: string, opts?: { format?: string; signal?: AbortSignal }): ChdbStream;
  close(): void;
}

async function createEmbedded(options: ClickHouseOptions, database: string): Promise<ClickHouse> {
  const require = createRequire(import.meta.url);
  let chdb: typeof import('chdb/connection');
  let Session: new (path: string) => ChdbSession;
  try {
    // Lazy: a server deployment never loads (or needs to install) the ~540 MB engine.
    chdb = require('chdb/connection') as typeof import('chdb/connection');
    Session = (require('chdb') as { Session: new (path: string) => ChdbSession }).Session;
  } catch (err) {
    throw new ClickHouseUnavailableError(
      'The embedded ClickHouse engine (npm package "chdb") is not installed. Run `npm install` with optional ' +
        'dependencies, or set CLICKHOUSE_URL to use a ClickHouse server.',
      { cause: err },
    );
  }
  const enginePath = join(options.dataDir, 'clickhouse');
  const spoolDir = join(options.dataDir, 'spool');
  mkdirSync(enginePath, { recursive: true });
  rmSync(spoolDir, { recursive: true, force: true });
  mkdirSync(spoolDir, { recursive: true });
  // One engine per process, several connections to it (chdb keeps session settings and a timed-out query's
  // unread output per connection): ingest and migrations, the reader, ad-hoc SQL's checks, ad-hoc SQL's streams.
  const open = () =>
    createClient({
      // The type comes from @clickhouse/client-common: chdb re-exports the same Connection contract.
      connection: chdb.createChdbConnection({ path: enginePath }) as never,
      clickhouse_settings: { ...CLIENT_SETTINGS },
    } as Parameters<typeof createClient>[0]);
  const client = open();
  const reader = open();
  const sql = open();
  // Unqualified names in ad-hoc SQL mean gatescope's tables (USE is per connection; migrations fill the database).
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
  await sql.command({ query: `USE ${database}` });
  /** Sessions for streamed ad-hoc results: chdb allows one active stream per connection. */
  const idleStreamSessions: ChdbSession[] = [];
  async function takeStreamSession(): Promise<ChdbSession> {
    const idle = idleStreamSessions.pop();
    if (idle) return idle;
    const session = new Session(enginePath);
    await session.queryAsync(`USE ${database}`);
    return session;
  }
  let spoolSeq = 0;
  let closed = false;
  /** Blocks the engine has found already stored (deduplication), process-wide: a counter of its own. */
  const duplicatedBlocks = async () => {
    const rs = await client.query({
      query: "SELECT value FROM system.events WHERE event = 'DuplicatedInsertedBlocks'",
      format: 'JSONEachRow',
    });
    return Number((await rs.json<{ value: string }>())[0]?.value ?? 0);
  };
  return {
    client,
    reader,
    sql,
    engine: 'embedded',
    database,
    users: { main: 'default', reader: 'default', sql: 'default' },
    async *streamText(statement, { format, signal }) {
      if (closed) throw new ClickHouseUnavailableError('The embedded ClickHouse engine is closed');
      const session = await takeStreamSession();
      let stream: ChdbStream | undefined;
      try {
        stream = session.queryStream(statement, { format, signal });
        for await (const chunk of stream) yield chunk.text();
      } catch (err) {
        // The same error shape as every other query (`type`, `code`), as the HTTP client gives for a server.
        const message = (err as Error)?.message ?? String(err);
        throw /Code: \d+\./.test(message) ? Object.assign(parseError(message), { cause: err }) : err;
      } finally {
        stream?.cancel();
        if (closed) session.close();
        else idleStreamSessions.push(session);
      }
    },
    async insertNative(table, columns, data, settings, options) {
      // chdb's fastest bulk path: the engine reads the batch from a local file (its parallel file reader)
      // instead of parsing a string handed through the JS binding. A file the caller already has (the
      // collector's write-ahead log segment) is read where it is; blocks in memory are spooled first.
      const own = 'file' in data ? undefined : join(spoolDir, `${process.pid}-${++spoolSeq}.native`);
      if (own) await writeFile(own, Buffer.concat(chunksOf(data as Buffer | Buffer[])));
      const file = own ?? (data as { file: string }).file;
      try {
        const before = options?.checkDuplicate ? await duplicatedBlocks() : 0;
        await client.command({
          query: `INSERT INTO ${database}.${ident(table)} (${columns.map((c) => ident(c)).join(', ')}) FROM INFILE ${quoteString(file)}${settingsClause(settings ?? {})} FORMAT ${options?.format ?? 'Native'}`,
        });
        return options?.checkDuplicate ? { duplicate: (await duplicatedBlocks()) > before } : {};
      } finally {
        if (own) rmSync(own, { force: true });
      }
    },
    async ping() {
      if (closed) return false;
      return (await client.ping()).success;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const s of idleStreamSessions.splice(0)) s.close();
      await Promise.all([sql.close(), reader.close()]);
      await client.close();
    },
  };
}
