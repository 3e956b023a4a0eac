/**
 * The collector's side of the delivery ledger: what happened to every gateway node's messages and entries, as
 * rows of `ingest_ledger` (one per node and minute after ClickHouse merges them).
 *
 * Every entry a collector decodes is, at each instant, in exactly one of three places: stored (ClickHouse committed
 * it), dropped (dead-lettered or lost, by reason) or in flight (in memory or in the write-ahead log). The rows keep
 * that as sums: a decoded entry adds 1 to `entries_received` and 1 to `entries_in_flight`; a batch's outcome moves it
 * out of `entries_in_flight` into `entries_stored` or `entries_dropped[reason]`. So over any set of rows
 *
 *     entries_received = entries_stored + sum(entries_dropped) + entries_in_flight
 *
 * and a node's `entries_in_flight` summed over all time is what is still on its way.
 *
 * How each kind of row reaches ClickHouse exactly once (see the collector's LedgerWriter):
 * - counters (`take`): every second, one insert under a token never used before, retried with the same rows and
 *   token until it lands. A crash loses at most the rows not yet landed: the next start corrects the entry counts
 *   from the write-ahead log (`correction`); message and stream counts of that last second stay lost.
 * - a batch's outcome (`resolution`): its own insert under a token derived from the batch's, recorded next to the
 *   batch in the WAL first, so a crash before the batch is removed re-sends the same token (deduplicated).
 */
import { parseNodeKey } from './keys.js';

/** One row of `ingest_ledger`, as inserted (JSONEachRow). */
export interface LedgerRow {
  minute: string;
  node_id: string;
  node_cluster: string;
  log_name: string;
  collector: string;
  messages: number;
  entries_received: number;
  entries_stored: number;
  entries_in_flight: number;
  entries_dropped: Record<string, number>;
  messages_rejected: Record<string, number>;
  streams_opened: number;
  streams_closed: number;
  first_seen: string;
  last_seen: string;
  streams_seen: string;
}

/** What became of one batch's entries, per node key: what the WAL records next to it before it is booked. */
export interface BatchOutcome {
  stored: Record<string, number>;
  /** reason -> node key -> entries. */
  dropped: Record<string, Record<string, number>>;
  /** The entries were in flight (a batch of new entries); false for a dead letter being replayed. */
  fromInFlight: boolean;
  /** A replayed dead letter: its entries leave this reason (where they were counted until now). */
  released?: { reason: string; tally: Record<string, number> };
}

/** What the collector adds up per node between two inserts, and since it started (Prometheus). */
export interface NodeCounters {
  messages: number;
  entriesReceived: number;
  entriesStored: number;
  entriesDropped: Record<string, number>;
  messagesRejected: Record<string, number>;
  streamsOpened: number;
  streamsClosed: number;
  /** Epoch ms of the first / last message (undefined: none yet). */
  firstSeenMs?: number;
  lastSeenMs?: number;
  /** Epoch ms at which the node last had a stream open here (heartbeat of an idle but connected gateway). */
  streamsSeenMs?: number;
}

/** `min(first_seen)` must ignore rows without a message: they carry this, the largest DateTime64(3) ClickHouse keeps. */
export const NO_FIRST_SEEN = '2299-12-31 23:59:59.999';
const EPOCH = '1970-01-01 00:00:00.000';

export const ts = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
export const minuteOf = (ms: number) => ts(Math.floor(ms / 60_000) * 60_000).slice(0, 19);

const empty = (): NodeCounters => ({
  messages: 0,
  entriesReceived: 0,
  entriesStored: 0,
  entriesDropped: {},
  messagesRejected: {},
  streamsOpened: 0,
  streamsClosed: 0,
});

const add = (m: Record<string, number>, k: string, n: number) => {
  m[k] = (m[k] ?? 0) + n;
};

export class LedgerBook {
  /** Deltas since the last `take`. */
  private pending = new Map<string, NodeCounters>();
  /** Since this process started (Prometheus counters). */
  readonly totals = new Map<string, NodeCounters>();

  constructor(
    readonly collector: string,
    private readonly now: () => number = Date.now,
  ) {}

  private both(key: string, f: (c: NodeCounters) => void): void {
    for (const map of [this.pending, this.totals]) {
      let c = map.get(key);
      if (!c) map.set(key, (c = empty()));
      f(c);
    }
  }

  /** A message arrived on a stream of `key` (decoded or refused). */
  message(key: string): void {
    const at = this.now();
    this.both(key, (c) => {
      c.messages++;
      c.firstSeenMs ??= at;
      c.lastSeenMs = at;
    });
  }

  /** Entries of an accepted message: received, and in flight until their batch's outcome. */
  received(key: string, entries: number): void {
    if (entries > 0) this.both(key, (c) => (c.entriesReceived += entries));
  }

  rejected(key: string, reason: string): void {
    this.both(key, (c) => add(c.messagesRejected, reason, 1));
  }

  streamOpened(key: string): void {
    const at = this.now();
    this.both(key, (c) => {
      c.streamsOpened++;
      c.streamsSeenMs = at;
    });
  }

  streamClosed(key: string): void {
    this.both(key, (c) => c.streamsClosed++);
  }

  /** Nodes with a stream open here right now: their rows say so (an idle Envoy keeps its stream and sends nothing). */
  heartbeat(keys: Iterable<string>): void {
    const at = this.now();
    for (const key of keys) this.both(key, (c) => (c.streamsSeenMs = at));
  }

  /** An outcome booked (its row landed): the Prometheus totals follow. */
  booked(outcome: BatchOutcome): void {
    for (const [key, n] of Object.entries(outcome.stored)) this.total(key).entriesStored += n;
    for (const [reason, tally] of Object.entries(outcome.dropped))
      for (const [key, n] of Object.entries(tally)) add(this.total(key).entriesDropped, reason, n);
  }

  private total(key: string): NodeCounters {
    let c = this.totals.get(key);
    if (!c) this.totals.set(key, (c = empty()));
    return c;
  }

  get hasPending(): boolean {
    return this.pending.size > 0;
  }

  /** The deltas since the last call, as rows of the current minute. */
  take(): LedgerRow[] {
    const minute = minuteOf(this.now());
    const rows: LedgerRow[] = [];
    for (const [key, c] of this.pending) {
      rows.push({
        ...this.row(key, minute),
        messages: c.messages,
        entries_received: c.entriesReceived,
        entries_in_flight: c.entriesReceived,
        messages_rejected: c.messagesRejected,
        streams_opened: c.streamsOpened,
        streams_closed: c.streamsClosed,
        first_seen: c.firstSeenMs === undefined ? NO_FIRST_SEEN : ts(c.firstSeenMs),
        last_seen: c.lastSeenMs === undefined ? EPOCH : ts(c.lastSeenMs),
        streams_seen: c.streamsSeenMs === undefined ? EPOCH : ts(c.streamsSeenMs),
      });
    }
    this.pending = new Map();
    return rows;
  }

  /** A zero row of `key` at `minute`. */
  row(key: string, minute: string): LedgerRow {
    const node = parseNodeKey(key);
    return {
      minute,
      node_id: node.nodeId,
      node_cluster: node.nodeCluster,
      log_name: node.logName,
      collector: this.collector,
      messages: 0,
      entries_received: 0,
      entries_stored: 0,
      entries_in_flight: 0,
      entries_dropped: {},
      messages_rejected: {},
      streams_opened: 0,
      streams_closed: 0,
      first_seen: NO_FIRST_SEEN,
      last_seen: EPOCH,
      streams_seen: EPOCH,
    };
  }

  /** The rows booking one batch's outcome (current minute). */
  resolution(outcome: BatchOutcome): LedgerRow[] {
    const minute = minuteOf(this.now());
    const rows = new Map<string, LedgerRow>();
    const rowOf = (key: string) => {
      let r = rows.get(key);
      if (!r) rows.set(key, (r = this.row(key, minute)));
      return r;
    };
    for (const [key, n] of Object.entries(outcome.stored)) {
      rowOf(key).entries_stored += n;
      if (outcome.fromInFlight) rowOf(key).entries_in_flight -= n;
    }
    for (const [reason, tally] of Object.entries(outcome.dropped))
      for (const [key, n] of Object.entries(tally)) {
        add(rowOf(key).entries_dropped, reason, n);
        if (outcome.fromInFlight) rowOf(key).entries_in_flight -= n;
      }
    if (outcome.released)
      for (const [key, n] of Object.entries(outcome.released.tally))
        add(rowOf(key).entries_dropped, outcome.released.reason, -n);
    return [...rows.values()];
  }

  /**
   * At start, after every outcome recorded in the WAL is booked: the entries the previous process left in flight
   * per node (`booked`, from ClickHouse) against what its write-ahead log really holds (`walInFlight`). More in the
   * WAL: their counters never landed (a crash) and they are received now. Fewer: they were received and never
   * made durable (lost with the process: `lost_at_restart`). Streams it had open are closed.
   */
  correction(
    booked: ReadonlyMap<string, { inFlight: number; streamsOpen: number }>,
    walInFlight: ReadonlyMap<string, number>,
  ): LedgerRow[] {
    const minute = minuteOf(this.now());
    const rows: LedgerRow[] = [];
    for (const key of new Set([...booked.keys(), ...walInFlight.keys()])) {
      const had = booked.get(key) ?? { inFlight: 0, streamsOpen: 0 };
      const d = (walInFlight.get(key) ?? 0) - had.inFlight;
      if (d === 0 && had.streamsOpen <= 0) continue;
      const r = this.row(key, minute);
      r.entries_in_flight = d;
      if (d > 0) r.entries_received = d;
      if (d < 0) r.entries_dropped = { lost_at_restart: -d };
      if (had.streamsOpen > 0) r.streams_closed = had.streamsOpen;
      rows.push(r);
      if (d > 0) this.total(key).entriesReceived += d;
      if (d < 0) add(this.total(key).entriesDropped, 'lost_at_restart', -d);
    }
    return rows;
  }
}
