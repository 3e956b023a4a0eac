import type { ClickHouseClient } from '@clickhouse/client';
import { failSpan, startSpan, tracingEnabled, withActiveSpan } from '@gatescope/telemetry';
import type { Span } from '@gatescope/telemetry';

/**
 * A span for every ClickHouse call gatescope makes (`clickhouse.query`, `clickhouse.command`, `clickhouse.exec`,
 * `clickhouse.insert`, and `clickhouse.insert_native` for the collector's bulk path), with the statement, the role
 * it ran as and the rows it returned or wrote. Every client the storage handle hands out is wrapped here, so no
 * call site can forget it. Without tracing (`tracingEnabled()` false) the wrapper calls straight through.
 *
 * A query's span ends when its result has been read (`json()`, `text()`, or the end of `stream()`), so it covers
 * the transfer, and carries `db.response.returned_rows`; writes carry `gatescope.clickhouse.written_rows`.
 */
const TRACED = new Set(['query', 'command', 'exec', 'insert']);
const MAX_STATEMENT = 4096;

export interface TraceTarget {
  database: string;
  role: 'main' | 'reader' | 'sql';
  engine: 'embedded' | 'server';
}

export function spanAttributes(target: TraceTarget, statement: string | undefined) {
  const operation = /^\s*(?:\(\s*)*(\w+)/.exec(statement ?? '')?.[1]?.toUpperCase();
  return {
    'db.system.name': 'clickhouse',
    'db.namespace': target.database,
    ...(operation ? { 'db.operation.name': operation } : {}),
    ...(statement ? { 'db.query.text': statement.slice(0, MAX_STATEMENT) } : {}),
    'gatescope.clickhouse.role': target.role,
    'gatescope.clickhouse.engine': target.engine,
  };
}

/** Rows in a text result: the `rows` field of FORMAT JSON, else one per line. */
function rowsInText(text: string): number {
  const tail = /"rows":\s*(\d+)/.exec(text.slice(-512));
  if (tail) return Number(tail[1]);
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

function rowsInJson(value: unknown): number | undefined {
  if (Array.isArray(value)) return value.length;
  const r = value as { rows?: unknown; data?: unknown };
  if (typeof r?.rows === 'number') return r.rows;
  return Array.isArray(r?.data) ? r.data.length : undefined;
}

function writtenRows(result: unknown): number | undefined {
  const w = (result as { summary?: { written_rows?: string } })?.summary?.written_rows;
  return w === undefined ? undefined : Number(w);
}

type ResultSetLike = {
  json(): Promise<unknown>;
  text(): Promise<string>;
  stream(): NodeJS.ReadableStream;
};

/** End `span` once the result set is read, with the number of rows it held. */
function endWhenRead(rs: ResultSetLike, span: Span): ResultSetLike {
  let ended = false;
  const end = (rows?: number, err?: unknown) => {
    if (ended) return;
    ended = true;
    if (rows !== undefined) span.setAttribute('db.response.returned_rows', rows);
    if (err !== undefined) failSpan(span, err);
    span.end();
  };
  return new Proxy(rs, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (prop === 'json')
        return async () => {
          try {
            const value = await target.json();
            end(rowsInJson(value));
            return value;
          } catch (err) {
            end(undefined, err);
            throw err;
          }
        };
      if (prop === 'text')
        return async () => {
          try {
            const text = await target.text();
            end(rowsInText(text));
            return text;
          } catch (err) {
            end(undefined, err);
            throw err;
          }
        };
      if (prop === 'stream')
        return () => {
          const stream = target.stream();
          stream.once('end', () => end());
          stream.once('close', () => end());
          stream.once('error', (err: unknown) => end(undefined, err));
          return stream;
        };
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

export function tracedClient(client: ClickHouseClient, target: TraceTarget): ClickHouseClient {
  return new Proxy(client, {
    get(obj, prop, receiver) {
      const v = Reflect.get(obj, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      const fn = (v as (...a: unknown[]) => Promise<unknown>).bind(obj);
      if (typeof prop !== 'string' || !TRACED.has(prop)) return fn;
      return async (params: { query?: string; table?: string; values?: unknown }) => {
        if (!tracingEnabled()) return fn(params);
        const statement = prop === 'insert' ? `INSERT INTO ${params.table}` : params.query;
        const span = startSpan(`clickhouse.${prop}`, {
          kind: 'client',
          attributes: {
            ...spanAttributes(target, statement),
            ...(prop === 'insert' && params.table ? { 'db.collection.name': params.table } : {}),
          },
        });
        if (prop === 'insert' && Array.isArray(params.values))
          span.setAttribute('gatescope.clickhouse.written_rows', params.values.length);
        let result: unknown;
        try {
          result = await withActiveSpan(span, () => fn(params));
        } catch (err) {
          span.setAttribute('db.response.status_code', String((err as { code?: unknown }).code ?? ''));
          failSpan(span, err);
          span.end();
          throw err;
        }
        if (prop === 'query') return endWhenRead(result as ResultSetLike, span);
        const written = writtenRows(result);
        if (written !== undefined && prop !== 'insert')
          span.setAttribute('gatescope.clickhouse.written_rows', written);
        span.end();
        return result;
      };
    },
  });
}
