/**
 * Decoded rows -> write-ahead log -> ClickHouse, exactly once. The policy:
 *
 * - Accepted: every decoded block goes into the WAL at once (memory); every `syncIntervalMs` a group commit
 *   writes what came since the last one and fdatasyncs it. The commit first waits until every message read
 *   before it started is decoded, so an entry read before a commit began is durable when that commit resolves.
 * - Batches: a table's open segment is sealed when it holds `batchMaxRows` rows or its first row would be
 *   `batchMaxDelayMs` old by the next commit - unless rows come faster than that (busy traffic: `batchMaxRows` per
 *   `batchMaxDelayMs` or more): then it grows until its first row is `batchBusyDelayMs` old (or nothing came for
 *   `batchMaxDelayMs`: the burst is over), since ClickHouse's cost
 *   per row falls steeply with the insert's size (its merges above all) and the live view does not wait for
 *   inserts. While the table's previous batch is still being inserted it grows too (a slow ClickHouse gets fewer,
 *   bigger inserts). Either way up to SEGMENT_MAX_ROWS rows or SEGMENT_MAX_BYTES.
 * - Inserts: one at a time per table, in order, each batch with its token as `insert_deduplication_token`
 *   (also for the rollups it feeds). Committed: the segment is removed.
 * - A transient failure (network, timeout, a 5xx, memory, a missing table...) is retried with backoff: the same
 *   bytes, the same token; nothing is appended to a failed batch. If an earlier attempt was stored after all,
 *   ClickHouse deduplicates the retry (counted).
 * - A permanent failure (ClickHouse refuses the rows themselves) splits the batch: by day (the partition) first,
 *   then in halves, each piece under a token derived from the batch's, so a split redone after a crash lands
 *   nothing twice. Rows still refused alone, or once MAX_SPLIT_INSERTS pieces were tried, are dead-lettered.
 * - Entries outside the start_time window go to their own lane and become dead letters every minute.
 * - Booked: once a batch's fate is settled (stored, or which rows were dead-lettered), its outcome per gateway node
 *   is written next to it in the WAL, handed to `book` (the delivery ledger), and only then is the batch removed.
 *   A crash in between leaves the batch with its outcome: the next start books it again (the same token, so
 *   ClickHouse deduplicates) without inserting its rows again.
 *
 * Nothing here stops ingest of other tables: each table has its own queue, and streams are only paused by the
 * collector's bounds (memory, and the WAL's bytes).
 */
import { withSpan } from '@gatescope/telemetry';
import { readFile } from 'node:fs/promises';
import { nativeRowDays, nativeRowKeys, selectNativeRows } from '@gatescope/als';
import type { BatchOutcome } from '@gatescope/ledger';
import { classifyInsertError, type ClickHouse, type InsertFailure } from '@gatescope/clickhouse';
import type { DeadLetter, DeadLetterStore, KeyTally, Segment, WriteAheadLog } from '@gatescope/wal';

/** A batch grows past `batchMaxRows` (busy traffic, or its table's previous batch still inserting) up to this. */
const SEGMENT_MAX_ROWS_FACTOR = 20;
/** ...and this many bytes (ClickHouse squashes an INSERT into blocks of up to 256 MiB: one batch, one block). */
const SEGMENT_MAX_BYTES = 64 * 1024 * 1024;
/**
 * ...and never more rows than this (plus one group commit), whatever GATESCOPE_BATCH_MAX_ROWS says: below ClickHouse's block size for an
 * insert (max_insert_block_size, 1,048,449), a batch is one block, so an insert cut short (a truncated body answers
 * CANNOT_READ_ALL_DATA, which splits the batch) has committed nothing that its pieces could store a second time.
 */
const SEGMENT_MAX_ROWS = 800_000;
/** Out-of-window entries gather for this long (or this many rows) per dead letter. */
const OUTSIDE_MAX_AGE_MS = 60_000;
const OUTSIDE_MAX_ROWS = 100_000;
/**
 * Inserts tried to isolate the refused rows of one batch. One bad row among 10,000 takes 28 (two per halving);
 * a batch where every row is refused (a wrong column type) stops here, and what is left is dead-lettered whole.
 */
export const MAX_SPLIT_INSERTS = 64;
/**
 * Retries back off from 0.25 s, doubling, to this: a ClickHouse that comes back is found within 5 s (and the WAL
 * drains from then on), while a dead one costs one attempt per table every 5 s.
 */
const MAX_RETRY_DELAY_MS = 5_000;
/** How often the WAL's inbox is looked at for dead letters queued for replay. */
const INBOX_POLL_MS = 2_000;
export const OUT_OF_WINDOW = '.out-of-window';

export interface IngestEvents {
  /** A group commit made `rows` durable. */
  onCommitted?(rows: number, seconds: number): void;
  onCommitError?(error: unknown): void;
  /** A batch (or a piece of one) is stored; `duplicate`: ClickHouse already had it (an earlier attempt landed). */
  onInserted?(
    table: string,
    rows: number,
    seconds: number,
    info: { replayed: boolean; duplicate: boolean },
  ): void;
  onInsertError?(table: string, rows: number, failure: InsertFailure, retryInMs: number): void;
  /** ClickHouse refused a batch for good; it is split into `pieces`. */
  onSplit?(table: string, rows: number, failure: InsertFailure, pieces: number): void;
  /** Rows dead-lettered (`letter` undefined: the dead-letter store was full and they were dropped). */
  onDeadLettered?(table: string, rows: number, reason: string, letter: DeadLetter | undefined): void;
  /** Dead letters queued for replay were taken from the inbox. */
  onReplayQueued?(batches: { lane: string; rows: number }[]): void;
  /** A replayed dead letter is stored. */
  onDeadLetterReplayed?(table: string, id: string, rows: number): void;
  /** Pending rows or WAL bytes went down: paused streams may resume. */
  onDrain?(): void;
  /**
   * Something other than ClickHouse failed (the disk under the WAL or the dead letters): what it was doing is
   * tried again shortly; nothing is dropped.
   */
  onError?(doing: string, error: unknown): void;
}

export interface IngestOptions {
  wal: WriteAheadLog;
  deadLetters: DeadLetterStore;
  clickhouse: ClickHouse;
  /** The tables rows go to, and their columns (in the order of the decoder's Native blocks). */
  tables: Record<string, readonly string[]>;
  batchMaxRows: number;
  batchMaxDelayMs: number;
  /** Busy traffic (`batchMaxRows` per `batchMaxDelayMs` or faster): a batch grows until this old. 0: never. */
  batchBusyDelayMs?: number;
  syncIntervalMs: number;
  /** `max_partitions_per_insert_block` of each insert. */
  maxPartitionsPerInsert: number;
  /** Waits until every message read so far is decoded (the decoder pool's barrier). */
  beforeCommit?: () => Promise<void>;
  /** String columns whose tuple keys a batch's tally (the rows' gateway node): pieces of a split are counted by them. */
  tallyColumns?: readonly string[];
  /**
   * Books a settled batch (the delivery ledger); resolves once that is durable. The batch stays in the WAL (with its
   * outcome) until then; a rejection is retried like a failed insert.
   */
  book?: (segment: Segment, outcome: BatchOutcome) => Promise<void>;
  maxRetryDelayMs?: number;
  events?: IngestEvents;
  now?: () => number;
}

interface Queue {
  table: string;
  columns: readonly string[];
  batches: Segment[];
  busy: boolean;
}

class Stopped extends Error {}

const record = (m: ReadonlyMap<string, number>) => Object.fromEntries(m);

/** The outcome being gathered while a batch is inserted (or split). */
class Tally {
  readonly stored = new Map<string, number>();
  readonly dropped = new Map<string, Map<string, number>>();
  add(into: Map<string, number>, tally: ReadonlyMap<string, number>): void {
    for (const [k, n] of tally) into.set(k, (into.get(k) ?? 0) + n);
  }
  drop(reason: string, tally: ReadonlyMap<string, number>): void {
    let m = this.dropped.get(reason);
    if (!m) this.dropped.set(reason, (m = new Map()));
    this.add(m, tally);
  }
  outcome(segment: Segment): BatchOutcome {
    const replayedLetter = segment.header.deadLetter !== undefined;
    return {
      stored: record(this.stored),
      dropped: Object.fromEntries([...this.dropped].map(([r, m]) => [r, record(m)])),
      fromInFlight: !replayedLetter,
      ...(replayedLetter && {
        released: {
          reason: segment.header.deadLetterReason ?? 'insert_refused',
          tally: record(segment.tally),
        },
      }),
    };
  }
}

type Attempt = { ok: true } | { ok: false; failure: InsertFailure };

export class Ingest {
  private readonly queues = new Map<string, Queue>();
  /** Per lane: the open segment's rows at the last tick that saw them grow, and when (a burst's end is seen). */
  private readonly arrivals = new Map<string, { rows: number; at: number }>();
  private readonly timer: NodeJS.Timeout;
  private readonly inboxTimer: NodeJS.Timeout;
  private ticking = false;
  /** Flushes in progress (one at shutdown): every tick seals everything meanwhile. */
  private draining = 0;
  /** Give up retrying: the process is going away (what is left stays in the WAL). */
  private stopped = false;
  private stopSignal!: () => void;
  private readonly stopping = new Promise<void>((r) => (this.stopSignal = r));
  private readonly events: IngestEvents;
  /** Out-of-window segments being parked (their booking waits for ClickHouse), with when their first row came. */
  private readonly parking = new Map<Promise<void>, number>();

  constructor(private readonly options: IngestOptions) {
    this.events = options.events ?? {};
    for (const [table, columns] of Object.entries(options.tables))
      this.queues.set(table, { table, columns, batches: [], busy: false });
    this.timer = setInterval(() => void this.tick(), options.syncIntervalMs);
    this.timer.unref();
    this.inboxTimer = setInterval(() => void this.adoptReplays().catch(() => {}), INBOX_POLL_MS);
    this.inboxTimer.unref();
  }

  private get now(): number {
    return (this.options.now ?? Date.now)();
  }

  /** Batches waiting for ClickHouse (the ones being inserted included). */
  get queuedBatches(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.batches.length;
    return n;
  }

  /** Rows in the batches waiting for ClickHouse. */
  queuedRows(): number {
    let n = 0;
    for (const q of this.queues.values()) for (const b of q.batches) n += b.rows;
    return n;
  }

  /** When the oldest row of a sealed batch waiting for ClickHouse arrived (undefined: none). */
  oldestQueued(): number | undefined {
    let t: number | undefined;
    for (const q of this.queues.values()) {
      const head = q.batches[0];
      if (head) t = t === undefined ? head.header.createdAt : Math.min(t, head.header.createdAt);
    }
    return t;
  }

  /** Decoded rows of `table` (a Native block) of gateway node `key`: into the WAL, durable at the next commit. */
  add(table: string, data: Buffer, rows: number, tally?: KeyTally, streams?: Uint32Array): void {
    this.options.wal.add(table, data, rows, tally, streams);
  }

  /** Rows whose start_time lies outside the accepted window: into their lane, dead-lettered. */
  addOutOfWindow(table: string, data: Buffer, rows: number, tally?: KeyTally): void {
    this.options.wal.add(table + OUT_OF_WINDOW, data, rows, tally);
  }

  /** Rows per key of a piece of a batch (everything under '' without tally columns). */
  private tallyOf(data: Buffer, rows: number): Map<string, number> {
    const columns = this.options.tallyColumns;
    return columns ? nativeRowKeys(data, columns) : new Map([['', rows]]);
  }

  /** Records the outcome next to the batch, then books it (retried until booked or stopped). */
  private async settle(segment: Segment, outcome: BatchOutcome): Promise<void> {
    const book = this.options.book;
    if (!book) return;
    if (segment.resolution === undefined) await this.options.wal.markResolved(segment, outcome);
    for (let failures = 0; ; failures++) {
      if (this.stopped) throw new Stopped();
      try {
        await book(segment, outcome);
        return;
      } catch (err) {
        this.events.onError?.(`booking batch ${segment.name} in the delivery ledger`, err);
        const delay = Math.min(
          this.options.maxRetryDelayMs ?? MAX_RETRY_DELAY_MS,
          250 * 2 ** Math.min(failures, 10),
        );
        await Promise.race([new Promise((r) => setTimeout(r, delay).unref?.()), this.stopping]);
      }
    }
  }

  /**
   * Batches found in the WAL at start (and dead letters queued for replay): inserted (or, for out-of-window
   * lanes, dead-lettered) before anything new of their table, in the order they arrived.
   */
  replay(segments: Segment[]): void {
    for (const s of segments) {
      if (s.lane.endsWith(OUT_OF_WINDOW)) this.parkLater(s);
      else {
        const q = this.queues.get(s.lane);
        if (!q) continue;
        q.batches.push(s);
        void this.pump(q);
      }
    }
  }

  /** One group commit, then the batches that are due (one tick at a time). */
  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      await this.commit();
      for (const lane of this.options.wal.activeLanes()) await this.maybeSeal(lane);
    } catch (err) {
      // Sealing or parking failed (the disk): the segment stays open and is tried again at the next tick.
      this.events.onError?.('sealing a batch', err);
    } finally {
      this.ticking = false;
    }
  }

  /** A tick now, once the one in progress (if any) is over. */
  private async tickNow(): Promise<void> {
    while (this.ticking) await new Promise((r) => setTimeout(r, 5));
    await this.tick();
  }

  private async commit(): Promise<void> {
    const wal = this.options.wal;
    await this.options.beforeCommit?.();
    if (wal.pendingRows === 0) return;
    const started = performance.now();
    try {
      const r = await wal.commit();
      this.events.onCommitted?.(r.rows, (performance.now() - started) / 1000);
    } catch (err) {
      this.events.onCommitError?.(err);
    }
  }

  private async maybeSeal(lane: string): Promise<void> {
    const wal = this.options.wal;
    const open = wal.openSegment(lane);
    if (!open) return;
    const age = this.now - open.createdAt;
    if (lane.endsWith(OUT_OF_WINDOW)) {
      if (this.draining || age >= OUTSIDE_MAX_AGE_MS || open.rows >= OUTSIDE_MAX_ROWS) {
        const s = await wal.seal(lane);
        // Not awaited: booking it waits for ClickHouse, and group commits must go on meanwhile.
        if (s) this.parkLater(s);
      }
      return;
    }
    const q = this.queues.get(lane);
    if (!q) return;
    const { batchMaxRows, batchMaxDelayMs, syncIntervalMs } = this.options;
    const nextAge = age + syncIntervalMs;
    const due = open.rows >= batchMaxRows || nextAge >= batchMaxDelayMs;
    const full =
      open.rows >= Math.min(batchMaxRows * SEGMENT_MAX_ROWS_FACTOR, SEGMENT_MAX_ROWS) ||
      open.bytes >= SEGMENT_MAX_BYTES;
    // Busy: its rows came at batchMaxRows per batchMaxDelayMs or faster. It grows until batchBusyDelayMs old, unless
    // nothing came for batchMaxDelayMs: the burst is over, and waiting would only delay its rows.
    const busy = open.rows >= batchMaxRows && open.rows * batchMaxDelayMs >= batchMaxRows * Math.max(1, age);
    let seen = this.arrivals.get(lane);
    if (seen?.rows !== open.rows) this.arrivals.set(lane, (seen = { rows: open.rows, at: this.now }));
    const quiet = this.now - seen!.at >= batchMaxDelayMs;
    const growing = busy && !quiet && nextAge < (this.options.batchBusyDelayMs ?? 0);
    if (this.draining || full || (due && !growing && q.batches.length === 0)) {
      const s = await wal.seal(lane);
      if (!s) return;
      q.batches.push(s);
      void this.pump(q);
    }
  }

  /** Inserts a table's batches one after another. */
  private async pump(q: Queue): Promise<void> {
    if (q.busy) return;
    q.busy = true;
    try {
      while (q.batches.length > 0 && !this.stopped) {
        const batch = q.batches[0];
        try {
          // Settled before a crash: only its booking was not finished. One span per batch flush: its inserts
          // (retries, split pieces) are its children.
          const outcome =
            (batch.resolution as BatchOutcome | undefined) ??
            (await withSpan(
              'collector.flush',
              {
                attributes: {
                  'db.collection.name': q.table,
                  'gatescope.batch.rows': batch.rows,
                  'gatescope.batch.replayed': batch.replayed,
                },
              },
              () => this.store(q, batch),
            ));
          await this.settle(batch, outcome);
          q.batches.shift();
          await this.options.wal.remove(batch);
        } catch (err) {
          if (err instanceof Stopped) return;
          // Not ClickHouse (that is retried inside): reading the batch or writing a dead letter failed. The
          // batch stays first in line; a split redone later lands nothing twice.
          this.events.onError?.(`storing batch ${batch.name} of ${q.table}`, err);
          await Promise.race([new Promise((r) => setTimeout(r, 1_000).unref()), this.stopping]);
          continue;
        }
        if (batch.header.deadLetter)
          this.events.onDeadLetterReplayed?.(q.table, batch.header.deadLetter, batch.rows);
        this.events.onDrain?.();
      }
    } finally {
      q.busy = false;
    }
    // The open segment may have waited for this insert to finish.
    if (!this.stopped)
      await this.maybeSeal(q.table).catch((err: unknown) => this.events.onError?.('sealing a batch', err));
  }

  private settings(token: string): Record<string, string | number> {
    return {
      insert_deduplicate: 1,
      insert_deduplication_token: token,
      deduplicate_blocks_in_dependent_materialized_views: 1,
      max_partitions_per_insert_block: this.options.maxPartitionsPerInsert,
    };
  }

  /**
   * Inserts the same bytes under the same token until ClickHouse stores them or refuses them for good. Asks
   * whether they were deduplicated whenever an earlier attempt may have landed (a retry, a replayed batch).
   */
  private async insert(
    q: Queue,
    data: Buffer | { file: string },
    token: string,
    rows: number,
    replayed: boolean,
  ): Promise<Attempt> {
    let failures = 0;
    for (;;) {
      if (this.stopped) throw new Stopped();
      const started = performance.now();
      try {
        const checkDuplicate = replayed || failures > 0;
        const r = await this.options.clickhouse.insertNative(q.table, q.columns, data, this.settings(token), {
          checkDuplicate,
          rows,
          queryId: `gatescope-insert-${token}`,
        });
        this.events.onInserted?.(q.table, rows, (performance.now() - started) / 1000, {
          replayed,
          duplicate: r.duplicate === true,
        });
        return { ok: true };
      } catch (err) {
        const failure = classifyInsertError(err);
        if (!failure.transient) return { ok: false, failure };
        failures++;
        const delay = Math.min(
          this.options.maxRetryDelayMs ?? MAX_RETRY_DELAY_MS,
          250 * 2 ** Math.min(failures - 1, 10),
        );
        this.events.onInsertError?.(q.table, rows, failure, delay);
        await Promise.race([
          new Promise((r) => setTimeout(r, this.draining ? Math.min(delay, 1_000) : delay).unref?.()),
          this.stopping,
        ]);
      }
    }
  }

  /** One batch: stored whole, or split until what ClickHouse refuses is isolated and dead-lettered. */
  private async store(q: Queue, batch: Segment): Promise<BatchOutcome> {
    const token = batch.header.token;
    const tally = new Tally();
    const whole = await this.insert(q, { file: batch.file }, token, batch.rows, batch.replayed);
    if (whole.ok) {
      tally.add(tally.stored, batch.tally);
      return tally.outcome(batch);
    }
    const data = await readFile(batch.file);
    const days = nativeRowDays(data);
    const byDay = new Map<number, number[]>();
    days.forEach((day, row) => {
      const rows = byDay.get(day);
      if (rows) rows.push(row);
      else byDay.set(day, [row]);
    });
    const pieces: { token: string; rows: number[]; failure?: InsertFailure }[] =
      byDay.size > 1
        ? [...byDay.entries()]
            .sort((a, b) => a[0] - b[0])
            .map(([day, rows]) => ({ token: `${token}/d${day}`, rows }))
        : [{ token, rows: Array.from(days, (_, i) => i), failure: whole.failure }];
    this.events.onSplit?.(q.table, batch.rows, whole.failure, pieces.length);
    let budget = MAX_SPLIT_INSERTS;
    const settle = async (
      piece: { token: string; rows: number[]; failure?: InsertFailure },
      parent: InsertFailure,
    ): Promise<void> => {
      let failure = piece.failure;
      if (!failure) {
        if (budget <= 0) failure = parent;
        else {
          budget--;
          const rows = selectNativeRows(data, piece.rows);
          const r = await this.insert(q, rows, piece.token, piece.rows.length, batch.replayed);
          if (r.ok) {
            tally.add(tally.stored, this.tallyOf(rows, piece.rows.length));
            return;
          }
          failure = r.failure;
        }
      }
      if (piece.rows.length === 1 || budget <= 0) {
        const rows = selectNativeRows(data, piece.rows);
        const reason = await this.deadLetter(q.table, piece.token, rows, piece.rows.length, failure);
        tally.drop(reason, this.tallyOf(rows, piece.rows.length));
        return;
      }
      const mid = Math.ceil(piece.rows.length / 2);
      const half = (bit: number) =>
        /\/h[01]+$/.test(piece.token) ? `${piece.token}${bit}` : `${piece.token}/h${bit}`;
      await settle({ token: half(0), rows: piece.rows.slice(0, mid) }, failure);
      await settle({ token: half(1), rows: piece.rows.slice(mid) }, failure);
    };
    for (const piece of pieces) await settle(piece, whole.failure);
    return tally.outcome(batch);
  }

  /** Dead-letters rows; the reason they count under: `insert_refused`, or `dead_letter_full` (dropped). */
  private async deadLetter(
    table: string,
    token: string,
    data: Buffer,
    rows: number,
    failure: InsertFailure,
  ): Promise<string> {
    const error = { code: failure.code, name: failure.name, message: failure.message };
    const letter = await this.options.deadLetters.write(table, token, data, rows, 'insert_refused', error);
    this.events.onDeadLettered?.(table, rows, 'insert_refused', letter);
    return letter ? 'insert_refused' : 'dead_letter_full';
  }

  /** An out-of-window segment: moved whole into the dead letters (dropped and counted if they are full). */
  private async park(segment: Segment): Promise<void> {
    const table = segment.lane.slice(0, -OUT_OF_WINDOW.length);
    if (segment.resolution === undefined) {
      const tally = new Tally();
      const fits = this.options.deadLetters.fits(segment.bytes);
      tally.drop(fits ? 'start_time_out_of_range' : 'dead_letter_full', segment.tally);
      await this.settle(segment, tally.outcome(segment));
    } else await this.settle(segment, segment.resolution as BatchOutcome);
    const letter = await this.options.deadLetters.park(segment, table, 'start_time_out_of_range', null);
    if (letter) this.options.wal.forget(segment);
    else await this.options.wal.remove(segment);
    this.events.onDeadLettered?.(table, segment.rows, 'start_time_out_of_range', letter);
    this.events.onDrain?.();
  }

  /** Parks a segment in the background (flush waits for it). */
  private parkLater(segment: Segment): void {
    const p = this.park(segment)
      .catch((err: unknown) => {
        if (!(err instanceof Stopped)) this.events.onError?.('dead-lettering out-of-window entries', err);
      })
      .finally(() => this.parking.delete(p));
    this.parking.set(p, segment.header.createdAt);
  }

  /** Dead letters queued for replay since the last look (the inbox): inserted like any batch. */
  async adoptReplays(): Promise<number> {
    if (this.stopped) return 0;
    const adopted = await this.options.wal.adoptInbox();
    if (adopted.length === 0) return 0;
    // `gatescope dead-letters replay` moved them out of the dead letters: count those again.
    await this.options.deadLetters.load();
    this.events.onReplayQueued?.(adopted.map((s) => ({ lane: s.lane, rows: s.rows })));
    this.replay(adopted);
    return adopted.length;
  }

  /**
   * Commits everything added so far, seals every open segment and waits until ClickHouse stored every batch that
   * holds rows added before the call, or `deadline` passed. True when those are all stored. Rows that come
   * meanwhile are not waited for: under steady traffic there is never a moment with nothing left, and a slow
   * ClickHouse (or a starved CPU) would keep a flush that waited for one from ever ending. `since`: rows that
   * arrived up to then (on the WAL's clock); Infinity at shutdown, once nothing new can come: everything.
   */
  async flush(deadline = Infinity, since = this.now): Promise<boolean> {
    const before = (t: number | undefined) => t !== undefined && t <= since;
    this.draining++;
    try {
      for (;;) {
        await this.tickNow();
        const waiting = [...this.queues.values()].filter((q) =>
          q.batches.some((b) => before(b.header.createdAt)),
        );
        const parking = [...this.parking.values()].some(before);
        if (waiting.length === 0 && !parking && !before(this.options.wal.oldestOpen())) return true;
        if (Date.now() >= deadline) return false;
        for (const q of waiting) void this.pump(q);
        await new Promise((r) => setTimeout(r, Math.max(1, Math.min(20, deadline - Date.now()))));
      }
    } finally {
      this.draining--;
    }
  }

  /**
   * Stops retrying and the timers: what is not stored stays in the WAL for the next start. Waits up to `waitMs`
   * for an insert in flight (one ClickHouse may still commit: the next start's replay is then deduplicated).
   */
  async stop(waitMs = 1_000): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.inboxTimer);
    this.stopped = true;
    this.stopSignal();
    const until = Date.now() + waitMs;
    while ([...this.queues.values()].some((q) => q.busy) && Date.now() < until)
      await new Promise((r) => setTimeout(r, 5));
  }
}
