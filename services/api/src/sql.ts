import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Principal } from '@gatescope/auth';
import { quoteString, readJson, settingsClause, type ClickHouse } from '@gatescope/clickhouse';
import type { Config } from '@gatescope/config';
import {
  AdmissionGate,
  AdmissionRefused,
  checkAst,
  explainStatement,
  notSelect,
  FramedResultReader,
  framing,
  parseAst,
  PARSE_STATEMENT,
  RESTRICTION_COLUMNS,
  restrictionPredicate,
  RESULT_FORMAT,
  rowsAsJsonPieces,
  runSettings,
  SqlResultError,
  syntaxViolation,
  toCsv,
  type Restriction,
  type SqlCheckContext,
  type SqlViolation,
} from '@gatescope/query';
import { ApiError, errorSchema } from './errors.js';

/**
 * `POST /api/v1/sql`: the service side of the SQL sandbox (rules in @gatescope/query's sql-guard and sql-run).
 * Order of work for one request: admission (one running, a short queue, then 429), parse through a bound
 * parameter, EXPLAIN AST of the normalised statement, the checks, then the run: the normalised statement with
 * gatescope's SETTINGS, streamed and framed, cut at the caps. Every refusal is logged for audit (who, what, why).
 */
export type SqlConfig = Config['sql'];

interface EngineError {
  code?: string;
  type?: string;
  message?: string;
}

/** What a ClickHouse message may say in an answer: its reason, never the statement or settings that carried it. */
export function engineReason(message: string): string {
  let m = message
    .replace(/^Code: \d+\.\s*/, '')
    .replace(/^DB::Exception:\s*/, '')
    .replace(/^[A-Za-z_][A-Za-z0-9_]*: (?=[A-Z])/, '');
  m = m.split(/:? [Ii]n scope |\. Stack trace|\(version \d/)[0];
  m = m.replace(/\s*\([A-Z_]+\)\s*$/, '').trim();
  if (/additional_table_filters|gatescope-result|format_custom_|SETTINGS /.test(m)) {
    return 'the statement failed inside the engine';
  }
  return m.length > 500 ? `${m.slice(0, 500)}…` : m;
}

function engineError(err: unknown, limits: SqlConfig['limits']): ApiError | undefined {
  const e = err as EngineError;
  if (err instanceof SqlResultError) {
    return new ApiError(
      503,
      'ERR_ENGINE_FOREIGN_RESULT',
      `The engine's answer could not be read as this query's (${err.message}); nothing was returned. Retry`,
    );
  }
  if (!e || typeof e.type !== 'string') return undefined;
  const reason = engineReason(String(e.message ?? ''));
  if (/cannot have output options/.test(String(e.message))) {
    return new ApiError(
      403,
      'ERR_SQL_OUTPUT',
      'INTO OUTFILE and FORMAT clauses are not allowed: the API chooses the format (format=json or format=csv)',
    );
  }
  switch (e.type) {
    case 'TIMEOUT_EXCEEDED':
      return new ApiError(
        400,
        'ERR_SQL_TIMEOUT',
        `The query ran longer than allowed (${limits.maxExecutionTimeS} s) and was stopped. Narrow the time range (WHERE start_time >= now() - INTERVAL 1 HOUR), read a rollup table, or aggregate more`,
      );
    case 'MEMORY_LIMIT_EXCEEDED':
      return /\(total\)/.test(String(e.message))
        ? new ApiError(503, 'ERR_ENGINE_BUSY', 'The engine is short of memory right now; retry shortly')
        : new ApiError(
            400,
            'ERR_SQL_MEMORY',
            `The query needs more memory than allowed (${limits.maxMemoryBytes} bytes). Aggregate with fewer groups, filter more, or use a LIMIT`,
          );
    case 'TOO_MANY_ROWS_OR_BYTES':
    case 'TOO_MANY_ROWS':
    case 'TOO_MANY_BYTES':
      return new ApiError(
        400,
        'ERR_SQL_TOO_LARGE',
        `The result is far larger than the ${limits.maxResultRows} rows / ${limits.maxResultBytes} bytes returned at most: add a LIMIT or aggregate`,
      );
    case 'READONLY':
      return new ApiError(
        403,
        'ERR_SQL_READONLY',
        'The SQL endpoint is read-only: this query would write or change settings',
      );
    case 'ACCESS_DENIED':
      return new ApiError(403, 'ERR_SQL_FORBIDDEN', `ClickHouse refused access: ${reason}`);
    case 'QUOTA_EXCEEDED':
    case 'QUOTA_EXPIRED':
      return new ApiError(429, 'ERR_SQL_QUOTA', `The SQL quota is used up: ${reason}`);
    default:
      return new ApiError(400, 'ERR_SQL_INVALID', `ClickHouse rejected the query: ${reason}`);
  }
}

/** The client hung up while its statement waited or ran: nothing to answer, nothing to log as a failure. */
const clientLeft = () =>
  new ApiError(499, 'ERR_CLIENT_CLOSED', 'The client closed the request; its statement was stopped');

/** Result text handled between two turns of the event loop. */
const READ_SLICE = 256 * 1024;

const VIOLATION_STATUS: Record<SqlViolation['code'], number> = {
  ERR_SQL_SYNTAX: 400,
  ERR_SQL_MULTI_STATEMENT: 400,
  ERR_SQL_NOT_SELECT: 400,
  ERR_SQL_UNSUPPORTED: 400,
  ERR_SQL_SETTINGS: 403,
  ERR_SQL_OUTPUT: 403,
  ERR_SQL_DATABASE: 403,
  ERR_SQL_FUNCTION: 403,
  ERR_SQL_RESTRICTED: 403,
};

/** Tables of the database, the databases beside it: what the checks compare names with (cached a minute). */
interface Catalogue {
  otherDatabases: string[];
  tables: { name: string; engine: string; columns: Set<string> }[];
  at: number;
}

export async function sqlRoutes(
  app: FastifyInstance,
  opts: { clickhouse: ClickHouse; sql: SqlConfig; registry: Registry },
): Promise<void> {
  const { clickhouse: ch, sql: cfg } = opts;
  const limits = cfg.limits;
  const db = ch.database;
  const gate = new AdmissionGate(cfg.concurrency, cfg.queue);

  const outcomes =
    (opts.registry.getSingleMetric('gatescope_sql_queries_total') as Counter<'outcome'> | undefined) ??
    new Counter({
      name: 'gatescope_sql_queries_total',
      help: 'Ad-hoc SQL requests by outcome: ok, truncated, refused (checks), error (engine), busy (429)',
      labelNames: ['outcome'] as const,
      registers: [opts.registry],
    });
  if (!opts.registry.getSingleMetric('gatescope_sql_running')) {
    new Gauge({
      name: 'gatescope_sql_running',
      help: 'Ad-hoc SQL statements running now',
      registers: [opts.registry],
      collect() {
        this.set(gate.running);
      },
    });
    new Gauge({
      name: 'gatescope_sql_queued',
      help: 'Ad-hoc SQL requests waiting for a slot',
      registers: [opts.registry],
      collect() {
        this.set(gate.queued);
      },
    });
  }
  const foreign =
    (opts.registry.getSingleMetric('gatescope_sql_foreign_result_bytes_total') as Counter | undefined) ??
    new Counter({
      name: 'gatescope_sql_foreign_result_bytes_total',
      help: 'Bytes of a stopped query’s output the engine handed to a later ad-hoc query, dropped by the framing',
      registers: [opts.registry],
    });

  let catalogue: Catalogue | undefined;
  async function readCatalogue(): Promise<Catalogue> {
    if (catalogue && Date.now() - catalogue.at < 60_000) return catalogue;
    const [dbs, cols] = await Promise.all([
      readJson<{ name: string }>(ch.client, { query: 'SELECT name FROM system.databases' }),
      readJson<{ table: string; engine: string; columns: string[] }>(ch.client, {
        query:
          'SELECT t.name AS table, t.engine AS engine, groupArray(c.name) AS columns FROM system.tables AS t ' +
          'LEFT JOIN system.columns AS c ON c.database = t.database AND c.table = t.name ' +
          'WHERE t.database = {db:String} GROUP BY t.name, t.engine',
        params: { db },
      }),
    ]);
    catalogue = {
      otherDatabases: dbs.data.map((d) => d.name).filter((n) => n !== db),
      tables: cols.data.map((t) => ({ name: t.table, engine: t.engine, columns: new Set(t.columns) })),
      at: Date.now(),
    };
    return catalogue;
  }

  /** For a restricted token: which tables it may read, and the engine-side filter on every table of the database. */
  function restrictionPlan(r: Restriction, cat: Catalogue) {
    const needed = [
      ...(r.authorities ? ['authority'] : []),
      ...(r.gateways ? ['node_id', 'node_cluster'] : []),
    ] as (typeof RESTRICTION_COLUMNS)[number][];
    const predicate = restrictionPredicate(r, quoteString);
    const readable = new Set<string>();
    const unreadable = new Set<string>();
    const filters: Record<string, string> = {};
    for (const t of cat.tables) {
      // Only tables that hold the rows themselves; views and materialized views read other tables.
      const ok = /MergeTree$/.test(t.engine) && needed.every((c) => t.columns.has(c));
      (ok ? readable : unreadable).add(t.name);
      filters[`${db}.${t.name}`] = ok ? predicate : '0';
    }
    const text = [
      r.authorities ? `authorities ${r.authorities.join(', ')}` : '',
      r.gateways ? `gateways ${r.gateways.join(', ')}` : '',
    ]
      .filter(Boolean)
      .join(' and ');
    return { readable, unreadable, filters, text };
  }

  function refuse(
    req: FastifyRequest,
    query: string,
    status: number,
    code: string,
    message: string,
    outcome = 'refused',
  ): never {
    outcomes.inc({ outcome });
    const who = req.auth as Principal | undefined;
    req.log.warn(
      {
        audit: 'sql_refused',
        principal: who?.principal,
        restricted: !!who?.restriction,
        code,
        reason: message,
        sql: query.slice(0, 4000),
      },
      'ad-hoc SQL refused',
    );
    throw new ApiError(status, code, message);
  }

  app.post(
    '/api/v1/sql',
    {
      config: { access: 'admin' },
      schema: {
        summary: `Ad-hoc read-only SQL over the ${db} database`,
        description:
          'One SELECT (or WITH … SELECT / UNION / INTERSECT / EXCEPT), answered like ClickHouse FORMAT JSON ({meta, data, rows}) ' +
          'plus "truncated" when a cap cut it; format=csv answers CSV with a header (header x-gatescope-truncated when cut). ' +
          `No SETTINGS, FORMAT or INTO OUTFILE; only the ${db} database; table functions only generators (numbers, zeros, values, generate_series, generateRandom, null, primes). ` +
          `At most ${limits.maxExecutionTimeS} s, ${limits.maxMemoryBytes} bytes of memory, ${limits.maxThreads} thread(s), ` +
          `${limits.maxResultRows} rows and ${limits.maxResultBytes} bytes of result; ${cfg.concurrency} at a time with ${cfg.queue} waiting, then 429. ` +
          'A token restricted to some authorities/gateways reads only their rows, and only tables that can be filtered.',
        tags: ['sql'],
        querystring: { type: 'object', properties: { format: { type: 'string', enum: ['json', 'csv'] } } },
        body: {
          type: 'object',
          properties: {
            query: { type: 'string', minLength: 1, maxLength: 100_000 },
            format: { type: 'string', enum: ['json', 'csv'] },
          },
          required: ['query'],
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: {
              meta: {
                type: 'array',
                items: { type: 'object', properties: { name: { type: 'string' }, type: { type: 'string' } } },
              },
              data: { type: 'array', items: { type: 'object', additionalProperties: true } },
              rows: { type: 'integer' },
              truncated: { type: 'boolean' },
              truncated_by: { type: 'string', enum: ['rows', 'bytes'] },
              message: { type: 'string' },
              statistics: { type: 'object', properties: { elapsed: { type: 'number' } } },
            },
          },
          400: errorSchema,
          401: errorSchema,
          403: errorSchema,
          429: errorSchema,
          503: errorSchema,
        },
      },
    },
    async (req, reply) => {
      const body = req.body as { query: string; format?: 'json' | 'csv' };
      const format = (req.query as { format?: 'json' | 'csv' }).format ?? body.format ?? 'json';
      const text = body.query;
      if (!text.trim())
        refuse(req, text, 400, 'ERR_SQL_INVALID', 'query is empty: send {"query": "SELECT …"}');
      const principal = req.auth as Principal | undefined;
      const aborted = new AbortController();
      // The response closing before it was finished means the client left: stop waiting, stop the query.
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) aborted.abort();
      });

      let release: () => void;
      try {
        release = await gate.enter(aborted.signal);
      } catch (err) {
        if (err instanceof AdmissionRefused) {
          void reply.header('retry-after', String(Math.ceil(limits.maxExecutionTimeS)));
          refuse(
            req,
            text,
            429,
            'ERR_SQL_BUSY',
            `${err.running} ad-hoc SQL quer${err.running === 1 ? 'y is' : 'ies are'} running and ${err.queued} waiting (GATESCOPE_SQL_CONCURRENCY, GATESCOPE_SQL_QUEUE): retry in a few seconds`,
            'busy',
          );
        }
        if (aborted.signal.aborted) throw clientLeft();
        throw err;
      }
      const started = performance.now();
      try {
        // 1. ClickHouse's parser, the user's text as a bound parameter: one statement or a syntax error.
        let statement: string;
        try {
          const parsed = await readJson<{ statement: string }>(ch.sql, {
            query: PARSE_STATEMENT,
            params: { q: text },
          });
          statement = parsed.data[0]?.statement ?? '';
        } catch (err) {
          const e = err as EngineError;
          if (e.type === 'SYNTAX_ERROR') {
            const v = syntaxViolation(String(e.message), text);
            refuse(req, text, 400, v.code, v.message);
          }
          if (typeof e.type === 'string') {
            refuse(
              req,
              text,
              400,
              'ERR_SQL_SYNTAX',
              `The query could not be parsed: ${engineReason(String(e.message))}`,
            );
          }
          throw err;
        }
        // 2. The tree of the normalised statement, 3. the checks.
        const kind = notSelect(statement);
        if (kind) refuse(req, text, 400, kind.code, kind.message);
        let explained;
        try {
          explained = await readJson<{ explain: string }>(ch.sql, { query: explainStatement(statement) });
        } catch (err) {
          const mapped = engineError(err, limits);
          if (mapped) refuse(req, text, mapped.statusCode, mapped.code, mapped.message);
          throw err;
        }
        const cat = await readCatalogue();
        const plan = principal?.restriction ? restrictionPlan(principal.restriction, cat) : undefined;
        const ctx: SqlCheckContext = {
          database: db,
          otherDatabases: cat.otherDatabases,
          readableTables: plan?.readable,
          unreadableTables: plan?.unreadable,
          restrictionText: plan?.text,
        };
        const violations = checkAst(parseAst(explained.data.map((r) => r.explain)), ctx);
        if (violations.length > 0) {
          refuse(
            req,
            text,
            VIOLATION_STATUS[violations[0].code],
            violations[0].code,
            violations.map((v) => v.message).join('. '),
          );
        }
        // 4. Run it: gatescope's settings last, the result framed by a nonce and cut at the caps while reading.
        const frame = framing(randomUUID());
        const run =
          statement + settingsClause(runSettings({ limits, framing: frame, tableFilters: plan?.filters }));
        const reader = new FramedResultReader(frame, {
          rows: limits.maxResultRows,
          bytes: limits.maxResultBytes,
        });
        try {
          // In slices, giving the event loop back in between: in the all-in-one it also runs the collector.
          reading: for await (const chunk of ch.streamText(run, {
            format: RESULT_FORMAT,
            signal: aborted.signal,
          })) {
            for (let at = 0; at < chunk.length; at += READ_SLICE) {
              if (!reader.push(chunk.slice(at, at + READ_SLICE))) break reading;
              await new Promise((r) => setImmediate(r));
            }
          }
          const result = reader.result();
          if (result.foreignBytes > 0) {
            foreign.inc(result.foreignBytes);
            req.log.warn(
              { bytes: result.foreignBytes },
              'dropped output of an earlier stopped query ahead of this result',
            );
          }
          const elapsed = (performance.now() - started) / 1000;
          outcomes.inc({ outcome: result.truncated ? 'truncated' : 'ok' });
          req.log.info(
            {
              principal: principal?.principal,
              sql: text.slice(0, 2000),
              rows: result.rows.length,
              truncated: result.truncated,
              elapsed,
            },
            'ad-hoc sql',
          );
          const message = result.truncated
            ? `The result was cut at ${result.truncated === 'rows' ? `${limits.maxResultRows} rows` : `${limits.maxResultBytes} bytes`} (GATESCOPE_SQL_MAX_RESULT_${result.truncated === 'rows' ? 'ROWS' : 'BYTES'}): add a LIMIT or aggregate`
            : undefined;
          if (result.truncated) void reply.header('x-gatescope-truncated', result.truncated);
          if (format === 'csv') {
            return reply
              .type('text/csv; charset=utf-8')
              .header('content-disposition', 'inline; filename="gatescope.csv"')
              .send(toCsv(result));
          }
          // Sent as text in pieces: the fields already are JSON (rowsAsJsonPieces), nothing is parsed or
          // re-serialised, and the event loop (the collector's too, in the all-in-one) gets turns in between.
          const head = JSON.stringify({
            meta: result.meta,
            rows: result.rows.length,
            truncated: !!result.truncated,
            ...(result.truncated ? { truncated_by: result.truncated, message } : {}),
            statistics: { elapsed },
          });
          const body = Readable.from(
            (async function* () {
              yield '{"data":';
              for (const piece of rowsAsJsonPieces(result)) {
                yield piece;
                await new Promise((r) => setImmediate(r));
              }
              yield `,${head.slice(1)}`;
            })(),
          );
          return reply.type('application/json; charset=utf-8').send(body);
        } catch (err) {
          if (aborted.signal.aborted) throw clientLeft();
          const mapped = engineError(err, limits);
          if (!mapped) throw err;
          outcomes.inc({ outcome: 'error' });
          req.log.warn(
            {
              audit: 'sql_failed',
              principal: principal?.principal,
              code: mapped.code,
              reason: String((err as Error).message).slice(0, 1000),
              sql: text.slice(0, 4000),
            },
            'ad-hoc SQL failed in the engine',
          );
          throw mapped;
        }
      } finally {
        release();
      }
    },
  );
}
