import type { ClickHouseClient } from '@clickhouse/client';

/**
 * Reading a query's answer so that it can only be that query's answer. chdb (3.4, ClickHouse 26.7) hands the
 * unread output of a query stopped by a limit to the next query on the same connection: 26 MB of a timed-out
 * query's rows arrived ahead of the next `SELECT 'x'` (see clickhouse.test.ts). Every read gatescope makes on a
 * connection where a limit can stop a query is therefore framed:
 * - `readJson`: FORMAT JSON, parsed as one whole document (`{meta, data, rows}`). Leftovers in front of it make
 *   the text unparsable; the query is then run once more (the leftovers are gone with the failed read) and a
 *   second failure is an error, never someone else's rows.
 * - ad-hoc SQL: a per-request nonce around the result (@gatescope/query `resultFraming`).
 */
export interface JsonResult<T> {
  meta: { name: string; type: string }[];
  data: T[];
  rows: number;
  statistics?: { elapsed: number; rows_read: number; bytes_read: number };
}

export class ForeignResultError extends Error {
  readonly code = 'ERR_ENGINE_FOREIGN_RESULT';
  constructor() {
    super(
      'The engine returned output that is not this query’s (left over from a stopped query); it was discarded',
    );
    this.name = 'ForeignResultError';
  }
}

/** Counts of discarded foreign output, for /metrics. */
export const foreignResults = { discarded: 0 };

function isJsonResult(v: unknown): v is JsonResult<unknown> {
  const r = v as JsonResult<unknown>;
  return (
    !!r &&
    typeof r === 'object' &&
    Array.isArray(r.meta) &&
    Array.isArray(r.data) &&
    typeof r.rows === 'number' &&
    r.rows === r.data.length
  );
}

export async function readJson<T>(
  client: ClickHouseClient,
  q: { query: string; params?: Record<string, unknown> },
): Promise<JsonResult<T>> {
  for (let attempt = 0; ; attempt++) {
    const rs = await client.query({ query: q.query, query_params: q.params, format: 'JSON' });
    const text = await rs.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (isJsonResult(parsed)) return parsed as JsonResult<T>;
    foreignResults.discarded++;
    if (attempt >= 1) throw new ForeignResultError();
  }
}
