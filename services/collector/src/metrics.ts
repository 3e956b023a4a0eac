import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Calls the gRPC server started (all methods) and calls that reached the ALS handler. */
export interface CallCounts {
  started(): Promise<number>;
  handled(): number;
}

/** What the gauges read when scraped. */
export interface CollectorGauges {
  walBytes(): number;
  walSegments(): number;
  /** When the oldest row not yet in ClickHouse arrived (undefined: none). */
  oldestUnstored(): number | undefined;
  deadLetterFiles(): number;
  deadLetterEntries(): number;
}

/** The collector's Prometheus metrics, registered into the process's registry. */
export function createCollectorMetrics(registry: Registry, calls: CallCounts, gauges: CollectorGauges) {
  const registers = [registry];
  let unimplementedSeen = 0;
  return {
    unimplementedCalls: new Counter({
      name: 'gatescope_als_unimplemented_calls_total',
      help: 'gRPC calls to a method other than AccessLogService/StreamAccessLogs, answered UNIMPLEMENTED.',
      registers,
      async collect() {
        // grpc-js answers unknown methods itself; its channelz counts every call started on the server.
        const unimplemented = (await calls.started()) - calls.handled();
        if (unimplemented > unimplementedSeen) this.inc(unimplemented - unimplementedSeen);
        unimplementedSeen = Math.max(unimplementedSeen, unimplemented);
      },
    }),
    ledgerInsertErrors: new Counter({
      name: 'gatescope_ingest_ledger_insert_errors_total',
      help: 'Failed inserts into the delivery ledger (ingest_ledger); each is retried with the same rows and token.',
      registers,
    }),
    messagesReceived: new Counter({
      name: 'gatescope_als_messages_received_total',
      help: 'StreamAccessLogsMessages received over gRPC ALS.',
      registers,
    }),
    entriesReceived: new Counter({
      name: 'gatescope_als_entries_received_total',
      help: 'Access-log entries decoded from ALS messages, by log type (http, tcp).',
      labelNames: ['type'] as const,
      registers,
    }),
    messagesRejected: new Counter({
      name: 'gatescope_als_messages_rejected_total',
      help: 'ALS messages refused (the stream gets a gRPC error), by reason: oversized, malformed_protobuf, too_many_entries, string_too_long, identifier_too_long, decoder_crashed, ...',
      labelNames: ['reason'] as const,
      registers,
    }),
    entriesDropped: new Counter({
      name: 'gatescope_als_entries_dropped_total',
      help: 'Decoded entries that were never stored nor dead-lettered, by reason: dead_letter_full (GATESCOPE_DEAD_LETTER_MAX_BYTES), shutdown_timeout (only with the WAL off).',
      labelNames: ['reason'] as const,
      registers,
    }),
    entriesDeadLettered: new Counter({
      name: 'gatescope_als_entries_dead_lettered_total',
      help: 'Entries written to the dead letters (GATESCOPE_DATA_DIR/dead-letters), by reason: insert_refused (ClickHouse refused the rows for good), start_time_out_of_range.',
      labelNames: ['reason'] as const,
      registers,
    }),
    deadLetterFiles: new Gauge({
      name: 'gatescope_dead_letter_files',
      help: 'Dead-letter files on this collector waiting for `gatescope dead-letters replay`.',
      registers,
      collect() {
        this.set(gauges.deadLetterFiles());
      },
    }),
    deadLetterEntries: new Gauge({
      name: 'gatescope_dead_letter_entries',
      help: 'Entries in the dead-letter files on this collector.',
      registers,
      collect() {
        this.set(gauges.deadLetterEntries());
      },
    }),
    walBytes: new Gauge({
      name: 'gatescope_wal_bytes',
      help: 'Bytes in the write-ahead log: accepted rows not yet stored in ClickHouse (GATESCOPE_WAL_MAX_BYTES bounds it).',
      registers,
      collect() {
        this.set(gauges.walBytes());
      },
    }),
    walSegments: new Gauge({
      name: 'gatescope_wal_segments',
      help: 'Batches in the write-ahead log (the one being filled included).',
      registers,
      collect() {
        this.set(gauges.walSegments());
      },
    }),
    walOldestAge: new Gauge({
      name: 'gatescope_wal_oldest_unflushed_age_seconds',
      help: 'Age of the oldest accepted row not yet stored in ClickHouse (0 when none).',
      registers,
      collect() {
        const t = gauges.oldestUnstored();
        this.set(t === undefined ? 0 : Math.max(0, (Date.now() - t) / 1000));
      },
    }),
    walDurableEntries: new Counter({
      name: 'gatescope_wal_entries_durable_total',
      help: 'Entries made durable in the write-ahead log (fdatasync of a group commit): from then on a crash or power loss does not lose them.',
      registers,
    }),
    walCommitDuration: new Histogram({
      name: 'gatescope_wal_commit_duration_seconds',
      help: 'Time of one group commit (write and fdatasync).',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    }),
    walCommitErrors: new Counter({
      name: 'gatescope_wal_commit_errors_total',
      help: 'Group commits that failed (disk full, I/O error); their rows stay in memory and are tried again.',
      registers,
    }),
    walReplayedBatches: new Counter({
      name: 'gatescope_wal_replayed_batches_total',
      help: 'Batches replayed from the write-ahead log: left by an earlier process at start, or dead letters queued for replay.',
      labelNames: ['source'] as const,
      registers,
    }),
    walReplayedEntries: new Counter({
      name: 'gatescope_wal_replayed_entries_total',
      help: 'Entries in the replayed batches.',
      labelNames: ['source'] as const,
      registers,
    }),
    walTruncatedBytes: new Counter({
      name: 'gatescope_wal_truncated_bytes_total',
      help: 'Bytes cut off torn segment tails at start (a crash or power loss while writing); never durable rows.',
      registers,
    }),
    insertDuplicates: new Counter({
      name: 'gatescope_clickhouse_insert_duplicates_total',
      help: 'Retried or replayed batches ClickHouse had already stored (insert deduplication token seen before): written once, not twice.',
      labelNames: ['table'] as const,
      registers,
    }),
    streamsRefused: new Counter({
      name: 'gatescope_als_streams_refused_total',
      help: 'ALS streams refused at open or ended by the collector (not by a message), by reason: too_many_streams, too_many_streams_per_connection, headers_too_large, idle, decoder_restarted.',
      labelNames: ['reason'] as const,
      registers,
    }),
    decoderRestarts: new Counter({
      name: 'gatescope_als_decoder_restarts_total',
      help: 'Decoder threads that died (crash, out of memory) and were replaced.',
      registers,
    }),
    openStreams: new Gauge({
      name: 'gatescope_als_open_streams',
      help: 'ALS gRPC streams currently open.',
      registers,
    }),
    rowsInserted: new Counter({
      name: 'gatescope_clickhouse_rows_inserted_total',
      help: 'Rows committed to ClickHouse, by table.',
      labelNames: ['table'] as const,
      registers,
    }),
    insertBatches: new Counter({
      name: 'gatescope_clickhouse_insert_batches_total',
      help: 'Inserts sent to ClickHouse, by table and outcome: ok, error (transient: retried), refused (permanent: the batch is split).',
      labelNames: ['table', 'outcome'] as const,
      registers,
    }),
    insertDuration: new Histogram({
      name: 'gatescope_clickhouse_insert_duration_seconds',
      help: 'Time to commit one insert batch to ClickHouse.',
      labelNames: ['table'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    decodeDelay: new Histogram({
      name: 'gatescope_als_decode_delay_seconds',
      help: 'Time from a message being read off its stream to its entries being decoded (queue and decoding): how late the live view sees them.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    insertRows: new Histogram({
      name: 'gatescope_clickhouse_insert_rows',
      help: 'Rows per insert committed to ClickHouse (batch size), by table.',
      labelNames: ['table'] as const,
      buckets: [1, 10, 100, 500, 1_000, 5_000, 10_000, 50_000, 100_000, 500_000],
      registers,
    }),
    pendingRows: new Gauge({
      name: 'gatescope_ingest_pending_rows',
      help: 'Rows held in memory: in messages being decoded, or decoded and waiting for the next group commit.',
      registers,
    }),
    pendingBytes: new Gauge({
      name: 'gatescope_ingest_pending_bytes',
      help: 'Bytes held in memory: ALS messages being decoded plus decoded rows waiting for the next group commit.',
      registers,
    }),
    backpressure: new Gauge({
      name: 'gatescope_ingest_backpressure',
      help: '1 while the collector has stopped reading ALS streams: memory bounds reached, or the write-ahead log full (ClickHouse behind).',
      registers,
    }),
  };
}

export type CollectorMetrics = ReturnType<typeof createCollectorMetrics>;
