import { accessSync, constants, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { z } from 'zod';

/**
 * What a token may do: `metrics` scrapes `/metrics`; `read` also reads the API and the live socket; `admin` also
 * runs ad-hoc SQL. Each implies the ones before it (the parsed list holds them all).
 */
export type TokenScope = 'metrics' | 'read' | 'admin';
export const TOKEN_SCOPES: readonly TokenScope[] = ['metrics', 'read', 'admin'];
/**
 * What a token may see, when it is restricted (a team sees only its hosts). Unset: everything. Each list
 * matches like the API filter of the same name (`gateway`: node id or node cluster).
 */
export interface TokenRestriction {
  authorities?: string[];
  gateways?: string[];
}
export interface ApiToken {
  /** A short name for logs and rate-limit keys; never the secret itself. */
  name: string;
  token: string;
  scopes: TokenScope[];
  restriction?: TokenRestriction;
}

/**
 * The whole runtime configuration. Parsed once from the environment by `loadConfig`
 * (only `main.ts` calls it), frozen, and passed down; tests build their own.
 */
export interface ClickHouseCredentials {
  username: string;
  password: string;
}
export interface QueryLimits {
  maxExecutionTimeS: number;
  maxMemoryBytes: number;
  maxThreads: number;
}

export interface Config {
  dataDir: string;
  host: string;
  httpPort: number;
  alsPort: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  clickhouse: {
    /** Unset: the embedded engine (chdb) with data under `dataDir`. */
    url?: string;
    username: string;
    password: string;
    database: string;
    /** Cluster name for `ON CLUSTER` DDL in scale-out; unset for a single server. */
    cluster?: string;
    /** A server request idle this long (nothing sent or received) fails with a timeout. */
    requestTimeoutMs: number;
    /**
     * Server users for the read paths (`CLICKHOUSE_READER_USER`, `CLICKHOUSE_SQL_USER`); unset: the main user.
     * `writer` (`CLICKHOUSE_WRITER_USER`) is the collector's: `gatescope migrate` creates it, and the collector runs
     * with it as its CLICKHOUSE_USER.
     */
    roles: { writer?: ClickHouseCredentials; reader?: ClickHouseCredentials; sql?: ClickHouseCredentials };
  };
  /** Limits of every API analytics query and live tick, in the statement's own SETTINGS clause. */
  query: { limits: QueryLimits };
  /** Ad-hoc SQL (`POST /api/v1/sql`): limits, result caps and admission. */
  sql: {
    limits: QueryLimits & { maxResultRows: number; maxResultBytes: number };
    /** Statements running at once; more wait in a queue of `queue`, beyond it 429. */
    concurrency: number;
    queue: number;
  };
  retentionDays: number;
  rollupRetentionDays: number;
  ingest: {
    batchMaxRows: number;
    batchMaxDelayMs: number;
    /**
     * Busy traffic (rows coming faster than batchMaxRows per batchMaxDelayMs): a batch grows for up to this long
     * (or to its size bounds) before it is inserted. 0: no busy growth.
     */
    batchBusyDelayMs: number;
    /** Rows received but not yet committed; above it the collector stops reading streams. */
    maxPendingRows: number;
    /** Bytes held for ingest (decoded rows not committed + messages not decoded yet); same effect. */
    maxPendingBytes: number;
    maxMessageBytes: number;
    decoderWorkers: number;
    /** Access-log entries one ALS message may carry. */
    maxEntriesPerMessage: number;
    /** Bytes of one stored string field of an entry. */
    maxStringBytes: number;
    /** Bytes of each identifier string (node id, node cluster, log name). */
    maxIdentifierBytes: number;
    /** Concurrent ALS streams, all connections together. */
    maxStreams: number;
    /** Concurrent ALS streams on one HTTP/2 connection. */
    maxStreamsPerConnection: number;
    /** A stream that delivered no complete message for this long is closed (0: never). */
    streamIdleTimeoutS: number;
    /** Bytes of a stream's request headers (gRPC metadata), counted as HTTP/2 does. */
    maxHeaderBytes: number;
    /** TLS on the gRPC port; mutual TLS when `clientCaFile` is set. Unset: plaintext. */
    tls?: TlsFiles;
    /** An entry may start at most this far ahead of the collector's clock; later ones are dead-lettered. */
    maxClockSkewS: number;
  };
  /** The collector's write-ahead log (under `dataDir/wal`) and dead letters (`dataDir/dead-letters`). */
  wal: {
    /** fdatasync every group commit and replay at start. Off: batches are only spooled, a crash loses them. */
    enabled: boolean;
    /** Group-commit interval: accepted rows are durable at most this long after they were decoded. */
    syncIntervalMs: number;
    /** Bytes on disk waiting for ClickHouse; above it the collector stops reading streams. */
    maxBytes: number;
    /** Bytes of dead letters kept; beyond it new dead letters are dropped and counted. */
    deadLetterMaxBytes: number;
  };
  pathTemplates: {
    rulesJson?: string;
    maxTemplatesPerRoute: number;
  };
  auth: {
    /** Empty: tokenless mode (loopback only, Host-checked; see `http.allowedHosts`). */
    tokens: ApiToken[];
    /** Explicit opt-out: serve without tokens on a non-loopback address (logged loudly). */
    allowUnauthenticated: boolean;
    rateLimitPerMinute: number;
  };
  http: {
    /**
     * Host names (lower case, no port) this gatescope is reached by, besides loopback addresses (and, when serving a non-loopback address without tokens, IP literals):
     * without tokens only these `Host`s are answered (DNS rebinding), and in every mode a browser `Origin` must be
     * the request's own host or one of these.
     */
    allowedHosts: string[];
    /** `/metrics` without a token (default: it needs a token with the `metrics` scope). */
    metricsPublic: boolean;
    /** Serve HTTPS on the HTTP port with this PEM certificate chain and key (read when the server starts). */
    tls?: Omit<TlsFiles, 'clientCaFile'>;
  };
  live: {
    windowSeconds: number;
    tickMs: number;
  };
  alerts: {
    /** The provisioning file (GATESCOPE_ALERTS_FILE): rules and receivers, synced at start. */
    file?: string;
    /** How often rules are evaluated. */
    intervalMs: number;
    /** Whether this process runs the evaluator (the all-in-one process; services/alerts always does). */
    evaluator: boolean;
    /** The UI's address for links in webhooks (`generatorURL`, `externalURL`); unset: this process's own. */
    externalUrl?: string;
    /** Let every receiver reach loopback/private/link-local addresses (else only those that allow it). */
    allowPrivateNetwork: boolean;
    /** Attempts per notification (the first included). */
    deliveryAttempts: number;
    /** Notifications waiting or in flight; beyond it new ones are dropped (and recorded). */
    deliveryQueue: number;
  };
  /** The delivery ledger (issue 14): per gateway node, what came in and what became of it. */
  ledger: {
    /** A node with no open stream and no message for this long is `stale` (GATESCOPE_STALE_AFTER). */
    staleAfterMs: number;
    /** Nodes with Prometheus series of their own per collector; later ones are folded into `other`. */
    maxMetricNodes: number;
  };
  health: {
    degradedErrorRate: number;
    failingErrorRate: number;
    degraded4xxRate: number;
    failing4xxRate: number;
    minRequests: number;
    hysteresis: number;
  };
}

export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG';
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const port = (name: string, dflt: number) =>
  z.coerce
    .number({ error: `${name} must be a port number` })
    .int(`${name} must be an integer`)
    .min(0, `${name} must be between 0 and 65535`)
    .max(65535, `${name} must be between 0 and 65535`)
    .default(dflt);
const positiveInt = (name: string, dflt: number) =>
  z.coerce
    .number({ error: `${name} must be a number` })
    .int(`${name} must be an integer`)
    .positive(`${name} must be > 0`)
    .default(dflt);
const positiveNumber = (name: string, dflt: number) =>
  z.coerce
    .number({ error: `${name} must be a number` })
    .positive(`${name} must be > 0`)
    .default(dflt);
const ratio = (name: string, dflt: number) =>
  z.coerce
    .number({ error: `${name} must be a number` })
    .min(0, `${name} must be in [0, 1]`)
    .max(1, `${name} must be in [0, 1]`)
    .default(dflt);
/** `60s`, `5m`, `1h`, `2d` (or a bare number of seconds) -> milliseconds. */
const duration = (name: string, dflt: string) =>
  z
    .string()
    .default(dflt)
    .transform((text, ctx) => {
      const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
      const units: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
      const ms = m ? Number(m[1]) * units[m[2] ?? 's'] : NaN;
      if (!(ms > 0)) {
        ctx.addIssue({
          code: 'custom',
          message: `${name}="${text}" is not a duration: use a number and a unit ms, s, m, h or d (60s, 5m)`,
        });
        return z.NEVER;
      }
      return Math.round(ms);
    });
const bool = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no', ''])
  .default('')
  .transform((v) => v === '1' || v === 'true' || v === 'yes');
/** A switch that is on unless turned off (`0`, `false`, `no`). */
const boolOn = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no', ''])
  .default('')
  .transform((v) => !(v === '0' || v === 'false' || v === 'no'));

const envSchema = z.object({
  GATESCOPE_DATA_DIR: z.string().min(1).default('./data'),
  GATESCOPE_HOST: z.string().min(1).default('127.0.0.1'),
  GATESCOPE_HTTP_PORT: port('GATESCOPE_HTTP_PORT', 8080),
  GATESCOPE_ALS_PORT: port('GATESCOPE_ALS_PORT', 8090),
  GATESCOPE_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  CLICKHOUSE_URL: z
    .string()
    .url('CLICKHOUSE_URL must be a URL such as http://clickhouse:8123')
    .optional()
    .or(z.literal('').transform(() => undefined)),
  CLICKHOUSE_USER: z.string().default('default'),
  CLICKHOUSE_PASSWORD: z.string().default(''),
  CLICKHOUSE_DATABASE: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'CLICKHOUSE_DATABASE must be a plain identifier (letters, digits, _)')
    .default('gatescope'),
  CLICKHOUSE_WRITER_USER: z.string().optional(),
  CLICKHOUSE_WRITER_PASSWORD: z.string().default(''),
  CLICKHOUSE_READER_USER: z.string().optional(),
  CLICKHOUSE_READER_PASSWORD: z.string().default(''),
  CLICKHOUSE_SQL_USER: z.string().optional(),
  CLICKHOUSE_SQL_PASSWORD: z.string().default(''),
  GATESCOPE_QUERY_MAX_EXECUTION_TIME_S: positiveNumber('GATESCOPE_QUERY_MAX_EXECUTION_TIME_S', 30),
  GATESCOPE_QUERY_MAX_MEMORY_BYTES: positiveInt('GATESCOPE_QUERY_MAX_MEMORY_BYTES', 2 * 1024 ** 3),
  GATESCOPE_QUERY_MAX_THREADS: positiveInt('GATESCOPE_QUERY_MAX_THREADS', 2),
  GATESCOPE_SQL_MAX_EXECUTION_TIME_S: positiveNumber('GATESCOPE_SQL_MAX_EXECUTION_TIME_S', 30),
  GATESCOPE_SQL_MAX_MEMORY_BYTES: positiveInt('GATESCOPE_SQL_MAX_MEMORY_BYTES', 1024 ** 3),
  // One thread: on the 2-core embedded engine the other core stays with ingest (README, "Ad-hoc SQL and ingest").
  GATESCOPE_SQL_MAX_THREADS: positiveInt('GATESCOPE_SQL_MAX_THREADS', 1),
  GATESCOPE_SQL_MAX_RESULT_ROWS: positiveInt('GATESCOPE_SQL_MAX_RESULT_ROWS', 100_000),
  GATESCOPE_SQL_MAX_RESULT_BYTES: positiveInt('GATESCOPE_SQL_MAX_RESULT_BYTES', 32 * 1024 ** 2),
  GATESCOPE_SQL_CONCURRENCY: positiveInt('GATESCOPE_SQL_CONCURRENCY', 1),
  GATESCOPE_SQL_QUEUE: z.coerce
    .number({ error: 'GATESCOPE_SQL_QUEUE must be a number' })
    .int('GATESCOPE_SQL_QUEUE must be an integer')
    .min(0, 'GATESCOPE_SQL_QUEUE must be >= 0')
    .default(4),
  CLICKHOUSE_CLUSTER: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, 'CLICKHOUSE_CLUSTER must be a plain cluster name')
    .optional(),
  // 60 s: the longest API question (24 h of raw rows on 10 M rows) takes ~0.6 s; a migration ALTER a few seconds.
  GATESCOPE_CLICKHOUSE_TIMEOUT_MS: positiveInt('GATESCOPE_CLICKHOUSE_TIMEOUT_MS', 60_000),
  // ClickHouse DateTime ends in 2106: keep TTL arithmetic well inside it.
  GATESCOPE_RETENTION_DAYS: positiveInt('GATESCOPE_RETENTION_DAYS', 14).pipe(
    z.number().max(3650, 'GATESCOPE_RETENTION_DAYS must be at most 3650 (10 years)'),
  ),
  GATESCOPE_ROLLUP_RETENTION_DAYS: positiveInt('GATESCOPE_ROLLUP_RETENTION_DAYS', 400).pipe(
    z.number().max(3650, 'GATESCOPE_ROLLUP_RETENTION_DAYS must be at most 3650 (10 years)'),
  ),
  GATESCOPE_BATCH_MAX_ROWS: positiveInt('GATESCOPE_BATCH_MAX_ROWS', 10_000),
  // 500 ms keeps an entry's way to the live charts (flush + 1 s tick) under 2 s at p95.
  GATESCOPE_BATCH_MAX_DELAY_MS: positiveInt('GATESCOPE_BATCH_MAX_DELAY_MS', 500),
  // Under busy traffic the engine's cost per row falls steeply with the batch (merges above all): 2 s at 80k entries/s
  // is ~160k rows (bounded by 64 MiB), measured at a third of the engine CPU of 40k-row batches. The live view reads
  // the decoded stream, so it does not wait for these inserts.
  GATESCOPE_BATCH_BUSY_DELAY_MS: z.coerce
    .number({ error: 'GATESCOPE_BATCH_BUSY_DELAY_MS must be a number' })
    .int('GATESCOPE_BATCH_BUSY_DELAY_MS must be an integer')
    .min(0, 'GATESCOPE_BATCH_BUSY_DELAY_MS must be >= 0 (0 turns busy batching off)')
    .max(60_000, 'GATESCOPE_BATCH_BUSY_DELAY_MS must be at most 60000 (1 minute)')
    .default(2_000),
  // 150k: measured peak RSS ≈ 840 MiB at 80k entries/s (200k: ≈ 900 MiB; 100k: ≈ 740 MiB at 63k/s).
  GATESCOPE_MAX_PENDING_ROWS: positiveInt('GATESCOPE_MAX_PENDING_ROWS', 150_000),
  // Typical rows are ~510 bytes in Native form (test/fixtures makeTrafficMessage): 150k of them are ~76 MB, so
  // the row bound binds first for normal traffic and this one for fat rows (long paths, user agents).
  GATESCOPE_MAX_PENDING_BYTES: positiveInt('GATESCOPE_MAX_PENDING_BYTES', 128 * 1024 * 1024),
  // gRPC's own default receive limit. Envoy flushes its ALS buffer at buffer_size_bytes (16 KiB by default),
  // so its messages are 16 KiB plus one entry; 4 MiB leaves 256x that for raised buffers.
  GATESCOPE_MAX_MESSAGE_BYTES: positiveInt('GATESCOPE_MAX_MESSAGE_BYTES', 4 * 1024 * 1024),
  // A 16 KiB Envoy buffer holds ~35 typical entries (~460 bytes each on the wire); 10,000 allows ~290x
  // that (a 4 MiB message of typical entries holds ~9,000). One empty entry is 2 bytes but a ~310-byte row.
  GATESCOPE_ALS_MAX_ENTRIES_PER_MESSAGE: positiveInt('GATESCOPE_ALS_MAX_ENTRIES_PER_MESSAGE', 10_000),
  // Envoy refuses request headers over max_request_headers_kb (60 KiB by default), so no path, user agent or
  // referer it logs is longer unless the operator raised that limit.
  GATESCOPE_ALS_MAX_STRING_BYTES: positiveInt('GATESCOPE_ALS_MAX_STRING_BYTES', 65_536),
  // Copied into every row. An Istio node id is `router~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local`:
  // Kubernetes caps pod names at 253 and namespaces at 63 characters, so it stays under ~450 bytes.
  GATESCOPE_ALS_MAX_IDENTIFIER_BYTES: positiveInt('GATESCOPE_ALS_MAX_IDENTIFIER_BYTES', 1_024),
  // Envoy opens one stream per worker thread per access logger: 200 gateway pods x 4 workers fit.
  GATESCOPE_ALS_MAX_STREAMS: positiveInt('GATESCOPE_ALS_MAX_STREAMS', 1_024),
  // One Envoy worker multiplexes its loggers' streams on one connection: a handful, far below 100.
  GATESCOPE_ALS_MAX_STREAMS_PER_CONNECTION: positiveInt('GATESCOPE_ALS_MAX_STREAMS_PER_CONNECTION', 100),
  // Envoy flushes every second while there is traffic and keeps an idle stream open without sending; closing
  // it after 5 min of silence costs Envoy one reconnect (and its identifier again) on its next entry.
  GATESCOPE_ALS_STREAM_IDLE_TIMEOUT_SECONDS: z.coerce
    .number({ error: 'GATESCOPE_ALS_STREAM_IDLE_TIMEOUT_SECONDS must be a number' })
    .int('GATESCOPE_ALS_STREAM_IDLE_TIMEOUT_SECONDS must be an integer')
    .min(0, 'GATESCOPE_ALS_STREAM_IDLE_TIMEOUT_SECONDS must be >= 0 (0 disables it)')
    .default(300),
  // gRPC's own default for metadata (8 KiB); Envoy's ALS requests carry ~200 bytes plus configured
  // initial_metadata. Node's HTTP/2 layer refuses header lists over 64 KiB before gatescope sees them.
  GATESCOPE_ALS_MAX_HEADER_BYTES: positiveInt('GATESCOPE_ALS_MAX_HEADER_BYTES', 8_192).pipe(
    z.number().max(65_535, "GATESCOPE_ALS_MAX_HEADER_BYTES must be at most 65535 (Node's HTTP/2 header cap)"),
  ),
  // An NTP-synced gateway is milliseconds off; five minutes tolerates a sloppy clock, not a wrong one. Entries
  // further ahead would sit in the future, outside every live window: they are dead-lettered, visible and replayable.
  GATESCOPE_ALS_MAX_CLOCK_SKEW_SECONDS: positiveInt('GATESCOPE_ALS_MAX_CLOCK_SKEW_SECONDS', 300).pipe(
    z.number().max(86_400, 'GATESCOPE_ALS_MAX_CLOCK_SKEW_SECONDS must be at most 86400 (a day)'),
  ),
  GATESCOPE_WAL_ENABLED: boolOn,
  // 100 ms: the loss bound on power loss is one interval of traffic; fdatasync of two files per table costs
  // ~1 ms each on an SSD, so ten commits a second are cheap (npm run bench measures WAL on vs off).
  GATESCOPE_WAL_SYNC_INTERVAL_MS: positiveInt('GATESCOPE_WAL_SYNC_INTERVAL_MS', 100).pipe(
    z.number().max(10_000, 'GATESCOPE_WAL_SYNC_INTERVAL_MS must be at most 10000'),
  ),
  // 1 GiB holds ~2 M typical rows (~500 bytes each in Native form): ~7 minutes of a ClickHouse outage at 5k
  // entries/s before the collector pushes back on Envoy.
  GATESCOPE_WAL_MAX_BYTES: positiveInt('GATESCOPE_WAL_MAX_BYTES', 1024 ** 3).pipe(
    z.number().min(16 * 1024 ** 2, 'GATESCOPE_WAL_MAX_BYTES must be at least 16777216 (16 MiB)'),
  ),
  GATESCOPE_DEAD_LETTER_MAX_BYTES: positiveInt('GATESCOPE_DEAD_LETTER_MAX_BYTES', 1024 ** 3),
  GATESCOPE_ALS_TLS_CERT_FILE: z.string().optional(),
  GATESCOPE_ALS_TLS_KEY_FILE: z.string().optional(),
  GATESCOPE_ALS_TLS_CLIENT_CA_FILE: z.string().optional(),
  // Two decoder threads measured 78-84k entries/s end to end vs 55-59k with one (2-core machine, same run).
  GATESCOPE_DECODER_WORKERS: z.coerce.number().int().min(0).max(16).default(2),
  GATESCOPE_PATH_TEMPLATE_RULES: z.string().optional(),
  GATESCOPE_MAX_TEMPLATES_PER_ROUTE: positiveInt('GATESCOPE_MAX_TEMPLATES_PER_ROUTE', 200),
  GATESCOPE_TOKENS: z.string().optional(),
  GATESCOPE_TOKENS_FILE: z.string().optional(),
  GATESCOPE_ALLOW_UNAUTHENTICATED: bool,
  GATESCOPE_RATE_LIMIT_PER_MINUTE: positiveInt('GATESCOPE_RATE_LIMIT_PER_MINUTE', 600),
  GATESCOPE_ALLOWED_HOSTS: z.string().default(''),
  GATESCOPE_METRICS_PUBLIC: bool,
  GATESCOPE_TLS_CERT_FILE: z.string().optional(),
  GATESCOPE_TLS_KEY_FILE: z.string().optional(),
  GATESCOPE_LIVE_WINDOW_SECONDS: positiveInt('GATESCOPE_LIVE_WINDOW_SECONDS', 60),
  GATESCOPE_LIVE_TICK_MS: positiveInt('GATESCOPE_LIVE_TICK_MS', 500),
  GATESCOPE_HEALTH_DEGRADED_ERROR_RATE: ratio('GATESCOPE_HEALTH_DEGRADED_ERROR_RATE', 0.001),
  GATESCOPE_HEALTH_FAILING_ERROR_RATE: ratio('GATESCOPE_HEALTH_FAILING_ERROR_RATE', 0.1),
  GATESCOPE_HEALTH_DEGRADED_4XX_RATE: ratio('GATESCOPE_HEALTH_DEGRADED_4XX_RATE', 0.1),
  GATESCOPE_HEALTH_FAILING_4XX_RATE: ratio('GATESCOPE_HEALTH_FAILING_4XX_RATE', 0.2),
  GATESCOPE_HEALTH_MIN_REQUESTS: positiveInt('GATESCOPE_HEALTH_MIN_REQUESTS', 20),
  GATESCOPE_STALE_AFTER: duration('GATESCOPE_STALE_AFTER', '60s'),
  GATESCOPE_LEDGER_MAX_METRIC_NODES: positiveInt('GATESCOPE_LEDGER_MAX_METRIC_NODES', 200),
  GATESCOPE_HEALTH_HYSTERESIS: ratio('GATESCOPE_HEALTH_HYSTERESIS', 0.2),
  GATESCOPE_ALERTS_FILE: z.string().optional(),
  GATESCOPE_ALERTS_INTERVAL: z
    .string()
    .default('15s')
    .refine((v) => durationMs(v) !== undefined && durationMs(v)! >= 1000, {
      error: 'GATESCOPE_ALERTS_INTERVAL must be a duration of at least 1s, such as 15s, 30s or 1m',
    }),
  GATESCOPE_ALERTS_EVALUATOR: z
    .enum(['1', '0', 'true', 'false', 'yes', 'no', ''])
    .default('1')
    .transform((v) => v !== '0' && v !== 'false' && v !== 'no'),
  GATESCOPE_EXTERNAL_URL: z
    .string()
    .url(
      'GATESCOPE_EXTERNAL_URL must be the URL people open gatescope at, such as https://gatescope.example.com/',
    )
    .optional()
    .or(z.literal('').transform(() => undefined)),
  GATESCOPE_ALERTS_ALLOW_PRIVATE_NETWORK: bool,
  GATESCOPE_ALERTS_DELIVERY_ATTEMPTS: positiveInt('GATESCOPE_ALERTS_DELIVERY_ATTEMPTS', 6).pipe(
    z.number().max(20, 'GATESCOPE_ALERTS_DELIVERY_ATTEMPTS must be at most 20'),
  ),
  GATESCOPE_ALERTS_DELIVERY_QUEUE: positiveInt('GATESCOPE_ALERTS_DELIVERY_QUEUE', 1_000),
});

/** `500ms`, `15s`, `1m`, `2h` -> milliseconds (the alerting interval); undefined when it is none of these. */
function durationMs(text: string): number | undefined {
  const m = /^(\d+)(ms|s|m|h)$/.exec(text.trim());
  if (!m) return undefined;
  return Number(m[1]) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
}

/**
 * `GATESCOPE_ALLOWED_HOSTS`: comma-separated host names or IP addresses, no scheme, port or path
 * (`gatescope.example.com,gatescope.internal`). Compared case-insensitively, a trailing dot ignored.
 */
function parseAllowedHosts(list: string, problems: string[]): string[] {
  const hosts: string[] = [];
  const name = /^(?=.{1,253}$)[a-z0-9_-]{1,63}(?:\.[a-z0-9_-]{1,63})*$/;
  for (const raw of list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const host = raw
      .toLowerCase()
      .replace(/\.$/, '')
      .replace(/^\[(.*)\]$/, '$1');
    if (name.test(host) || isIP(host) !== 0) hosts.push(host);
    else
      problems.push(
        `GATESCOPE_ALLOWED_HOSTS: "${raw}" is not a host name; list names without scheme, port or path, ` +
          'e.g. GATESCOPE_ALLOWED_HOSTS=gatescope.example.com,gatescope.internal',
      );
  }
  return hosts;
}

/** Both TLS files or neither, each readable now (a missing file is reported at start, not at the first request). */
/** A TLS endpoint's files, checked readable at start. `clientCaFile` turns on mutual TLS where supported. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  clientCaFile?: string;
}

/**
 * One way to read TLS settings for any port: `<prefix>_CERT_FILE` and `<prefix>_KEY_FILE` go together, an optional
 * `<prefix>_CLIENT_CA_FILE` needs both; every file must be readable now (a bad path stops the process at start).
 */
function parseTls(
  prefix: 'GATESCOPE_TLS' | 'GATESCOPE_ALS_TLS',
  files: { cert?: string; key?: string; clientCa?: string },
  problems: string[],
): TlsFiles | undefined {
  const certFile = files.cert || undefined;
  const keyFile = files.key || undefined;
  const clientCaFile = files.clientCa || undefined;
  if (!certFile && !keyFile) {
    if (clientCaFile)
      problems.push(
        `${prefix}_CLIENT_CA_FILE needs ${prefix}_CERT_FILE and ${prefix}_KEY_FILE (mutual TLS is TLS plus client certificates)`,
      );
    return undefined;
  }
  if (!certFile || !keyFile) {
    problems.push(
      `${prefix}_CERT_FILE and ${prefix}_KEY_FILE go together: set both (PEM certificate chain and its private key) or neither`,
    );
    return undefined;
  }
  for (const [name, file] of [
    [`${prefix}_CERT_FILE`, certFile],
    [`${prefix}_KEY_FILE`, keyFile],
    [`${prefix}_CLIENT_CA_FILE`, clientCaFile],
  ] as const) {
    if (!file) continue;
    try {
      accessSync(file, constants.R_OK);
    } catch (err) {
      problems.push(`${name} (${file}) cannot be read: ${(err as Error).message}`);
    }
  }
  return {
    certFile: resolve(certFile),
    keyFile: resolve(keyFile),
    ...(clientCaFile && { clientCaFile: resolve(clientCaFile) }),
  };
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** A restriction value: a host[:port], an IPv6 literal, a node id or cluster (`router~10.0.0.7~gw-1.ns~…`). */
const RESTRICTION_VALUE = /^[A-Za-z0-9._:~[\]*-]{1,253}$/;

/**
 * `GATESCOPE_TOKENS`: comma-separated `name:token:scope[+scope][:restriction]` (e.g.
 * `grafana:s3cr3t:read,ops:t0k3n:admin`); the optional restriction is `authority=a|b;gateway=g|h`
 * (`team-a:s3cr3t-long:read:authority=shop.example.com|api.shop.example.com`). Only the first three `:` separate
 * fields, so an authority may carry a port.
 * `GATESCOPE_TOKENS_FILE`: JSON `[{ "name", "token", "scopes": ["metrics"|"read"|"admin"], "authorities"?: […],
 * "gateways"?: […] }]`. `admin` implies `read`, `read` implies `metrics`.
 */
function parseTokens(inline: string | undefined, file: string | undefined, problems: string[]): ApiToken[] {
  const tokens: ApiToken[] = [];
  const add = (
    name: string,
    token: string,
    scopes: string[],
    where: string,
    restriction?: { authorities?: unknown; gateways?: unknown },
  ) => {
    const bad = scopes.filter((s) => !TOKEN_SCOPES.includes(s as TokenScope));
    if (!name || !token || scopes.length === 0 || bad.length > 0) {
      problems.push(
        `${where}: each token needs a name, a secret and scopes metrics, read and/or admin (got scopes "${scopes.join('+')}")`,
      );
      return;
    }
    if (token.length < 8)
      problems.push(`${where}: token "${name}" is shorter than 8 characters; use a long random secret`);
    const set = new Set(scopes as TokenScope[]);
    if (set.has('admin')) set.add('read');
    if (set.has('read')) set.add('metrics');
    const entry: ApiToken = { name, token, scopes: [...set] };
    const r: TokenRestriction = {};
    for (const key of ['authorities', 'gateways'] as const) {
      const v = restriction?.[key];
      if (v === undefined) continue;
      if (
        !Array.isArray(v) ||
        v.length === 0 ||
        !v.every((x) => typeof x === 'string' && RESTRICTION_VALUE.test(x))
      ) {
        problems.push(
          `${where}: "${key}" of token "${name}" must be a non-empty list of host names / gateway ids (letters, digits, . : ~ - _ [ ] *)`,
        );
        continue;
      }
      r[key] = [...new Set(v as string[])];
    }
    if (r.authorities || r.gateways) entry.restriction = r;
    tokens.push(entry);
  };
  if (inline) {
    for (const [i, part] of inline
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .entries()) {
      const [name, token, scopes, ...rest] = part.split(':');
      const where = `GATESCOPE_TOKENS entry ${i + 1}`;
      const restriction: Record<string, string[]> = {};
      for (const clause of rest.join(':').split(';').filter(Boolean)) {
        const m = /^(authority|gateway)=(.+)$/.exec(clause.trim());
        if (!m) {
          problems.push(`${where}: restriction "${clause}" must be authority=a|b or gateway=g|h`);
          continue;
        }
        restriction[m[1] === 'authority' ? 'authorities' : 'gateways'] = m[2].split('|').map((v) => v.trim());
      }
      add(name ?? '', token ?? '', (scopes ?? '').split('+').filter(Boolean), where, restriction);
    }
  }
  if (file) {
    try {
      const list = JSON.parse(readFileSync(file, 'utf8')) as unknown;
      if (!Array.isArray(list)) throw new Error('expected a JSON array');
      list.forEach(
        (
          t: { name?: string; token?: string; scopes?: string[]; authorities?: unknown; gateways?: unknown },
          i,
        ) =>
          add(
            t?.name ?? '',
            t?.token ?? '',
            Array.isArray(t?.scopes) ? t.scopes : [],
            `GATESCOPE_TOKENS_FILE entry ${i + 1}`,
            { authorities: t?.authorities, gateways: t?.gateways },
          ),
      );
    } catch (err) {
      problems.push(`GATESCOPE_TOKENS_FILE (${file}) could not be read: ${(err as Error).message}`);
    }
  }
  return tokens;
}

/**
 * TLS for the gRPC port from files: certificate and key together (TLS), plus a client CA for mutual TLS.
 * The files are checked for readability here, so a typo stops the process at start with the others.
 */
/** Parse and validate the environment. Throws a ConfigError listing every problem at once. */
export function loadConfig(env: Record<string, string | undefined>): Readonly<Config> {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const e = parsed.data;
  const problems: string[] = [];
  const tokens = parseTokens(e.GATESCOPE_TOKENS, e.GATESCOPE_TOKENS_FILE, problems);
  const allowedHosts = parseAllowedHosts(e.GATESCOPE_ALLOWED_HOSTS, problems);
  const httpTls = parseTls(
    'GATESCOPE_TLS',
    { cert: e.GATESCOPE_TLS_CERT_FILE, key: e.GATESCOPE_TLS_KEY_FILE },
    problems,
  );
  if (tokens.length === 0 && !isLoopbackHost(e.GATESCOPE_HOST) && !e.GATESCOPE_ALLOW_UNAUTHENTICATED) {
    problems.push(
      `GATESCOPE_HOST=${e.GATESCOPE_HOST} is not a loopback address and no API token is configured: ` +
        'set GATESCOPE_TOKENS (name:secret:read,...) or GATESCOPE_TOKENS_FILE, ' +
        'or bind to 127.0.0.1, or set GATESCOPE_ALLOW_UNAUTHENTICATED=1 to serve everyone without authentication',
    );
  }
  if (e.GATESCOPE_HEALTH_DEGRADED_ERROR_RATE > e.GATESCOPE_HEALTH_FAILING_ERROR_RATE) {
    problems.push('GATESCOPE_HEALTH_DEGRADED_ERROR_RATE must not exceed GATESCOPE_HEALTH_FAILING_ERROR_RATE');
  }
  if (e.GATESCOPE_HEALTH_DEGRADED_4XX_RATE > e.GATESCOPE_HEALTH_FAILING_4XX_RATE) {
    problems.push('GATESCOPE_HEALTH_DEGRADED_4XX_RATE must not exceed GATESCOPE_HEALTH_FAILING_4XX_RATE');
  }
  for (const role of ['WRITER', 'READER', 'SQL'] as const) {
    const user = e[`CLICKHOUSE_${role}_USER`];
    if (user !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(user))
      problems.push(`CLICKHOUSE_${role}_USER must be a plain identifier (letters, digits, _)`);
    if (user && !e.CLICKHOUSE_URL)
      problems.push(`CLICKHOUSE_${role}_USER needs CLICKHOUSE_URL: the embedded engine has no users`);
  }
  if (e.GATESCOPE_MAX_PENDING_ROWS < e.GATESCOPE_BATCH_MAX_ROWS) {
    problems.push('GATESCOPE_MAX_PENDING_ROWS must be at least GATESCOPE_BATCH_MAX_ROWS');
  }
  if (e.GATESCOPE_ALERTS_FILE) {
    try {
      accessSync(e.GATESCOPE_ALERTS_FILE, constants.R_OK);
    } catch (err) {
      problems.push(
        `GATESCOPE_ALERTS_FILE (${e.GATESCOPE_ALERTS_FILE}) cannot be read: ${(err as Error).message}`,
      );
    }
  }
  const alsTls = parseTls(
    'GATESCOPE_ALS_TLS',
    {
      cert: e.GATESCOPE_ALS_TLS_CERT_FILE,
      key: e.GATESCOPE_ALS_TLS_KEY_FILE,
      clientCa: e.GATESCOPE_ALS_TLS_CLIENT_CA_FILE,
    },
    problems,
  );
  if (problems.length > 0) throw new ConfigError(problems);

  const config: Config = {
    dataDir: resolve(e.GATESCOPE_DATA_DIR),
    host: e.GATESCOPE_HOST,
    httpPort: e.GATESCOPE_HTTP_PORT,
    alsPort: e.GATESCOPE_ALS_PORT,
    logLevel: e.GATESCOPE_LOG_LEVEL,
    clickhouse: {
      url: e.CLICKHOUSE_URL,
      username: e.CLICKHOUSE_USER,
      password: e.CLICKHOUSE_PASSWORD,
      database: e.CLICKHOUSE_DATABASE,
      cluster: e.CLICKHOUSE_CLUSTER,
      requestTimeoutMs: e.GATESCOPE_CLICKHOUSE_TIMEOUT_MS,
      roles: {
        ...(e.CLICKHOUSE_WRITER_USER
          ? { writer: { username: e.CLICKHOUSE_WRITER_USER, password: e.CLICKHOUSE_WRITER_PASSWORD } }
          : {}),
        ...(e.CLICKHOUSE_READER_USER
          ? { reader: { username: e.CLICKHOUSE_READER_USER, password: e.CLICKHOUSE_READER_PASSWORD } }
          : {}),
        ...(e.CLICKHOUSE_SQL_USER
          ? { sql: { username: e.CLICKHOUSE_SQL_USER, password: e.CLICKHOUSE_SQL_PASSWORD } }
          : {}),
      },
    },
    query: {
      limits: {
        maxExecutionTimeS: e.GATESCOPE_QUERY_MAX_EXECUTION_TIME_S,
        maxMemoryBytes: e.GATESCOPE_QUERY_MAX_MEMORY_BYTES,
        maxThreads: e.GATESCOPE_QUERY_MAX_THREADS,
      },
    },
    sql: {
      limits: {
        maxExecutionTimeS: e.GATESCOPE_SQL_MAX_EXECUTION_TIME_S,
        maxMemoryBytes: e.GATESCOPE_SQL_MAX_MEMORY_BYTES,
        maxThreads: e.GATESCOPE_SQL_MAX_THREADS,
        maxResultRows: e.GATESCOPE_SQL_MAX_RESULT_ROWS,
        maxResultBytes: e.GATESCOPE_SQL_MAX_RESULT_BYTES,
      },
      concurrency: e.GATESCOPE_SQL_CONCURRENCY,
      queue: e.GATESCOPE_SQL_QUEUE,
    },
    retentionDays: e.GATESCOPE_RETENTION_DAYS,
    rollupRetentionDays: e.GATESCOPE_ROLLUP_RETENTION_DAYS,
    ingest: {
      batchMaxRows: e.GATESCOPE_BATCH_MAX_ROWS,
      batchMaxDelayMs: e.GATESCOPE_BATCH_MAX_DELAY_MS,
      batchBusyDelayMs: e.GATESCOPE_BATCH_BUSY_DELAY_MS,
      maxPendingRows: e.GATESCOPE_MAX_PENDING_ROWS,
      maxPendingBytes: e.GATESCOPE_MAX_PENDING_BYTES,
      maxMessageBytes: e.GATESCOPE_MAX_MESSAGE_BYTES,
      decoderWorkers: e.GATESCOPE_DECODER_WORKERS,
      maxEntriesPerMessage: e.GATESCOPE_ALS_MAX_ENTRIES_PER_MESSAGE,
      maxStringBytes: e.GATESCOPE_ALS_MAX_STRING_BYTES,
      maxIdentifierBytes: e.GATESCOPE_ALS_MAX_IDENTIFIER_BYTES,
      maxStreams: e.GATESCOPE_ALS_MAX_STREAMS,
      maxStreamsPerConnection: e.GATESCOPE_ALS_MAX_STREAMS_PER_CONNECTION,
      streamIdleTimeoutS: e.GATESCOPE_ALS_STREAM_IDLE_TIMEOUT_SECONDS,
      maxHeaderBytes: e.GATESCOPE_ALS_MAX_HEADER_BYTES,
      ...(alsTls && { tls: alsTls }),
      maxClockSkewS: e.GATESCOPE_ALS_MAX_CLOCK_SKEW_SECONDS,
    },
    wal: {
      enabled: e.GATESCOPE_WAL_ENABLED,
      syncIntervalMs: e.GATESCOPE_WAL_SYNC_INTERVAL_MS,
      maxBytes: e.GATESCOPE_WAL_MAX_BYTES,
      deadLetterMaxBytes: e.GATESCOPE_DEAD_LETTER_MAX_BYTES,
    },
    pathTemplates: {
      rulesJson: e.GATESCOPE_PATH_TEMPLATE_RULES,
      maxTemplatesPerRoute: e.GATESCOPE_MAX_TEMPLATES_PER_ROUTE,
    },
    auth: {
      tokens,
      allowUnauthenticated: e.GATESCOPE_ALLOW_UNAUTHENTICATED,
      rateLimitPerMinute: e.GATESCOPE_RATE_LIMIT_PER_MINUTE,
    },
    http: { allowedHosts, metricsPublic: e.GATESCOPE_METRICS_PUBLIC, tls: httpTls },
    live: { windowSeconds: e.GATESCOPE_LIVE_WINDOW_SECONDS, tickMs: e.GATESCOPE_LIVE_TICK_MS },
    alerts: {
      ...(e.GATESCOPE_ALERTS_FILE ? { file: resolve(e.GATESCOPE_ALERTS_FILE) } : {}),
      intervalMs: durationMs(e.GATESCOPE_ALERTS_INTERVAL)!,
      evaluator: e.GATESCOPE_ALERTS_EVALUATOR,
      ...(e.GATESCOPE_EXTERNAL_URL ? { externalUrl: e.GATESCOPE_EXTERNAL_URL } : {}),
      allowPrivateNetwork: e.GATESCOPE_ALERTS_ALLOW_PRIVATE_NETWORK,
      deliveryAttempts: e.GATESCOPE_ALERTS_DELIVERY_ATTEMPTS,
      deliveryQueue: e.GATESCOPE_ALERTS_DELIVERY_QUEUE,
    },
    ledger: {
      staleAfterMs: e.GATESCOPE_STALE_AFTER,
      maxMetricNodes: e.GATESCOPE_LEDGER_MAX_METRIC_NODES,
    },
    health: {
      degradedErrorRate: e.GATESCOPE_HEALTH_DEGRADED_ERROR_RATE,
      failingErrorRate: e.GATESCOPE_HEALTH_FAILING_ERROR_RATE,
      degraded4xxRate: e.GATESCOPE_HEALTH_DEGRADED_4XX_RATE,
      failing4xxRate: e.GATESCOPE_HEALTH_FAILING_4XX_RATE,
      minRequests: e.GATESCOPE_HEALTH_MIN_REQUESTS,
      hysteresis: e.GATESCOPE_HEALTH_HYSTERESIS,
    },
  };
  return deepFreeze(config);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
