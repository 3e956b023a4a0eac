/**
 * Buffers Native blocks per table and commits them to ClickHouse in batches: when a table holds
 * `maxRows` rows, or `maxDelayMs` after its oldest unflushed row arrived. One insert per table is in
 * flight at a time; while it runs, new rows gather into the next (larger) batch, so a slow ClickHouse
 * gets fewer, bigger inserts. A failed insert keeps its rows and is retried with backoff: nothing
 * accepted is dropped while the process lives. `pendingRows` and `pendingBytes` (buffered + in flight)
 * let the caller apply back-pressure upstream.
 */
export interface BatchInsert {
  (table: string, data: Buffer[], rows: number): Promise<void>;
}

export interface BatcherOptions {
  maxRows: number;
  maxDelayMs: number;
  insert: BatchInsert;
  onInserted?: (table: string, rows: number, seconds: number) => void;
  onInsertError?: (table: string, rows: number, error: unknown, retryInMs: number) => void;
  /** Called whenever pendingRows drops (an insert committed), so paused producers can resume. */
  onDrain?: () => void;
  maxRetryDelayMs?: number;
}

interface TableBuffer {
  chunks: Buffer[];
  rows: number;
  bytes: number;
  firstAt: number;
  timer?: NodeJS.Timeout;
  inflight?: Promise<void>;
  inflightRows: number;
  inflightBytes: number;
  failures: number;
}

export class Batcher {
  private readonly tables = new Map<string, TableBuffer>();
  private closed = false;

  constructor(private readonly options: BatcherOptions) {}

  /** Rows accepted but not yet committed, over all tables. */
  get pendingRows(): number {
    let n = 0;
    for (const t of this.tables.values()) n += t.rows + t.inflightRows;
    return n;
  }

  /** Bytes of the Native blocks accepted but not yet committed, over all tables. */
  get pendingBytes(): number {
    let n = 0;
    for (const t of this.tables.values()) n += t.bytes + t.inflightBytes;
    return n;
  }

  add(table: string, data: Buffer, rows: number): void {
    if (rows === 0) return;
    let t = this.tables.get(table);
    if (!t) {
      t = { chunks: [], rows: 0, bytes: 0, firstAt: 0, inflightRows: 0, inflightBytes: 0, failures: 0 };
      this.tables.set(table, t);
    }
    if (t.rows === 0) t.firstAt = Date.now();
    t.chunks.push(data);
    t.rows += rows;
    t.bytes += data.length;
    this.schedule(table, t);
  }

  private schedule(table: string, t: TableBuffer): void {
    if (t.inflight || t.rows === 0) return;
    if (t.rows >= this.options.maxRows || this.closed) {
      this.flushTable(table, t);
      return;
    }
    if (!t.timer) {
      const wait = Math.max(0, t.firstAt + this.options.maxDelayMs - Date.now());
      t.timer = setTimeout(() => {
        t.timer = undefined;
        this.flushTable(table, t);
      }, wait);
      t.timer.unref?.();
    }
  }

  private flushTable(table: string, t: TableBuffer): void {
    if (t.inflight || t.rows === 0) return;
    if (t.timer) {
      clearTimeout(t.timer);
      t.timer = undefined;
    }
    const chunks = t.chunks;
    const rows = t.rows;
    const bytes = t.bytes;
    t.chunks = [];
    t.rows = 0;
    t.bytes = 0;
    t.inflightRows = rows;
    t.inflightBytes = bytes;
    const started = performance.now();
    t.inflight = this.options
      .insert(table, chunks, rows)
      .then(
        () => {
          t.failures = 0;
          t.inflightRows = 0;
          t.inflightBytes = 0;
          this.options.onInserted?.(table, rows, (performance.now() - started) / 1000);
        },
        async (err: unknown) => {
          t.failures++;
          const delay = Math.min(this.options.maxRetryDelayMs ?? 30_000, 250 * 2 ** Math.min(t.failures, 10));
          this.options.onInsertError?.(table, rows, err, delay);
          await new Promise((r) => setTimeout(r, this.closed ? Math.min(delay, 1_000) : delay).unref?.());
          // Put the failed batch back in front of anything that arrived meanwhile.
          t.chunks = chunks.concat(t.chunks);
          if (t.rows === 0) t.firstAt = Date.now();
          t.rows += rows;
          t.bytes += bytes;
          t.inflightRows = 0;
          t.inflightBytes = 0;
        },
      )
      .finally(() => {
        t.inflight = undefined;
        this.options.onDrain?.();
        if (t.rows > 0) {
          // Rows that gathered during the insert go out as soon as a full batch is there, else on their timer.
          if (t.rows >= this.options.maxRows || this.closed) this.flushTable(table, t);
          else this.schedule(table, t);
        }
      });
  }

  /** Commit everything buffered now (waits for in-flight inserts and retries). */
  async flush(deadline = Infinity): Promise<boolean> {
    for (;;) {
      const busy = [...this.tables.entries()].filter(([, t]) => t.inflight || t.rows > 0);
      if (busy.length === 0) return true;
      if (Date.now() > deadline) return false;
      for (const [table, t] of busy) this.flushTable(table, t);
      await Promise.race([
        Promise.all(busy.map(([, t]) => t.inflight)),
        new Promise((r) => setTimeout(r, Math.max(0, Math.min(deadline - Date.now(), 1_000)))),
      ]);
    }
  }

  /** Stop timers; later adds flush immediately. Call `flush()` after to commit the rest. */
  close(): void {
    this.closed = true;
    for (const t of this.tables.values()) {
      if (t.timer) clearTimeout(t.timer);
      t.timer = undefined;
    }
  }
}
