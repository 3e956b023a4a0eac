import * as grpc from '@grpc/grpc-js';
import {
  HTTP_REQUEST_COLUMNS,
  STREAM_ACCESS_LOGS_PATH,
  TCP_CONNECTION_COLUMNS,
  concatNativeBlocks,
} from '@gatescope/als';
import type { ClickHouse } from '@gatescope/clickhouse';
import type { Config } from '@gatescope/config';
import { Registry } from 'prom-client';
import { Batcher } from './batcher.js';
import { DecoderPool } from './decoder-pool.js';
import type { DecodedMessage, DecodeFailure } from './decode-core.js';
import { createCollectorMetrics } from './metrics.js';

interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface CollectorDeps {
  config: Pick<Config, 'ingest' | 'pathTemplates'>;
  clickhouse: ClickHouse;
  registry?: Registry;
  logger?: Logger;
}

export interface Collector {
  /** Bind the gRPC ALS server; resolves to the bound port (pass 0 for any). */
  listen(host: string, port: number): Promise<number>;
  /** Stop accepting, decode and commit everything received, close streams. Bounded by `timeoutMs`. */
  close(timeoutMs?: number): Promise<void>;
  /** Commit everything received so far (tests, benchmarks). */
  flush(): Promise<void>;
  readonly pendingRows: number;
}

const TABLES = {
  http: { table: 'http_requests', columns: HTTP_REQUEST_COLUMNS.map((c) => c.name) },
  tcp: { table: 'tcp_connections', columns: TCP_CONNECTION_COLUMNS.map((c) => c.name) },
} as const;

/** Calls started on the server, any method, from grpc-js's channelz (0 when channelz is off). */
function callsStarted(server: grpc.Server): Promise<number> {
  return new Promise((resolve) => {
    const request = { request: { server_id: server.getChannelzRef().id } };
    grpc
      .getChannelzHandlers()
      .GetServer(request as never, (err, res) =>
        resolve(err ? 0 : Number(res?.server?.data?.calls_started ?? 0)),
      );
  });
}

const noop = () => {};
const silent: Logger = { info: noop, warn: noop, error: noop };

/** An open ALS stream: the call to read from, and the callback that answers it (client streaming). */
interface OpenStream {
  call: grpc.ServerReadableStream<Buffer, Buffer>;
  answer: grpc.sendUnaryData<Buffer>;
}

/**
 * The Envoy gRPC Access Log Service sink. Envoy opens one stream per worker thread per logger, sends the
 * identifier only first, never half-closes and ignores replies: so every message is decoded and committed
 * as it arrives, never at end of stream. Messages are passed through gRPC as raw bytes and decoded off the
 * event loop (DecoderPool) straight into ClickHouse Native blocks, batched (Batcher) and inserted.
 */
export function buildCollector(deps: CollectorDeps): Collector {
  const { ingest } = deps.config;
  const log = deps.logger ?? silent;
  let handledCalls = 0;
  const metrics = createCollectorMetrics(deps.registry ?? new Registry(), {
    started: () => callsStarted(server),
    handled: () => handledCalls,
  });
  const streams = new Map<number, OpenStream>();
  let nextStream = 0;
  let paused = false;
  let closing = false;

  const batcher = new Batcher({
    maxRows: ingest.batchMaxRows,
    maxDelayMs: ingest.batchMaxDelayMs,
    insert: (table, data) => {
      const t = table === 'http_requests' ? TABLES.http : TABLES.tcp;
      // One Native block per ALS message (~100 rows) is mostly per-block overhead for ClickHouse: merge the batch.
      return deps.clickhouse.insertNative(t.table, t.columns, concatNativeBlocks(data));
    },
    onInserted: (table, rows, seconds) => {
      metrics.rowsInserted.inc({ table }, rows);
      metrics.insertBatches.inc({ table, outcome: 'ok' });
      metrics.insertDuration.observe({ table }, seconds);
    },
    onInsertError: (table, rows, error, retryInMs) => {
      metrics.insertBatches.inc({ table, outcome: 'error' });
      log.error(
        { err: error, table, rows, retryInMs },
        'ClickHouse insert failed; the batch is kept in memory and retried (ALS streams are paused while too much is pending)',
      );
    },
    onDrain: () => updateBackpressure(),
  });

  const pool = new DecoderPool(
    ingest.decoderWorkers,
    {
      pathTemplateRulesJson: deps.config.pathTemplates.rulesJson,
      maxTemplatesPerRoute: deps.config.pathTemplates.maxTemplatesPerRoute,
    },
    onDecoded,
  );

  function onDecoded(stream: number, result: DecodedMessage | DecodeFailure): void {
    if (!result.ok) {
      metrics.messagesRejected.inc({ reason: result.reason });
      log.warn(
        { stream, reason: result.reason, err: result.message },
        'malformed ALS message; stream closed with INVALID_ARGUMENT',
      );
      fail(
        stream,
        grpc.status.INVALID_ARGUMENT,
        `gatescope could not decode a StreamAccessLogsMessage (${result.reason}): ${result.message}. Earlier messages on this stream were stored; reconnect and send valid envoy.service.accesslog.v3 messages.`,
      );
    } else {
      if (result.http.rows > 0) {
        metrics.entriesReceived.inc({ type: 'http' }, result.http.rows);
        batcher.add(
          TABLES.http.table,
          Buffer.from(result.http.data.buffer, result.http.data.byteOffset, result.http.data.byteLength),
          result.http.rows,
        );
      }
      if (result.tcp.rows > 0) {
        metrics.entriesReceived.inc({ type: 'tcp' }, result.tcp.rows);
        batcher.add(
          TABLES.tcp.table,
          Buffer.from(result.tcp.data.buffer, result.tcp.data.byteOffset, result.tcp.data.byteLength),
          result.tcp.rows,
        );
      }
    }
    updateBackpressure();
  }

  /** Rows not committed yet, plus a conservative estimate for messages still being decoded. */
  function pendingRows(): number {
    return batcher.pendingRows + pool.inflight * 100;
  }

  function updateBackpressure(): void {
    const pending = pendingRows();
    metrics.pendingRows.set(batcher.pendingRows);
    if (!paused && pending >= ingest.maxPendingRows) {
      paused = true;
      metrics.backpressure.set(1);
      for (const s of streams.values()) s.call.pause();
    } else if (paused && pending < ingest.maxPendingRows / 2) {
      paused = false;
      metrics.backpressure.set(0);
      for (const s of streams.values()) s.call.resume();
    }
  }

  /** End one stream with a gRPC error; every other stream goes on. */
  function fail(stream: number, code: grpc.status, details: string): void {
    const open = streams.get(stream);
    if (!open) return;
    closeStream(stream);
    open.answer({ code, details });
  }

  function closeStream(stream: number): void {
    if (!streams.delete(stream)) return;
    metrics.openStreams.dec();
    pool.end(stream);
  }

  const server = new grpc.Server({
    // grpc-js refuses anything above this outright (RESOURCE_EXHAUSTED); between the two limits we count it.
    'grpc.max_receive_message_length': ingest.maxMessageBytes * 2,
    'grpc.keepalive_permit_without_calls': 1,
  });

  const handler: grpc.handleClientStreamingCall<Buffer, Buffer> = (call, callback) => {
    handledCalls++;
    if (closing) {
      callback({
        code: grpc.status.UNAVAILABLE,
        details: 'gatescope is shutting down; retry against another instance',
      });
      return;
    }
    const stream = ++nextStream;
    streams.set(stream, { call, answer: callback });
    metrics.openStreams.inc();
    if (paused) call.pause();
    call.on('data', (message: Buffer) => {
      if (!streams.has(stream)) return;
      metrics.messagesReceived.inc();
      if (message.length > ingest.maxMessageBytes) {
        metrics.messagesRejected.inc({ reason: 'oversized' });
        fail(
          stream,
          grpc.status.RESOURCE_EXHAUSTED,
          `StreamAccessLogsMessage of ${message.length} bytes exceeds GATESCOPE_MAX_MESSAGE_BYTES=${ingest.maxMessageBytes}; lower Envoy's buffer_size_bytes or raise the limit.`,
        );
        return;
      }
      pool.submit(stream, message);
      if (!paused && pendingRows() >= ingest.maxPendingRows) updateBackpressure();
    });
    call.on('end', () => {
      // Envoy never half-closes, but other clients may: answer with the empty StreamAccessLogsResponse.
      if (streams.has(stream)) {
        closeStream(stream);
        callback(null, Buffer.alloc(0));
      }
    });
    call.on('error', () => closeStream(stream));
    call.on('close', () => closeStream(stream));
  };

  server.addService(
    {
      StreamAccessLogs: {
        path: STREAM_ACCESS_LOGS_PATH,
        requestStream: true,
        responseStream: false,
        // Raw bytes in: the decoder works on the wire format directly.
        requestDeserialize: (b: Buffer) => b,
        requestSerialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
    } as grpc.ServiceDefinition,
    { StreamAccessLogs: handler } as grpc.UntypedServiceImplementation,
  );

  return {
    get pendingRows() {
      return pendingRows();
    },
    listen(host, port) {
      const address = host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
      return new Promise((resolve, reject) =>
        server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, bound) =>
          err ? reject(err) : resolve(bound),
        ),
      );
    },
    async flush() {
      await pool.idle();
      await batcher.flush();
    },
    async close(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      closing = true;
      // Stop accepting new streams; ask open ones to go (Envoy reconnects elsewhere).
      await new Promise<void>((resolve) => {
        const t = setTimeout(
          () => {
            server.forceShutdown();
            resolve();
          },
          Math.min(5_000, timeoutMs),
        );
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
        for (const [stream, open] of streams) {
          closeStream(stream);
          open.answer(null, Buffer.alloc(0));
        }
      });
      await Promise.race([
        pool.idle(),
        new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now()))),
      ]);
      batcher.close();
      const complete = await batcher.flush(deadline);
      if (!complete) {
        const lost = batcher.pendingRows;
        metrics.entriesDropped.inc({ reason: 'shutdown_timeout' }, lost);
        log.error({ rows: lost }, 'shutdown deadline passed before ClickHouse committed every row');
      }
      await pool.close();
    },
  };
}
