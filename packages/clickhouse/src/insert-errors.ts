/**
 * Why an insert failed, and whether trying the same bytes again can ever succeed. The collector retries
 * transient failures with backoff (the batch stays in the write-ahead log) and splits a batch ClickHouse refuses
 * for good, so its good rows land and only the refused ones are dead-lettered.
 *
 * Permanent means: the data itself is refused, the same bytes fail the same way every time. Everything else is
 * transient, including failures we do not recognise: retrying a batch that can never land stalls one table until
 * an operator looks (the write-ahead log fills, then streams pause), while dead-lettering a batch that would have
 * landed a minute later loses nothing either but costs a manual replay. A wrong schema (unknown table or column,
 * missing grants) is deliberately transient: every batch would fail alike, and the fix is a migration, after
 * which the waiting batches land by themselves.
 */

/** ClickHouse error codes (src/Common/ErrorCodes.cpp) that mean "these rows are refused". */
const REFUSED_DATA: Record<number, string> = {
  6: 'CANNOT_PARSE_TEXT',
  25: 'CANNOT_PARSE_ESCAPE_SEQUENCE',
  26: 'CANNOT_PARSE_QUOTED_STRING',
  27: 'CANNOT_PARSE_INPUT_ASSERTION_FAILED',
  32: 'ATTEMPT_TO_READ_AFTER_EOF',
  33: 'CANNOT_READ_ALL_DATA',
  38: 'CANNOT_PARSE_DATE',
  41: 'CANNOT_PARSE_DATETIME',
  53: 'TYPE_MISMATCH',
  69: 'ARGUMENT_OUT_OF_BOUND',
  70: 'CANNOT_CONVERT_TYPE',
  72: 'CANNOT_PARSE_NUMBER',
  117: 'INCORRECT_DATA',
  128: 'TOO_LARGE_ARRAY_SIZE',
  131: 'TOO_LARGE_STRING_SIZE',
  190: 'SIZES_OF_ARRAYS_DONT_MATCH',
  321: 'VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE',
  395: 'FUNCTION_THROW_IF_VALUE_IS_NON_ZERO',
  407: 'DECIMAL_OVERFLOW',
  469: 'VIOLATED_CONSTRAINT',
};

/**
 * TOO_MANY_PARTS (252) means two things: an insert that touches more partitions than
 * `max_partitions_per_insert_block` (the rows' fault: permanent) and a table whose merges are behind (back off:
 * transient). Only the message tells them apart.
 */
const TOO_MANY_PARTS = 252;
const TOO_MANY_PARTITIONS_TEXT = /too many partitions for single insert block/i;

export interface InsertFailure {
  /** Trying the same bytes again may succeed (retry with backoff); false: the rows are refused (split, dead-letter). */
  transient: boolean;
  /** ClickHouse's error code and name, when ClickHouse answered with one. */
  code?: number;
  name?: string;
  message: string;
}

export function classifyInsertError(err: unknown): InsertFailure {
  const e = err as { code?: unknown; type?: unknown; message?: unknown } | undefined;
  const message = String(e?.message ?? err);
  // @clickhouse/client's ClickHouseError (server answers, and chdb/connection's mapped engine errors) carries the
  // code as a numeric string and the name as `type`; network and timeout errors carry Node's codes (ECONNRESET).
  const code = typeof e?.code === 'string' && /^\d+$/.test(e.code) ? Number(e.code) : undefined;
  const name = typeof e?.type === 'string' ? e.type : code !== undefined ? REFUSED_DATA[code] : undefined;
  if (code === undefined) return { transient: true, message };
  const refused = code in REFUSED_DATA || (code === TOO_MANY_PARTS && TOO_MANY_PARTITIONS_TEXT.test(message));
  return { transient: !refused, code, ...(name && { name }), message };
}
