import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Calls the gRPC server started (all methods) and calls that reached the ALS handler. */
export interface CallCounts {
  started(): Promise<number>;
  handled(): number;
}

/** The collector's Prometheus metrics, registered into the process's registry. */
export function createCollectorMetrics(registry: Registry, calls: CallCounts) {
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
      help: 'Decoded entries that were never stored, by reason (e.g. shutdown_timeout).',
      labelNames: ['reason'] as const,
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
      help: 'Insert batches sent to ClickHouse, by table and outcome (ok, error).',
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
    pendingRows: new Gauge({
      name: 'gatescope_ingest_pending_rows',
      help: 'Rows accepted and not yet committed to ClickHouse (buffered or being inserted).',
      registers,
    }),
    pendingBytes: new Gauge({
      name: 'gatescope_ingest_pending_bytes',
      help: 'Bytes held for ingest: decoded rows not yet committed plus ALS messages not yet decoded.',
      registers,
    }),
    backpressure: new Gauge({
      name: 'gatescope_ingest_backpressure',
      help: '1 while the collector has stopped reading ALS streams because ClickHouse is behind.',
      registers,
    }),
  };
}

export type CollectorMetrics = ReturnType<typeof createCollectorMetrics>;
