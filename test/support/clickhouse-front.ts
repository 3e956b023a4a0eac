/**
 * A ClickHouse HTTP server for tests: the embedded engine (chdb, real ClickHouse 26) behind the subset of
 * ClickHouse's HTTP interface that @clickhouse/client uses, so server mode (`CLICKHOUSE_URL`) runs against a
 * real engine on machines where no ClickHouse server can be installed. Test-only: it lives under `test/` and
 * is never shipped.
 *
 * What it serves, the way clickhouse-server does:
 * - `GET|HEAD /ping`, `GET /` and `/replicas_status` -> `Ok.`; other paths -> 404.
 * - The statement in the `query` URL parameter or the body; with both, the body is the data of an
 *   `INSERT … FORMAT <fmt>` (any input format the engine reads: Native, RowBinary, JSONEachRow, …), else it is
 *   appended to the statement. An `INSERT … FORMAT <fmt>` body may also carry its data after the first line.
 * - `param_<name>` bound parameters, handed to the engine's own binder as raw text (no re-escaping), exactly as
 *   the server receives them.
 * - Every other URL parameter is a setting for that query only. chdb keeps one session per process and a `SET`
 *   there would persist for every later query (the trap chdb/connection falls into), so settings go into the
 *   statement's own SETTINGS clause (queries with output; inserts, rebuilt as `INSERT … FROM INFILE … SETTINGS …
 *   FORMAT …`), and only for other statements (DDL, INSERT … SELECT) into SETs undone right after, while an
 *   exclusive lock keeps every other query out. `SET` statements sent by a client are no-ops, as over HTTP
 *   without a session. `database` works the same way (USE, then back).
 * - `default_format`, the statement's FORMAT, TabSeparated otherwise; `X-ClickHouse-Format`, `-Query-Id`,
 *   `-Summary`, `-Timezone`, `-Server-Display-Name` headers; `Keep-Alive: timeout=10`.
 * - Errors as ClickHouse sends them: `Code: N. DB::Exception: … (NAME) (version …)`, the status ClickHouse maps
 *   that code to (400 syntax/parse, 404 unknown table/function/setting, 408 timeout, 500 otherwise, …) and
 *   `X-ClickHouse-Exception-Code`. A GET that would modify something is refused (READONLY), as on a server.
 * - Compressed request bodies (`Content-Encoding: gzip|deflate|br`) and compressed answers when the client sets
 *   `enable_http_compression=1` and accepts gzip, deflate or br.
 *
 * What it does not cover (tests against it prove nothing about these; README: Scale-out):
 * authentication and users/grants/quotas (credentials are accepted and ignored), HTTP sessions (`session_id`
 * is refused with NOT_IMPLEMENTED), replication, `ON CLUSTER` and the distributed DDL queue, Distributed tables
 * across servers, Keeper, ClickHouse's own `compress=1` block compression, progress headers, streaming of large
 * results (each answer is built whole), TLS.
 *
 * Faults at that boundary, for retry and durability tests (`front.fault(...)`, `count` defaults to 1, `match`
 * narrows it to requests whose statement matches):
 * - `refuse`: the port stops listening and open connections drop (ECONNREFUSED) until cleared or `forMs`.
 * - `reset`: the connection is dropped without an answer (before the statement runs, or `after: true`).
 * - `hang`: the request is read and never answered (the client's timeout decides).
 * - `error`: an answer like a failing ClickHouse, status 500 by default (before, or `after: true`, the statement).
 * - `drop-body`: half the request body is read, then the connection drops; the statement never runs. Its `match`
 *   sees the `query` URL parameter only (inserts put their statement there), since the body is never read whole.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import zlib from 'node:zlib';

export type FaultMatch = RegExp | ((request: { method: string; statement: string }) => boolean);
export type Fault =
  | { kind: 'refuse'; forMs?: number }
  | { kind: 'reset'; count?: number; match?: FaultMatch; after?: boolean }
  | { kind: 'hang'; count?: number; match?: FaultMatch }
  | {
      kind: 'error';
      count?: number;
      match?: FaultMatch;
      after?: boolean;
      status?: number;
      code?: number;
      name?: string;
      message?: string;
    }
  | { kind: 'drop-body'; count?: number; match?: FaultMatch };

export interface FaultHandle {
  /** Requests this fault has hit so far. */
  readonly hits: number;
  /** Resolves once the fault was used up (`count` hits), or cleared. */
  readonly done: Promise<void>;
  clear(): void;
}

export interface FrontRequest {
  method: string;
  path: string;
  /** The statement as received (without insert data). */
  statement: string;
  settings: Record<string, string>;
  status?: number;
  fault?: Fault['kind'];
  /** Rows the engine wrote (inserts) or returned (queries). */
  rows?: number;
  /** `query_id` (the client's, or one the front made up). */
  queryId?: string;
  /** Bytes of the request body as received (inserts: the data). */
  bytes?: number;
  /** When the request came in, when the statement started on the engine and when it ended (ms since the epoch). */
  receivedAt?: number;
  startedAt?: number;
  endedAt?: number;
}

export interface ClickHouseFront {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** Every request handled, oldest first. */
  readonly requests: FrontRequest[];
  fault(fault: Fault): FaultHandle;
  clearFaults(): void;
  /** Run SQL on the engine directly (assertions): no HTTP, no faults. JSONEachRow rows. */
  rows<T = Record<string, unknown>>(sql: string): Promise<T[]>;
  close(): Promise<void>;
}

// ---- the engine --------------------------------------------------------------------------------------------

interface NativeResult {
  bytes: Uint8Array;
  elapsed: number;
  rowsRead: number;
  bytesRead: number;
}
interface Native {
  QueryAsyncConnection(
    connection: unknown,
    sql: string,
    format: string,
    params?: Record<string, string>,
  ): Promise<NativeResult>;
}
interface ChdbSession {
  connection: unknown;
  close(): void;
}

function loadChdb(): { native: Native; Session: new (path: string) => ChdbSession; version: string } {
  const require = createRequire(import.meta.url);
  const root = dirname(require.resolve('chdb'));
  const chdb = require('chdb') as { Session: new (path: string) => ChdbSession };
  // The addon itself: chdb's JS binder TSV-escapes string parameters, while HTTP hands the server parameters
  // already escaped by the client; the raw addon call binds them exactly as a server would.
  const native = (require(join(root, 'dist', 'loader.js')) as { loadNative(): Native }).loadNative();
  const version = (require(join(root, 'package.json')) as { version: string }).version;
  return { native, Session: chdb.Session, version };
}

/** Readers share the engine; a statement that must SET session state runs alone. Writers go first. */
class SessionLock {
  private readers = 0;
  private writer = false;
  private waiting: { exclusive: boolean; go: () => void }[] = [];

  async run<T>(exclusive: boolean, fn: () => Promise<T>): Promise<T> {
    await new Promise<void>((go) => {
      this.waiting.push({ exclusive, go });
      this.pump();
    });
    try {
      return await fn();
    } finally {
      if (exclusive) this.writer = false;
      else this.readers--;
      this.pump();
    }
  }

  private pump(): void {
    while (this.waiting.length > 0 && !this.writer) {
      const next = this.waiting[0];
      // First come, first served: readers queued behind a writer wait for it.
      if (next.exclusive) {
        if (this.readers > 0) return;
        this.writer = true;
      } else {
        this.readers++;
      }
      this.waiting.shift();
      next.go();
    }
  }
}

// ---- ClickHouse's HTTP conventions -------------------------------------------------------------------------

/** URL parameters that belong to the HTTP layer, not to the query's settings. */
const HTTP_PARAMS = new Set([
  'query',
  'query_id',
  'database',
  'default_format',
  'session_id',
  'session_timeout',
  'session_check',
  'user',
  'password',
  'quota_key',
  'compress',
  'decompress',
  'buffer_size',
  'wait_end_of_query',
  'role',
  'stacktrace',
  'enable_http_compression',
  'http_zlib_compression_level',
  'http_native_compression_disable_checksumming_on_decompress',
  'send_progress_in_http_headers',
  'http_headers_progress_interval_ms',
  'http_response_buffer_size',
  'cancel_http_readonly_queries_on_client_close',
  'add_http_cors_header',
]);

/** clickhouse-server's exception code -> HTTP status (src/Server/HTTP/exceptionCodeToHTTPStatus.cpp), by name. */
const STATUS_BY_NAME: [number, string[]][] = [
  [401, ['REQUIRED_PASSWORD']],
  [403, ['UNKNOWN_USER', 'WRONG_PASSWORD', 'AUTHENTICATION_FAILED', 'SET_NON_GRANTED_ROLE', 'ACCESS_DENIED']],
  [
    400,
    [
      'BAD_ARGUMENTS',
      'CANNOT_COMPILE_REGEXP',
      'CANNOT_PARSE_TEXT',
      'CANNOT_PARSE_ESCAPE_SEQUENCE',
      'CANNOT_PARSE_QUOTED_STRING',
      'CANNOT_PARSE_DATE',
      'CANNOT_PARSE_DATETIME',
      'CANNOT_PARSE_NUMBER',
      'CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING',
      'CANNOT_PARSE_IPV4',
      'CANNOT_PARSE_IPV6',
      'CANNOT_PARSE_INPUT_ASSERTION_FAILED',
      'CANNOT_PARSE_UUID',
      'DUPLICATE_COLUMN',
      'ILLEGAL_COLUMN',
      'UNKNOWN_ELEMENT_IN_AST',
      'UNKNOWN_TYPE_OF_AST_NODE',
      'THERE_IS_NO_COLUMN',
      'TOO_DEEP_AST',
      'TOO_BIG_AST',
      'UNEXPECTED_AST_STRUCTURE',
      'SYNTAX_ERROR',
      'INCORRECT_DATA',
      'TYPE_MISMATCH',
      'VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE',
    ],
  ],
  [
    404,
    [
      'UNKNOWN_TABLE',
      'UNKNOWN_FUNCTION',
      'UNKNOWN_IDENTIFIER',
      'UNKNOWN_TYPE',
      'UNKNOWN_STORAGE',
      'UNKNOWN_DATABASE',
      'UNKNOWN_SETTING',
      'UNKNOWN_DIRECTION_OF_SORTING',
      'UNKNOWN_AGGREGATE_FUNCTION',
      'UNKNOWN_FORMAT',
      'UNKNOWN_DATABASE_ENGINE',
      'UNKNOWN_TYPE_OF_QUERY',
      'UNKNOWN_ROLE',
    ],
  ],
  [413, ['QUERY_IS_TOO_LARGE']],
  [501, ['NOT_IMPLEMENTED']],
  [503, ['SOCKET_TIMEOUT', 'CANNOT_OPEN_FILE', 'CANNOT_SCHEDULE_TASK']],
  [411, ['HTTP_LENGTH_REQUIRED']],
  [408, ['TIMEOUT_EXCEEDED']],
  [415, ['UNSUPPORTED_MEDIA_TYPE']],
];
const STATUS = new Map(STATUS_BY_NAME.flatMap(([status, names]) => names.map((n) => [n, status] as const)));

class ClickHouseException extends Error {
  constructor(
    readonly code: number,
    readonly codeName: string,
    message: string,
    private readonly httpStatus?: number,
  ) {
    super(message);
  }
  get status(): number {
    return this.httpStatus ?? STATUS.get(this.codeName) ?? 500;
  }
}

/** What an `error` fault answers: by default an unexplained server failure (500, UNKNOWN_EXCEPTION). */
function injected(f: Extract<Fault, { kind: 'error' }>): ClickHouseException {
  return new ClickHouseException(
    f.code ?? 1002,
    f.name ?? 'UNKNOWN_EXCEPTION',
    f.message ?? 'Injected by the test front',
    f.status ?? 500,
  );
}

/** The engine's error as a ClickHouse exception (chdb already speaks `Code: N. DB::Exception: … (NAME)`). */
function toException(err: unknown): ClickHouseException {
  if (err instanceof ClickHouseException) return err;
  const text = (err as Error)?.message ?? String(err);
  const m = /^Code: (\d+)\. DB::Exception: ([\s\S]*?)\s*\(([A-Z0-9_]+)\)(?: \(version [^)]*\))?\.?\s*$/.exec(
    text,
  );
  if (m) return new ClickHouseException(Number(m[1]), m[3], m[2]);
  return new ClickHouseException(1001, 'STD_EXCEPTION', text);
}

const STRIP_LEADING = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*/;
function firstWord(statement: string): string {
  return (/^\(?\s*([A-Za-z]+)/.exec(statement.replace(STRIP_LEADING, ''))?.[1] ?? '').toUpperCase();
}
const WITH_OUTPUT = new Set(['SELECT', 'WITH', 'SHOW', 'DESCRIBE', 'DESC', 'EXISTS', 'EXPLAIN']);
const READ_ONLY = new Set([...WITH_OUTPUT, 'SET', 'USE']);

function quote(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
function settingsSql(settings: Record<string, string>): string {
  return Object.entries(settings)
    .map(([k, v]) => `${k} = ${quote(v)}`)
    .join(', ');
}

function outputFormat(statement: string, defaultFormat: string | undefined): string {
  const m = /\bFORMAT\s+(\w+)(?:\s+SETTINGS\b[\s\S]*)?\s*;?\s*$/i.exec(statement);
  return m?.[1] ?? defaultFormat ?? 'TabSeparated';
}
function contentType(format: string): string {
  if (/^JSON/i.test(format)) return 'application/json; charset=UTF-8';
  if (/^(TabSeparated|TSV)/i.test(format)) return 'text/tab-separated-values; charset=UTF-8';
  if (/^CSV/i.test(format)) return 'text/csv; charset=UTF-8; header=absent';
  if (/^(Native|RowBinary|Parquet|Arrow|ORC|Avro|Protobuf|MsgPack)/i.test(format))
    return 'application/octet-stream';
  return 'text/plain; charset=UTF-8';
}

/** `INSERT INTO t (cols) [SETTINGS …] FORMAT F` -> its parts, for an insert whose data comes in the body. */
function parseDataInsert(
  statement: string,
): { target: string; settings?: string; format: string } | undefined {
  const m = /^\s*INSERT\s+INTO\s+([\s\S]+?)\s+FORMAT\s+(\w+)\s*;?\s*$/i.exec(
    statement.replace(STRIP_LEADING, ''),
  );
  if (!m) return undefined;
  const s = /^([\s\S]+?)\s+SETTINGS\s+([\s\S]+)$/i.exec(m[1]);
  return s ? { target: s[1], settings: s[2], format: m[2] } : { target: m[1], format: m[2] };
}

function decompress(body: Buffer, encoding: string | undefined): Buffer {
  switch ((encoding ?? '').toLowerCase()) {
    case '':
    case 'identity':
      return body;
    case 'gzip':
      return zlib.gunzipSync(body);
    case 'deflate':
      return zlib.inflateSync(body);
    case 'br':
      return zlib.brotliDecompressSync(body);
    default:
      throw new ClickHouseException(
        353,
        'UNKNOWN_COMPRESSION_METHOD',
        `Unknown HTTP compression method: ${encoding}`,
      );
  }
}

function compress(body: Buffer, accept: string | undefined): { body: Buffer; encoding?: string } {
  for (const enc of (accept ?? '').split(',').map((e) => e.trim().split(';')[0].toLowerCase())) {
    if (enc === 'gzip') return { body: zlib.gzipSync(body), encoding: 'gzip' };
    if (enc === 'deflate') return { body: zlib.deflateSync(body), encoding: 'deflate' };
    if (enc === 'br') return { body: zlib.brotliCompressSync(body), encoding: 'br' };
  }
  return { body };
}

// ---- the front ---------------------------------------------------------------------------------------------

interface ActiveFault {
  fault: Fault;
  left: number;
  hits: number;
  resolve: () => void;
}

export async function startClickHouseFront(options: { dataDir?: string } = {}): Promise<ClickHouseFront> {
  const { native, Session, version: chdbVersion } = loadChdb();
  const ownDir = options.dataDir ? undefined : mkdtempSync(join(tmpdir(), 'gs-ch-front-'));
  const dataDir = options.dataDir ?? ownDir!;
  const spool = join(dataDir, 'front-spool');
  rmSync(spool, { recursive: true, force: true });
  mkdirSync(spool, { recursive: true });
  const session = new Session(join(dataDir, 'engine'));
  const lock = new SessionLock();
  const inflight = new Set<Promise<unknown>>();
  let paramChain: Promise<unknown> = Promise.resolve();
  let spoolSeq = 0;

  const engineVersion = Buffer.from(
    (await native.QueryAsyncConnection(session.connection, 'SELECT version()', 'TabSeparatedRaw')).bytes,
  )
    .toString()
    .trim();

  function exec(sql: string, format: string, params?: Record<string, string>): Promise<NativeResult> {
    let p: Promise<NativeResult>;
    if (params && Object.keys(params).length > 0) {
      // The engine's parameter state is process-wide: bound statements run one at a time (as chdb does).
      p = paramChain.then(() => native.QueryAsyncConnection(session.connection, sql, format, params));
      paramChain = p.catch(() => {});
    } else {
      p = native.QueryAsyncConnection(session.connection, sql, format);
    }
    inflight.add(p);
    void p.finally(() => inflight.delete(p)).catch(() => {});
    return p;
  }

  /** Run one statement the way clickhouse-server would for this HTTP request. */
  async function run(req: {
    method: string;
    statement: string;
    data?: Buffer;
    settings: Record<string, string>;
    params: Record<string, string>;
    database?: string;
    defaultFormat?: string;
  }): Promise<{ body: Buffer; format: string; result?: NativeResult; written: boolean }> {
    const kind = firstWord(req.statement);
    if (req.method === 'GET' && !READ_ONLY.has(kind)) {
      throw new ClickHouseException(
        164,
        'READONLY',
        'Cannot execute query in readonly mode. For queries over HTTP, method GET implies readonly. You should use method POST for modifying queries',
      );
    }
    const format = outputFormat(req.statement, req.defaultFormat);
    if (kind === 'SET' && req.data === undefined) return { body: Buffer.alloc(0), format, written: false };
    const settings = { ...req.settings };
    const useDb = req.database && req.database !== 'default' ? req.database : undefined;
    const statement = req.statement.replace(/[\s;]+$/, '');

    if (req.data !== undefined) {
      const insert = parseDataInsert(statement);
      if (!insert) {
        throw new ClickHouseException(
          62,
          'SYNTAX_ERROR',
          'The test front takes a request body as insert data only for `INSERT INTO … FORMAT <format>`',
        );
      }
      const file = join(spool, `${process.pid}-${++spoolSeq}.data`);
      await writeFile(file, req.data);
      try {
        const all = [insert.settings, settingsSql(settings)].filter(Boolean).join(', ');
        const sql =
          `INSERT INTO ${insert.target} FROM INFILE ${quote(file)}` +
          (all ? ` SETTINGS ${all}` : '') +
          ` FORMAT ${insert.format}`;
        const result = await lock.run(!!useDb, () =>
          withDatabase(useDb, () => exec(sql, format, req.params)),
        );
        return { body: Buffer.alloc(0), format, result, written: true };
      } finally {
        rmSync(file, { force: true });
      }
    }

    if (WITH_OUTPUT.has(kind)) {
      const sql =
        Object.keys(settings).length > 0 ? `${statement}\nSETTINGS ${settingsSql(settings)}` : statement;
      const result = await lock.run(!!useDb, () => withDatabase(useDb, () => exec(sql, format, req.params)));
      return { body: Buffer.from(result.bytes), format, result, written: false };
    }

    // DDL, INSERT … SELECT / VALUES, SYSTEM, …: no SETTINGS clause means the same thing everywhere (CREATE TABLE
    // … SETTINGS sets table settings), so SET for this statement alone, with every other query held off.
    const names = Object.keys(settings);
    const exclusive = names.length > 0 || !!useDb;
    const result = await lock.run(exclusive, () =>
      withDatabase(useDb, async () => {
        for (const [k, v] of Object.entries(settings)) await exec(`SET ${k} = ${quote(v)}`, 'TabSeparated');
        try {
          return await exec(statement, format, req.params);
        } finally {
          for (const k of names) await exec(`SET ${k} = DEFAULT`, 'TabSeparated').catch(() => {});
        }
      }),
    );
    return { body: Buffer.from(result.bytes), format, result, written: kind === 'INSERT' };
  }

  async function withDatabase<T>(db: string | undefined, fn: () => Promise<T>): Promise<T> {
    if (!db) return fn();
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(db))
      throw new ClickHouseException(81, 'UNKNOWN_DATABASE', `Database ${db} does not exist`);
    await exec(`USE ${db}`, 'TabSeparated');
    try {
      return await fn();
    } finally {
      await exec('USE default', 'TabSeparated').catch(() => {});
    }
  }

  // -- faults
  const faults: ActiveFault[] = [];
  let refusing: { until?: NodeJS.Timeout; fault: ActiveFault } | undefined;
  const hung = new Set<ServerResponse>();

  function takeFault(kinds: Fault['kind'][], method: string, statement: string): ActiveFault | undefined {
    for (const f of faults) {
      if (!kinds.includes(f.fault.kind) || f.left <= 0) continue;
      const match = 'match' in f.fault ? f.fault.match : undefined;
      if (match && !(match instanceof RegExp ? match.test(statement) : match({ method, statement })))
        continue;
      f.left--;
      f.hits++;
      if (f.left <= 0) {
        faults.splice(faults.indexOf(f), 1);
        f.resolve();
      }
      return f;
    }
    return undefined;
  }

  // -- HTTP
  const sockets = new Set<Socket>();
  const requests: FrontRequest[] = [];

  function send(
    res: ServerResponse,
    status: number,
    body: Buffer,
    headers: Record<string, string>,
    acceptEncoding: string | undefined,
    compressAnswer: boolean,
  ): void {
    const out = compressAnswer ? compress(body, acceptEncoding) : { body };
    res.writeHead(status, {
      ...headers,
      'X-ClickHouse-Server-Display-Name': 'gatescope-test-front',
      'X-ClickHouse-Timezone': 'UTC',
      'Keep-Alive': 'timeout=10',
      ...(out.encoding ? { 'Content-Encoding': out.encoding } : {}),
      'Content-Length': String(out.body.length),
    });
    res.end(out.body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://front');
    const method = req.method ?? 'GET';
    const entry: FrontRequest = {
      method,
      path: url.pathname,
      statement: '',
      settings: {},
      receivedAt: Date.now(),
    };
    if (
      url.pathname === '/ping' ||
      url.pathname === '/replicas_status' ||
      (url.pathname === '/' && !url.searchParams.has('query') && method !== 'POST')
    ) {
      req.resume();
      entry.status = 200;
      res.writeHead(200, { 'Content-Type': 'text/html; charset=UTF-8', 'Keep-Alive': 'timeout=10' });
      res.end(method === 'HEAD' ? undefined : 'Ok.\n');
      return;
    }
    requests.push(entry);
    if (url.pathname !== '/') {
      req.resume();
      entry.status = 404;
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=UTF-8' });
      res.end(`There is no handle ${url.pathname}\n\nUse / or /ping for health checks.\n`);
      return;
    }
    const urlQuery = url.searchParams.get('query') ?? undefined;
    const settings: Record<string, string> = {};
    const params: Record<string, string> = {};
    for (const [k, v] of url.searchParams) {
      if (k.startsWith('param_')) params[k.slice('param_'.length)] = v;
      else if (!HTTP_PARAMS.has(k)) settings[k] = v;
    }
    entry.settings = settings;
    entry.statement = urlQuery ?? '';
    const queryId = url.searchParams.get('query_id') || randomUUID();
    const acceptEncoding = req.headers['accept-encoding'];
    const compressAnswer = url.searchParams.get('enable_http_compression') === '1';
    const headers: Record<string, string> = { 'X-ClickHouse-Query-Id': queryId };
    entry.queryId = queryId;

    const drop = takeFault(['drop-body'], method, urlQuery ?? '');
    if (drop) {
      entry.fault = 'drop-body';
      const half = Number(req.headers['content-length'] ?? 0) / 2;
      let seen = 0;
      req.on('data', (chunk: Buffer) => {
        seen += chunk.length;
        if (seen >= half) req.socket.destroy();
      });
      req.on('end', () => req.socket.destroy());
      return;
    }

    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const fail = (err: unknown) => {
      const e = toException(err);
      entry.status = e.status;
      const text = `Code: ${e.code}. DB::Exception: ${e.message} (${e.codeName}) (version ${engineVersion} (chdb ${chdbVersion}))\n`;
      send(
        res,
        e.status,
        Buffer.from(text),
        {
          ...headers,
          'Content-Type': 'text/plain; charset=UTF-8',
          'X-ClickHouse-Exception-Code': String(e.code),
        },
        acceptEncoding,
        compressAnswer,
      );
    };
    let statement: string;
    let data: Buffer | undefined;
    try {
      if (url.searchParams.has('session_id'))
        throw new ClickHouseException(
          48,
          'NOT_IMPLEMENTED',
          'The test ClickHouse front keeps no HTTP sessions (session_id)',
        );
      const body = decompress(Buffer.concat(chunks), req.headers['content-encoding']);
      entry.bytes = body.length;
      if (urlQuery !== undefined) {
        if (body.length > 0 && parseDataInsert(urlQuery)) {
          statement = urlQuery;
          data = body;
        } else {
          statement = body.length > 0 ? `${urlQuery}\n${body.toString()}` : urlQuery;
        }
      } else {
        const text = body.toString();
        const inline = /^(\s*INSERT\s+INTO\s+[\s\S]+?\s+FORMAT\s+\w+)[ \t]*\r?\n([\s\S]*)$/i.exec(text);
        if (inline && parseDataInsert(inline[1]) && inline[2].trim() !== '') {
          statement = inline[1];
          data = body.subarray(Buffer.byteLength(text.slice(0, text.length - inline[2].length)));
        } else {
          statement = text;
        }
      }
      if (statement.trim() === '') throw new ClickHouseException(62, 'SYNTAX_ERROR', 'Empty query');
    } catch (err) {
      fail(err);
      return;
    }
    entry.statement = statement;

    const before = takeFault(['reset', 'hang', 'error'], method, statement);
    if (before && !('after' in before.fault && before.fault.after)) {
      entry.fault = before.fault.kind;
      if (before.fault.kind === 'reset') {
        res.socket?.destroy();
        return;
      }
      if (before.fault.kind === 'hang') {
        hung.add(res);
        res.on('close', () => hung.delete(res));
        return;
      }
      if (before.fault.kind === 'error') {
        fail(injected(before.fault));
        return;
      }
    }
    entry.startedAt = Date.now();
    try {
      const out = await run({
        method,
        statement,
        data,
        settings,
        params,
        database:
          url.searchParams.get('database') ?? (req.headers['x-clickhouse-database'] as string | undefined),
        defaultFormat:
          url.searchParams.get('default_format') ??
          (req.headers['x-clickhouse-format'] as string | undefined),
      });
      const r = out.result;
      entry.endedAt = Date.now();
      entry.rows = r?.rowsRead ?? 0;
      if (before) {
        // `after`: the statement ran (and committed); the client never learns it.
        entry.fault = before.fault.kind;
        if (before.fault.kind === 'reset') {
          res.socket?.destroy();
          return;
        }
        fail(injected(before.fault as Extract<Fault, { kind: 'error' }>));
        return;
      }
      const rows = String(r?.rowsRead ?? 0);
      const bytes = String(r?.bytesRead ?? 0);
      const summary = {
        read_rows: rows,
        read_bytes: bytes,
        written_rows: out.written ? rows : '0',
        written_bytes: out.written ? bytes : '0',
        total_rows_to_read: '0',
        result_rows: out.written ? '0' : rows,
        result_bytes: out.written ? '0' : String(out.body.length),
        elapsed_ns: String(Math.round((r?.elapsed ?? 0) * 1e9)),
      };
      entry.status = 200;
      send(
        res,
        200,
        out.body,
        {
          ...headers,
          'Content-Type': contentType(out.format),
          'X-ClickHouse-Format': out.format,
          'X-ClickHouse-Summary': JSON.stringify(summary),
        },
        acceptEncoding,
        compressAnswer,
      );
    } catch (err) {
      entry.endedAt = Date.now();
      fail(err);
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(err));
    });
  });
  server.keepAliveTimeout = 10_000;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const port = await listen(0);

  function stopRefusing(): void {
    if (!refusing) return;
    if (refusing.until) clearTimeout(refusing.until);
    const r = refusing;
    refusing = undefined;
    void listen(port).then(() => r.fault.resolve());
  }

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    fault(fault) {
      let resolve!: () => void;
      const done = new Promise<void>((r) => (resolve = r));
      const active: ActiveFault = {
        fault,
        left: 'count' in fault ? (fault.count ?? 1) : 1,
        hits: 0,
        resolve,
      };
      if (fault.kind === 'refuse') {
        stopRefusing();
        server.close();
        for (const s of sockets) s.destroy();
        refusing = { fault: active };
        if (fault.forMs !== undefined) refusing.until = setTimeout(stopRefusing, fault.forMs);
      } else {
        faults.push(active);
      }
      return {
        get hits() {
          return active.hits;
        },
        done,
        clear() {
          if (fault.kind === 'refuse') {
            if (refusing?.fault === active) stopRefusing();
            return;
          }
          const i = faults.indexOf(active);
          if (i >= 0) faults.splice(i, 1);
          resolve();
        },
      };
    },
    clearFaults() {
      for (const f of faults.splice(0)) f.resolve();
      stopRefusing();
    },
    async rows<T>(sql: string): Promise<T[]> {
      const r = await lock.run(false, () => exec(sql, 'JSONEachRow'));
      return Buffer.from(r.bytes)
        .toString()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as T);
    },
    async close() {
      for (const f of faults.splice(0)) f.resolve();
      if (refusing?.until) clearTimeout(refusing.until);
      refusing = undefined;
      server.close();
      for (const res of hung) res.socket?.destroy();
      for (const s of sockets) s.destroy();
      await Promise.allSettled([...inflight]);
      session.close();
      if (ownDir) rmSync(ownDir, { recursive: true, force: true });
    },
  };
}
