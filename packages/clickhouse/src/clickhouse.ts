import { createReadStream, mkdirSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { ident } from './ident.js';

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
}

/**
 * The one storage handle every service gets. `client` is a plain `@clickhouse/client` instance whichever engine
 * is behind it; `insertNative` is the collector's bulk path, implemented the fastest way each engine allows.
 */
export interface ClickHouse {
  readonly client: ClickHouseClient;
  readonly engine: 'embedded' | 'server';
  readonly database: string;
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
    options?: { checkDuplicate?: boolean },
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

export interface InsertResult {
  /**
   * With `checkDuplicate`: ClickHouse had already stored these blocks (the same insert deduplication token),
   * so this insert wrote nothing. Unset when not checked.
   */
  duplicate?: boolean;
}

const quote = (s: string) => `'${s.replace(/['\\]/g, '\\$&')}'`;

/** ` SETTINGS a = 1, b = 'x'` for an INSERT (names checked as identifiers, values integers or quoted strings), or ''. */
function settingsClause(settings: InsertSettings | undefined): string {
  const entries = Object.entries(settings ?? {});
  if (entries.length === 0) return '';
  return ` SETTINGS ${entries
    .map(([name, value]) => {
      if (typeof value === 'string') return `${ident(name)} = ${quote(value)}`;
      if (!Number.isSafeInteger(value)) throw new Error(`insert setting ${name} must be an integer`);
      return `${ident(name)} = ${value}`;
    })
    .join(', ')}`;
}

const chunksOf = (data: Buffer | Buffer[]) => (Array.isArray(data) ? data : [data]);

export async function createClickHouse(options: ClickHouseOptions): Promise<ClickHouse> {
  const database = ident(options.database);
  if (options.url) return createServer(options, database);
  return createEmbedded(options, database);
}

function createServer(options: ClickHouseOptions, database: string): ClickHouse {
  const client = createClient({
    url: options.url,
    username: options.username ?? 'default',
    password: options.password ?? '',
    request_timeout: options.requestTimeoutMs ?? 60_000,
    max_open_connections: 16,
    // Failures reach the callers, which log them once with context (pino); the client's own console logger stays quiet.
    log: { level: ClickHouseLogLevel.OFF },
    clickhouse_settings: { date_time_output_format: 'iso', output_format_json_quote_64bit_integers: 0 },
  });
  return {
    client,
    engine: 'server',
    database,
    async insertNative(table, columns, data, settings, options) {
      const result = await client.exec({
        query: `INSERT INTO ${database}.${ident(table)} (${columns.map((c) => ident(c)).join(', ')})${settingsClause(settings)} FORMAT Native`,
        values:
          'file' in data ? createReadStream(data.file) : Readable.from(chunksOf(data), { objectMode: false }),
        // In a cluster `table` is Distributed: answer only once every shard committed its part, so a resolved
        // insert is stored (the default queues it on the receiving node and answers at once).
        clickhouse_settings: { distributed_foreground_insert: 1 },
      });
      result.stream.resume();
      // A deduplicated insert writes nothing: the server's summary says so.
      return options?.checkDuplicate ? { duplicate: result.summary?.written_rows === '0' } : {};
    },
    ping: async () => (await client.ping()).success,
    close: () => client.close(),
  };
}

async function createEmbedded(options: ClickHouseOptions, database: string): Promise<ClickHouse> {
  const require = createRequire(import.meta.url);
  let chdb: typeof import('chdb/connection');
  try {
    // Lazy: a server deployment never loads (or needs to install) the ~540 MB engine.
    chdb = require('chdb/connection') as typeof import('chdb/connection');
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
  const connection = chdb.createChdbConnection({ path: enginePath });
  const client = createClient({
    // The type comes from @clickhouse/client-common: chdb re-exports the same Connection contract.
    connection: connection as never,
    clickhouse_settings: { date_time_output_format: 'iso', output_format_json_quote_64bit_integers: 0 },
  } as Parameters<typeof createClient>[0]);
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
    engine: 'embedded',
    database,
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
          query: `INSERT INTO ${database}.${ident(table)} (${columns.map((c) => ident(c)).join(', ')}) FROM INFILE ${quote(file)}${settingsClause(settings)} FORMAT Native`,
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
      await client.close();
    },
  };
}
