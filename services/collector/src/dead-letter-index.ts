import type { ClickHouse } from '@gatescope/clickhouse';
import type { DeadLetter } from '@gatescope/wal';

interface Logger {
  warn(obj: object, msg?: string): void;
}

interface IndexRow {
  collector: string;
  id: string;
  table_name: string;
  reason: string;
  error_code: number;
  error_name: string;
  error_message: string;
  entries: number;
  created_at: string;
  state: 'parked' | 'replayed';
  updated_at: string;
}

const RETRY_MS = 5_000;
/** Error messages can quote a whole row; the index keeps their start (the file keeps all of it). */
const MESSAGE_BYTES = 2_000;
const ts = (d: Date) => d.toISOString().replace('T', ' ').replace('Z', '');

/**
 * Which dead letters exist, in ClickHouse (`ingest_dead_letters`): the rows stay in files on this collector's
 * disk, and the API (a process of its own in scale-out) answers `/api/v1/status` from this table. Best effort,
 * and eventually right: rows are sent in the background until ClickHouse takes them, and every parked file is
 * sent again at start. The table is a ReplacingMergeTree keyed by (collector, id): sending a row twice is harmless.
 */
export class DeadLetterIndex {
  private queue: IndexRow[] = [];
  private timer?: NodeJS.Timeout;
  private sending?: Promise<void>;
  private warned = 0;

  constructor(
    private readonly clickhouse: ClickHouse,
    private readonly collector: string,
    private readonly log?: Logger,
  ) {}

  parked(letter: DeadLetter): void {
    this.push({
      collector: this.collector,
      id: letter.id,
      table_name: letter.table,
      reason: letter.reason,
      error_code: letter.error?.code ?? 0,
      error_name: letter.error?.name ?? '',
      error_message: (letter.error?.message ?? '').slice(0, MESSAGE_BYTES),
      entries: letter.entries,
      created_at: ts(new Date(letter.created_at)),
      state: 'parked',
      updated_at: ts(new Date()),
    });
  }

  replayed(table: string, id: string, entries: number): void {
    const now = ts(new Date());
    this.push({
      collector: this.collector,
      id,
      table_name: table,
      reason: '',
      error_code: 0,
      error_name: '',
      error_message: '',
      entries,
      created_at: now,
      state: 'replayed',
      updated_at: now,
    });
  }

  private push(row: IndexRow): void {
    this.queue.push(row);
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.timer || this.sending) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.sending = this.send().finally(() => {
        this.sending = undefined;
        if (this.queue.length > 0) this.schedule(RETRY_MS);
      });
    }, ms);
    this.timer.unref();
  }

  private async send(): Promise<void> {
    const rows = this.queue.splice(0);
    if (rows.length === 0) return;
    try {
      await this.clickhouse.client.insert({
        table: `${this.clickhouse.database}.ingest_dead_letters`,
        values: rows,
        format: 'JSONEachRow',
      });
    } catch (err) {
      this.queue.unshift(...rows);
      if (Date.now() - this.warned > 60_000) {
        this.warned = Date.now();
        this.log?.warn(
          { err, rows: rows.length },
          'could not record dead letters in ClickHouse (ingest_dead_letters); retrying. The files are safe on disk',
        );
      }
    }
  }

  /** Sends what is queued now (shutdown); gives up after `ms`. */
  async flush(ms = 2_000): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.sending;
    await Promise.race([this.send(), new Promise((r) => setTimeout(r, ms).unref())]);
  }
}
