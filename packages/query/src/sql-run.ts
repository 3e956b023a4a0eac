/**
 * Running an admitted ad-hoc statement: the settings it runs with, the framing of its result, reading that
 * result up to the caps, and the admission queue in front of the engine.
 *
 * Settings (`runSettings`) go in the statement's own SETTINGS clause, built here from configuration only:
 * limits first, `readonly = 1` last (a later entry of the same list wins, and nothing the user wrote can be in
 * it: SETTINGS clauses are refused). Session settings are never used: on the embedded engine they would outlive
 * the query.
 *
 * Framing: chdb hands a stopped query's unread output to the next query on the same connection. The result is
 * therefore read as CustomSeparatedWithNamesAndTypes between two lines carrying a random per-request nonce;
 * anything before the opening line is someone else's output and is dropped (and counted), a result without
 * both lines is refused. Fields use JSON escaping, so a field never holds a raw tab or newline.
 */
export interface SqlRunLimits {
  maxExecutionTimeS: number;
  maxMemoryBytes: number;
  maxThreads: number;
  /** Rows returned at most; more are cut and the answer says so. */
  maxResultRows: number;
  /** Bytes of result text returned at most; more are cut and the answer says so. */
  maxResultBytes: number;
}

export const RESULT_FORMAT = 'CustomSeparatedWithNamesAndTypes';
/**
 * The engine's own result caps stop a runaway result inside the engine; the reader's caps (exact, and the answer
 * says it cut) must come first. In `break` mode the engine silently drops the block that crosses its cap (a
 * 200k-row result came back as 65,409 rows and no sign of it), so it throws instead, and only well past the
 * reader's caps: a streamed query runs a few blocks ahead of its reader (with the cap at reader + 131k rows the
 * engine threw before the reader had its second block; at + 1 M it did not, with a 256 KiB text cap and 16x
 * the bytes it did), and the engine counts in-memory bytes, not text. They are backstops: max_memory_usage bounds
 * the query's memory whatever they are.
 */
export const ENGINE_RESULT_BYTES_FACTOR = 16;
export const ENGINE_RESULT_BYTES_MARGIN = 1024 ** 3;
export const ENGINE_RESULT_ROWS_MARGIN = 10_000_000;

/** What the engine itself enforces for these caps (also the maxima of the server's SQL profile). */
export function engineSqlLimits(l: SqlRunLimits): SqlRunLimits {
  return {
    ...l,
    maxResultRows: l.maxResultRows + ENGINE_RESULT_ROWS_MARGIN,
    maxResultBytes: l.maxResultBytes * ENGINE_RESULT_BYTES_FACTOR + ENGINE_RESULT_BYTES_MARGIN,
  };
}

export interface Framing {
  begin: string;
  end: string;
}
export function framing(nonce: string): Framing {
  if (!/^[A-Za-z0-9-]{16,64}$/.test(nonce)) throw new Error('nonce must be 16-64 letters, digits or -');
  return { begin: `<gatescope-result ${nonce}>`, end: `</gatescope-result ${nonce}>` };
}

export function runSettings(o: {
  limits: SqlRunLimits;
  framing: Framing;
  /** `additional_table_filters` for a restricted token: `db.table` -> predicate. */
  tableFilters?: Readonly<Record<string, string>>;
}): Record<string, number | string | Readonly<Record<string, string>>> {
  const l = engineSqlLimits(o.limits);
  return {
    max_execution_time: l.maxExecutionTimeS,
    timeout_overflow_mode: 'throw',
    max_memory_usage: l.maxMemoryBytes,
    max_threads: l.maxThreads,
    max_result_rows: l.maxResultRows,
    max_result_bytes: l.maxResultBytes,
    result_overflow_mode: 'throw',
    format_custom_escaping_rule: 'JSON',
    format_custom_field_delimiter: '\t',
    format_custom_row_before_delimiter: '',
    format_custom_row_after_delimiter: '\n',
    format_custom_row_between_delimiter: '',
    format_custom_result_before_delimiter: `${o.framing.begin}\n`,
    format_custom_result_after_delimiter: `${o.framing.end}\n`,
    ...(o.tableFilters && Object.keys(o.tableFilters).length
      ? { additional_table_filters: o.tableFilters }
      : {}),
    readonly: 1,
  };
}

export interface SqlResult {
  meta: { name: string; type: string }[];
  /** Rows as arrays of fields in `meta` order, each field as ClickHouse wrote it: a JSON value's text. */
  rows: string[][];
  /** Set when a cap cut the result: which one. */
  truncated?: 'rows' | 'bytes';
  /** Bytes of another query's output found in front of this result and dropped. */
  foreignBytes: number;
}

export class SqlResultError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SqlResultError';
  }
}

function field(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Incremental reader for one framed result. `push` each chunk as it arrives; it returns false once the reader
 * needs no more (a cap was reached: stop reading, which cancels the query). The embedded engine frames each
 * streamed chunk on its own (opening line, names, types, rows, closing line), a server frames the whole
 * result once: both are read the same way, and every frame's names and types must equal the first frame's.
 */
export class FramedResultReader {
  private phase: 'preamble' | 'names' | 'types' | 'rows' | 'between' | 'capped' = 'preamble';
  private buffer = '';
  private meta: { name: string; type: string }[] | undefined;
  private names: string[] = [];
  private rows: string[][] = [];
  private bytes = 0;
  private truncated?: 'rows' | 'bytes';
  private foreignBytes = 0;

  constructor(
    private readonly frame: Framing,
    private readonly caps: { rows: number; bytes: number },
  ) {}

  private capped(): boolean {
    return this.phase === 'capped';
  }

  push(chunk: string): boolean {
    if (this.capped()) return false;
    this.buffer += chunk;
    let start = 0;
    let nl: number;
    while (!this.capped() && (nl = this.buffer.indexOf('\n', start)) >= 0) {
      this.line(this.buffer.slice(start, nl));
      start = nl + 1;
    }
    this.buffer = this.buffer.slice(start);
    if (this.phase === 'preamble' && this.buffer.length > this.frame.begin.length) {
      // A long foreign line without a newline yet: keep only what could still start our opening line.
      const keep = this.frame.begin.length;
      this.foreignBytes += Buffer.byteLength(this.buffer.slice(0, -keep));
      this.buffer = this.buffer.slice(-keep);
    }
    return !this.capped();
  }

  private line(line: string): void {
    switch (this.phase) {
      case 'preamble':
        if (line === this.frame.begin) this.phase = 'names';
        else this.foreignBytes += Buffer.byteLength(line) + 1;
        return;
      case 'between':
        if (line !== this.frame.begin) throw new SqlResultError('unexpected output between result frames');
        this.phase = 'names';
        return;
      case 'names':
        this.names = line.split('\t').map((f) => String(field(f)));
        this.phase = 'types';
        return;
      case 'types': {
        const types = line.split('\t').map((f) => String(field(f)));
        if (types.length !== this.names.length) throw new SqlResultError('result header is malformed');
        const meta = this.names.map((name, i) => ({ name, type: types[i] }));
        if (this.meta && JSON.stringify(meta) !== JSON.stringify(this.meta)) {
          throw new SqlResultError('a result frame has other columns than the first');
        }
        this.meta = meta;
        this.phase = 'rows';
        return;
      }
      case 'rows': {
        if (line === this.frame.end) {
          this.phase = 'between';
          return;
        }
        const fields = line.split('\t');
        if (fields.length !== this.meta!.length) throw new SqlResultError('result row is malformed');
        const size = Buffer.byteLength(line) + 1;
        if (this.rows.length >= this.caps.rows) {
          this.truncated = 'rows';
          this.phase = 'capped';
          return;
        }
        if (this.bytes + size > this.caps.bytes) {
          this.truncated = 'bytes';
          this.phase = 'capped';
          return;
        }
        this.bytes += size;
        this.rows.push(fields);
        return;
      }
    }
  }

  /** The result, once `push` returned false or the input ended. Throws when the framing is incomplete. */
  result(): SqlResult {
    if ((this.phase !== 'between' && this.phase !== 'capped') || (this.phase === 'between' && this.buffer)) {
      throw new SqlResultError(
        this.phase === 'preamble' ? 'the engine returned no result for this query' : 'the result ended early',
      );
    }
    return {
      meta: this.meta ?? [],
      rows: this.rows,
      truncated: this.truncated,
      foreignBytes: this.foreignBytes,
    };
  }
}

/** Rows as objects, like ClickHouse's FORMAT JSON `data` (fields parsed). */
export function rowsAsObjects(r: SqlResult): Record<string, unknown>[] {
  return r.rows.map((row) => Object.fromEntries(r.meta.map((m, i) => [m.name, field(row[i])])));
}

/**
 * `JSON.stringify(rowsAsObjects(r))` in pieces of `rowsPerPiece` rows, without parsing a field: each one already
 * is JSON text (JSON escaping). The caller sends the pieces as they come and can give the event loop back between
 * them: a 95k-row x 40-column answer is 150 MB of JSON.
 */
export function* rowsAsJsonPieces(r: SqlResult, rowsPerPiece = 2000): Generator<string> {
  const keys = r.meta.map((m) => JSON.stringify(m.name) + ':');
  yield '[';
  for (let start = 0; start < r.rows.length; start += rowsPerPiece) {
    let piece = '';
    for (let j = start; j < Math.min(r.rows.length, start + rowsPerPiece); j++) {
      const row = r.rows[j];
      let obj = j ? ',{' : '{';
      for (let i = 0; i < keys.length; i++) obj += (i ? ',' : '') + keys[i] + row[i];
      piece += obj + '}';
    }
    yield piece;
  }
  yield ']';
}

/** The whole of `rowsAsJsonPieces`. */
export function rowsAsJson(r: SqlResult): string {
  return [...rowsAsJsonPieces(r)].join('');
}

function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return `"${s.replace(/"/g, '""')}"`;
}

/** RFC 4180 CSV with a header line: strings quoted, numbers bare, arrays/maps/tuples as quoted JSON, NULL empty. */
export function toCsv(r: SqlResult): string {
  const lines = [r.meta.map((m) => csvField(m.name)).join(',')];
  for (const row of r.rows) lines.push(row.map((f) => csvField(field(f))).join(','));
  return lines.join('\n') + '\n';
}

export class AdmissionRefused extends Error {
  constructor(
    readonly running: number,
    readonly queued: number,
  ) {
    super('busy');
    this.name = 'AdmissionRefused';
  }
}

/**
 * At most `running` at once and `queued` waiting in arrival order; anyone beyond is refused at once (the caller
 * answers 429). A waiter whose signal aborts (the client left) leaves the queue.
 */
export class AdmissionGate {
  private active = 0;
  private readonly waiting: { grant: () => void; signal?: AbortSignal; onAbort: () => void }[] = [];

  constructor(
    readonly maxRunning: number,
    readonly maxQueued: number,
  ) {}

  get running(): number {
    return this.active;
  }
  get queued(): number {
    return this.waiting.length;
  }

  /** Resolves with a release function once admitted; throws AdmissionRefused when the queue is full. */
  async enter(signal?: AbortSignal): Promise<() => void> {
    if (this.active < this.maxRunning && this.waiting.length === 0) {
      this.active++;
      return this.releaser();
    }
    if (this.waiting.length >= this.maxQueued) throw new AdmissionRefused(this.active, this.waiting.length);
    await new Promise<void>((resolve, reject) => {
      const entry = {
        grant: () => {
          signal?.removeEventListener('abort', entry.onAbort);
          resolve();
        },
        signal,
        onAbort: () => {
          const i = this.waiting.indexOf(entry);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(signal?.reason ?? new Error('aborted'));
        },
      };
      this.waiting.push(entry);
      signal?.addEventListener('abort', entry.onAbort, { once: true });
    });
    return this.releaser();
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiting.shift();
      if (next) next.grant();
      else this.active--;
    };
  }
}
