/**
 * Sends the delivery ledger to ClickHouse (`ingest_ledger`), one insert at a time, in order, each retried with the
 * same rows and the same insert_deduplication_token until it lands:
 *
 * - every FLUSH_INTERVAL_MS, the counters gathered since the last insert (token `<collector>:<epoch>:f<n>`, never
 *   used before);
 * - each settled batch's outcome (token `<batch token>/ledger@<seq>`, stable across restarts), with the counters
 *   gathered so far in the same block: a batch's entries are never booked as stored before they were booked as
 *   received, so `entries_in_flight` never goes below 0 in ClickHouse. The ingest pipeline removes the batch from
 *   the write-ahead log only once this resolves.
 *
 * At start, before anything else: the outcomes the previous process recorded next to its batches but may not have
 * booked are sent again (deduplicated if they landed), then the entries ClickHouse says this collector has in
 * flight are matched against what its write-ahead log holds, and the difference is booked (`LedgerBook.correction`:
 * counters lost in a crash, entries lost with it). From then on, every instant of the table satisfies
 * received = stored + dropped + in flight, for every node.
 */
import type { ClickHouse } from '@gatescope/clickhouse';
import { nodeKey, type BatchOutcome, type LedgerBook, type LedgerRow } from '@gatescope/ledger';

interface Logger {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** How often counters are sent: the API and a scale-out reader see the ledger this late at most. */
export const FLUSH_INTERVAL_MS = 1_000;
const MAX_RETRY_DELAY_MS = 5_000;

export const LEDGER_COLUMNS: readonly (keyof LedgerRow)[] = [
  'minute',
  'node_id',
  'node_cluster',
  'log_name',
  'collector',
  'messages',
  'entries_received',
  'entries_stored',
  'entries_in_flight',
  'entries_dropped',
  'messages_rejected',
  'streams_opened',
  'streams_closed',
  'first_seen',
  'last_seen',
  'streams_seen',
];

interface Job {
  token: string;
  /** Rows of its own (an outcome); the counters gathered so far are added at its first attempt. */
  rows: LedgerRow[];
  outcome?: BatchOutcome;
  sent?: LedgerRow[];
  done: () => void;
  failed: (err: unknown) => void;
}

export interface LedgerWriterOptions {
  clickhouse: ClickHouse;
  book: LedgerBook;
  /** This process's epoch (the WAL's): flush tokens are never reused across restarts. */
  epoch: string;
  /** Node keys with a stream open now (heartbeat). */
  openStreams: () => Iterable<string>;
  /** How often rows say which nodes have a stream open: well within GATESCOPE_STALE_AFTER. */
  heartbeatMs: number;
  log?: Logger;
  /** Counts inserts that failed (metrics). */
  onError?: () => void;
}

export class LedgerWriter {
  private readonly queue: Job[] = [];
  private running = false;
  private stopped = false;
  private flushSeq = 0;
  private timer?: NodeJS.Timeout;
  private lastHeartbeat = 0;
  private warnedAt = 0;
  private stopSignal!: () => void;
  private readonly stopping = new Promise<void>((r) => (this.stopSignal = r));
  /** Resolves once the start-up bookkeeping landed; normal inserts wait for it. */
  private recovered: Promise<void> = Promise.resolve();
  private readonly resent = new Set<string>();

  constructor(private readonly options: LedgerWriterOptions) {}

  private get collector(): string {
    return this.options.book.collector;
  }

  /**
   * Starts: first the recorded outcomes of `resend` (batches the previous process settled), then the correction
   * of what it left in flight against `walInFlight` (the write-ahead log's entries per node, without those batches).
   */
  start(resend: { token: string; outcome: BatchOutcome }[], walInFlight: ReadonlyMap<string, number>): void {
    for (const r of resend) this.resent.add(r.token);
    this.recovered = this.recover(resend, new Map(walInFlight));
    void this.recovered.then(() => this.kick());
    this.timer = setInterval(() => this.tick(), Math.min(FLUSH_INTERVAL_MS, this.options.heartbeatMs));
    this.timer.unref();
  }

  private async recover(
    resend: { token: string; outcome: BatchOutcome }[],
    walInFlight: Map<string, number>,
  ): Promise<void> {
    for (const r of resend) await this.send(r.token, this.options.book.resolution(r.outcome));
    for (let failures = 0; !this.stopped; failures++) {
      try {
        const booked = await this.bookedInFlight();
        const rows = this.options.book.correction(booked, walInFlight);
        if (rows.length > 0) await this.send(`${this.collector}:${this.options.epoch}:recovery`, rows);
        return;
      } catch (err) {
        this.failed(err);
        await this.pause(failures);
      }
    }
  }

  /** What ClickHouse says this collector has in flight and open, per node. */
  private async bookedInFlight(): Promise<Map<string, { inFlight: number; streamsOpen: number }>> {
    const ch = this.options.clickhouse;
    const rs = await ch.client.query({
      query:
        `SELECT node_id, node_cluster, log_name, sum(entries_in_flight) AS in_flight,\n` +
        `  toInt64(sum(streams_opened)) - toInt64(sum(streams_closed)) AS open\n` +
        `FROM ${ch.database}.ingest_ledger WHERE collector = {collector:String}\n` +
        `GROUP BY node_id, node_cluster, log_name`,
      query_params: { collector: this.collector },
      format: 'JSONEachRow',
    });
    const out = new Map<string, { inFlight: number; streamsOpen: number }>();
    for (const r of await rs.json<{
      node_id: string;
      node_cluster: string;
      log_name: string;
      in_flight: number | string;
      open: number | string;
    }>())
      out.set(nodeKey({ nodeId: r.node_id, nodeCluster: r.node_cluster, logName: r.log_name }), {
        inFlight: Number(r.in_flight),
        streamsOpen: Number(r.open),
      });
    return out;
  }

  /** Books a settled batch; resolves once its rows landed. */
  book(token: string, outcome: BatchOutcome): Promise<void> {
    // Sent again at start already (the batch was settled before a restart).
    if (this.resent.has(token)) return this.recovered;
    return new Promise<void>((done, failed) => {
      this.queue.push({
        token,
        rows: this.options.book.resolution(outcome),
        outcome,
        done,
        failed,
      });
      this.kick();
    });
  }

  private tick(): void {
    const now = Date.now();
    if (now - this.lastHeartbeat >= this.options.heartbeatMs) {
      this.lastHeartbeat = now;
      this.options.book.heartbeat(this.options.openStreams());
    }
    if (this.queue.length === 0 && this.options.book.hasPending) this.queueFlush();
    else this.kick();
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    void this.run().finally(() => {
      this.running = false;
      // A job queued while the loop was finishing (it saw `running` still set) is not left waiting.
      if (this.queue.length > 0 && !this.stopped) this.kick();
    });
  }

  private async run(): Promise<void> {
    await this.recovered;
    while (this.queue.length > 0 && !this.stopped) {
      const job = this.queue[0];
      job.sent ??= [...this.options.book.take(), ...job.rows];
      try {
        await this.send(job.token, job.sent);
      } catch (err) {
        job.failed(err);
        this.queue.shift();
        continue;
      }
      this.queue.shift();
      if (job.outcome) this.options.book.booked(job.outcome);
      job.done();
    }
  }

  /** One insert, retried (same rows, same token) until it lands or the writer stops. */
  private async send(token: string, rows: LedgerRow[]): Promise<void> {
    if (rows.length === 0) return;
    const body = Buffer.from(rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    for (let failures = 0; ; failures++) {
      if (this.stopped) throw new Error('the delivery ledger writer stopped');
      try {
        await this.options.clickhouse.insertNative(
          'ingest_ledger',
          LEDGER_COLUMNS,
          body,
          {
            insert_deduplicate: 1,
            insert_deduplication_token: token,
          },
          { format: 'JSONEachRow' },
        );
        return;
      } catch (err) {
        this.failed(err);
        await this.pause(failures);
      }
    }
  }

  private failed(err: unknown): void {
    this.options.onError?.();
    if (Date.now() - this.warnedAt < 60_000) return;
    this.warnedAt = Date.now();
    this.options.log?.warn(
      { err },
      'could not write the delivery ledger (ingest_ledger) to ClickHouse; retrying with the same rows. Batches wait in the write-ahead log until their outcome is booked',
    );
  }

  private async pause(failures: number): Promise<void> {
    const delay = Math.min(MAX_RETRY_DELAY_MS, 250 * 2 ** Math.min(failures, 10));
    await Promise.race([new Promise((r) => setTimeout(r, delay).unref()), this.stopping]);
  }

  /** Sends what is gathered now; resolves once it (and everything before it) landed. */
  flush(): Promise<void> {
    return new Promise<void>((done, failed) => this.queueFlush(done, failed));
  }

  /** An insert of the counters gathered by the time it is sent, under a token never used before. */
  private queueFlush(done: () => void = () => {}, failed: (err: unknown) => void = () => {}): void {
    this.queue.push({
      token: `${this.collector}:${this.options.epoch}:f${++this.flushSeq}`,
      rows: [],
      done,
      failed,
    });
    this.kick();
  }

  /** Sends what is gathered (shutdown), for up to `ms`; then stops retrying. */
  async close(ms = 2_000): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    const deadline = Date.now() + ms;
    if (this.options.book.hasPending) this.queueFlush();
    this.kick();
    while ((this.running || this.queue.length > 0) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    this.stopped = true;
    this.stopSignal();
    for (const job of this.queue.splice(0)) job.failed(new Error('the delivery ledger writer stopped'));
  }
}
