import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { ClickHouse } from '@gatescope/clickhouse';
import { checkSqlPlan } from '@gatescope/query';
import { ApiError, errorSchema } from './errors.js';

export interface SqlLimits {
  /** Seconds a query may run (ClickHouse max_execution_time). */
  maxExecutionTimeS: number;
  maxResultRows: number;
  maxMemoryBytes: number;
}
export const DEFAULT_SQL_LIMITS: SqlLimits = {
  maxExecutionTimeS: 30,
  maxResultRows: 100_000,
  maxMemoryBytes: 2 * 1024 ** 3,
};

/**
 * Limits go into the statement's own SETTINGS clause, never into session settings: the embedded engine keeps
 * one session for the whole process, and a session-level readonly=2 would stop every later insert.
 */
function withSettings(sql: string, settings: Record<string, string | number>): string {
  const clause = Object.entries(settings)
    .map(([k, v]) => `${k} = ${typeof v === 'number' ? v : `'${v.replace(/['\\]/g, '\\$&')}'`}`)
    .join(', ');
  return `${sql}\nSETTINGS ${clause}`;
}

/** The plan is read through a subquery so the output format applies to it, not to the explained query. */
const EXPLAIN_FORMAT = '';

interface ClickHouseError {
  code?: string;
  type?: string;
  message: string;
}

/** Translate a ClickHouse error caused by the user's query into an answer saying what to change. */
function sqlError(err: unknown): ApiError | unknown {
  const e = err as ClickHouseError;
  if (!e || typeof e.type !== 'string') return err;
  const msg = String(e.message).trim();
  switch (e.type) {
    case 'READONLY':
      return new ApiError(403, 'ERR_SQL_READONLY', `The SQL endpoint is read-only: ${msg}`);
    case 'TIMEOUT_EXCEEDED':
      return new ApiError(
        400,
        'ERR_SQL_TIMEOUT',
        `The query ran longer than allowed and was stopped: ${msg}. Narrow the time range or aggregate more`,
      );
    case 'TOO_MANY_ROWS_OR_BYTES':
    case 'TOO_MANY_ROWS':
      return new ApiError(
        400,
        'ERR_SQL_TOO_MANY_ROWS',
        `The result is too large: ${msg}. Add a LIMIT or aggregate`,
      );
    case 'MEMORY_LIMIT_EXCEEDED':
      return new ApiError(400, 'ERR_SQL_MEMORY', `The query needs more memory than allowed: ${msg}`);
    case 'BAD_ARGUMENTS':
      if (/output options/.test(msg)) {
        return new ApiError(
          403,
          'ERR_SQL_OUTPUT',
          'INTO OUTFILE and FORMAT clauses are not allowed: the API chooses the format (format=json or format=csv)',
        );
      }
      return new ApiError(400, 'ERR_SQL_INVALID', `ClickHouse rejected the query (${e.type}): ${msg}`);
    case 'ACCESS_DENIED':
      return new ApiError(403, 'ERR_SQL_FORBIDDEN', msg);
    default:
      return new ApiError(400, 'ERR_SQL_INVALID', `ClickHouse rejected the query (${e.type}): ${msg}`);
  }
}

export async function sqlRoutes(
  app: FastifyInstance,
  opts: { clickhouse: ClickHouse; limits: SqlLimits },
): Promise<void> {
  const { clickhouse: ch, limits } = opts;
  const settings = {
    readonly: 2,
    max_execution_time: limits.maxExecutionTimeS,
    timeout_overflow_mode: 'throw',
    max_result_rows: limits.maxResultRows,
    result_overflow_mode: 'throw',
    max_memory_usage: limits.maxMemoryBytes,
  };

  async function explain(kind: 'AST' | 'QUERY TREE', query: string, retried = false): Promise<string[]> {
    try {
      const rs = await ch.client.query({
        query: withSettings(`SELECT explain FROM (EXPLAIN ${kind} ${query}\n)`, {
          readonly: 2,
          max_execution_time: limits.maxExecutionTimeS,
        }),
        format: 'JSONEachRow',
      });
      return (await rs.json<{ explain: string }>()).map((r) => r.explain);
    } catch (err) {
      // The embedded engine can hand the remains of a query stopped by max_execution_time to the next one:
      // an unparsable answer is retried once (EXPLAIN has no side effects).
      if (err instanceof SyntaxError && !retried) return explain(kind, query, true);
      throw sqlError(err);
    }
  }

  app.post(
    '/api/v1/sql',
    {
      config: { access: 'admin' },
      schema: {
        summary: `Ad-hoc read-only SQL over the ${ch.database} database`,
        description:
          'Answered like ClickHouse FORMAT JSON ({meta, data, rows, statistics}); format=csv streams CSV with a header. ' +
          'Read-only (readonly=2), no SETTINGS/FORMAT/INTO OUTFILE, only the gatescope database, no table functions that read files, ' +
          `the network or other databases; at most ${limits.maxExecutionTimeS} s, ${limits.maxResultRows} rows, ${limits.maxMemoryBytes} bytes of memory.`,
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
              rows_before_limit_at_least: { type: 'integer' },
              statistics: {
                type: 'object',
                properties: {
                  elapsed: { type: 'number' },
                  rows_read: { type: 'integer' },
                  bytes_read: { type: 'integer' },
                },
              },
            },
          },
          400: errorSchema,
          401: errorSchema,
          403: errorSchema,
          429: errorSchema,
        },
      },
    },
    async (req, reply) => {
      const body = req.body as { query: string; format?: 'json' | 'csv' };
      const format = (req.query as { format?: 'json' | 'csv' }).format ?? body.format ?? 'json';
      const query = body.query.trim().replace(/;+\s*$/, '');
      if (!query) throw new ApiError(400, 'ERR_SQL_INVALID', 'query is empty: send {"query": "SELECT …"}');
      const firstWord = /^(?:\s|--[^\n]*\n|\/\*[\s\S]*?\*\/)*([A-Za-z]+|\()/.exec(query)?.[1]?.toUpperCase();
      if (firstWord !== 'SELECT' && firstWord !== 'WITH' && firstWord !== '(') {
        throw new ApiError(
          400,
          'ERR_SQL_NOT_SELECT',
          `Only SELECT queries are allowed (this one starts with ${firstWord ?? 'nothing'}): the SQL endpoint is read-only`,
        );
      }
      // ClickHouse parses the query; refuse on the AST before analysing it (analysis may evaluate scalar subqueries).
      const ast = await explain('AST', query);
      let violations = checkSqlPlan({ ast, tree: [], database: ch.database, explainFormat: EXPLAIN_FORMAT });
      if (violations.length === 0) {
        const tree = await explain('QUERY TREE', query);
        violations = checkSqlPlan({ ast, tree, database: ch.database, explainFormat: EXPLAIN_FORMAT });
      }
      if (violations.length > 0) {
        const status = violations[0].code === 'ERR_SQL_NOT_SELECT' ? 400 : 403;
        throw new ApiError(status, violations[0].code, violations.map((v) => v.message).join('. '));
      }
      req.log.info({ sql: query.slice(0, 2000) }, 'ad-hoc sql');
      if (format === 'csv') {
        let rs;
        try {
          rs = await ch.client.query({ query: withSettings(query, settings), format: 'CSVWithNames' });
        } catch (err) {
          throw sqlError(err);
        }
        const stream = rs.stream();
        const body = Readable.from(
          (async function* () {
            for await (const batch of stream)
              for (const row of batch as { text: string }[]) yield row.text + '\n';
          })(),
        );
        return reply
          .type('text/csv; charset=utf-8')
          .header('content-disposition', 'inline; filename="gatescope.csv"')
          .send(body);
      }
      try {
        const rs = await ch.client.query({ query: withSettings(query, settings), format: 'JSON' });
        return await rs.json();
      } catch (err) {
        throw sqlError(err);
      }
    },
  );
}
