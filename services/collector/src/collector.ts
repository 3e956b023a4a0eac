import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { Worker } from 'node:worker_threads';
import * as grpc from '@grpc/grpc-js';
import { join } from 'node:path';
import {
  HTTP_REQUEST_COLUMNS,
  STREAM_ACCESS_LOGS_PATH,
  TCP_CONNECTION_COLUMNS,
  DecodeError,
  UNKNOWN_IDENTITY,
  countEntries,
  RecentRows,
} from '@gatescope/als';
import type { ClickHouse } from '@gatescope/clickhouse';
import { loadConfig, type Config } from '@gatescope/config';
import { LedgerBook, NODE_COLUMNS, nodeKey, type BatchOutcome } from '@gatescope/ledger';
import { LiveWindow } from '@gatescope/live-window';
import { DeadLetterStore, mergeTally, WriteAheadLog, type RecoveryReport } from '@gatescope/wal';
import { Registry } from 'prom-client';
import { DeadLetterIndex } from './dead-letter-index.js';
import { DecoderPool } from './decoder-pool.js';
import type { DecodedBatch, DecodeFailure } from './decode-core.js';
import { Ingest, OUT_OF_WINDOW } from './ingest.js';
import { createLedgerMetrics } from './ledger-metrics.js';
import { LedgerWriter } from './ledger-writer.js';
import { createCollectorMetrics } from './metrics.js';

interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface CollectorDeps {
  config: Pick<Config, 'ingest' | 'pathTemplates' | 'retentionDays' | 'dataDir' | 'wal'> &
    Partial<Pick<Config, 'ledger'>>;
  clickhouse: ClickHouse;
  registry?: Registry;
  logger?: Logger;
}

export interface Collector {
  /** Bind the gRPC ALS server; resolves to the bound port (pass 0 for any). */
  listen(host: string, port: number): Promise<number>;
  /** Stop accepting, decode and commit everything received, close streams. Bounded by `timeoutMs`. */
  close(timeoutMs?: number): Promise<void>;
  /** Commit everything received so far to ClickHouse (tests, benchmarks). */
  flush(): Promise<void>;
  /** Rows held in memory: counted in messages being decoded, or decoded and waiting for the next group commit. */
  readonly pendingRows: number;
  /** Bytes held in memory: messages not yet decoded plus decoded rows waiting for the next group commit. */
  readonly pendingBytes: number;
  /** The write-ahead log (diagnostics, tests). */
  readonly wal: WriteAheadLog;
  /** The decoder threads (diagnostics; tests kill one to prove the collector recovers). */
  readonly decoderThreads: readonly (Worker | undefined)[];
  /** Entries per gateway node key received and not yet stored or dropped (the delivery ledger's in flight). */
  inFlight(): ReadonlyMap<string, number>;
  /**
   * The live window: per-second, per-route counters and latency sketches of every entry decoded, kept for the last
   * two minutes; the all-in-one's live server reads its ticks from here instead of ClickHouse.
   */
  readonly liveWindow: LiveWindow;
  /** The last seconds of decoded http rows (the live tail of the all-in-one reads them as they arrive). */
  readonly recentRows: RecentRows;
}

/** The ledger key of entries from a stream that never sent an identifier (the decoder stores them so too). */
const UNKNOWN_KEY = nodeKey(UNKNOWN_IDENTITY);

const TABLES = {
  http_requests: HTTP_REQUEST_COLUMNS.map((c) => c.name),
  tcp_connections: TCP_CONNECTION_COLUMNS.map((c) => c.name),
} as const;

/** The variable that sets each per-message limit of the decoder, and what Envoy's operator can do instead. */
const MESSAGE_LIMITS: Record<string, { variable: string; key: keyof Config['ingest']; instead: string }> = {
  too_many_entries: {
    variable: 'GATESCOPE_ALS_MAX_ENTRIES_PER_MESSAGE',
    key: 'maxEntriesPerMessage',
    instead: "lower Envoy's buffer_size_bytes",
  },
  string_too_long: {
    variable: 'GATESCOPE_ALS_MAX_STRING_BYTES',
    key: 'maxStringBytes',
    instead: "lower Envoy's max_request_headers_kb",
  },
  identifier_too_long: {
    variable: 'GATESCOPE_ALS_MAX_IDENTIFIER_BYTES',
    key: 'maxIdentifierBytes',
    instead: "shorten the node id, node cluster or log_name in Envoy's bootstrap",
  },
};

/** Failures that are gatescope's, not the message's: the client may resend it on a new stream. */
/**
 * Entries handed to the decoder threads and not yet decoded above which streams pause (below half they resume):
 * about 50 ms of the two threads' work. A deeper queue adds no throughput, only delay before entries are seen live.
 */
const DECODE_QUEUE_ROWS = 10_000;
/** The live tail's look at decoded rows: the last 3 s of them (it polls every tick), at most 100k rows. */
const RECENT_ROWS_MS = 3_000;
const RECENT_ROWS_MAX = 100_000;
const TRANSIENT_FAILURES = new Set(['decoder_crashed', 'decoder_unavailable', 'shutdown']);

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

/** A header list's size as HTTP/2 counts it (RFC 7540 6.5.2): name + value + 32 octets per field. */
function headerListBytes(metadata: grpc.Metadata): number {
  let n = 0;
  for (const [name, value] of Object.entries(metadata.toHttp2Headers())) {
    for (const v of Array.isArray(value) ? value : [value]) n += name.length + String(v).length + 32;
  }
  return n;
}

/** Server credentials from the configured files: TLS, and mutual TLS when a client CA is given. */
function serverCredentials(tls: Config['ingest']['tls']): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  const cert = readFileSync(tls.certFile);
  const key = readFileSync(tls.keyFile);
  const ca = tls.clientCaFile ? readFileSync(tls.clientCaFile) : null;
  try {
    // grpc-js would only fail on the first handshake: check the PEM files now, at start.
    createSecureContext({ cert, key, ...(ca && { ca }) });
  } catch (err) {
    throw new Error(
      `GATESCOPE_ALS_TLS_CERT_FILE / GATESCOPE_ALS_TLS_KEY_FILE${ca ? ' / GATESCOPE_ALS_TLS_CLIENT_CA_FILE' : ''} ` +
        `do not hold a usable PEM certificate chain, matching private key${ca ? ' and CA certificate' : ''}: ${(err as Error).message}`,
    );
  }
  return grpc.ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], ca !== null);
}

const noop = () => {};
const silent: Logger = { info: noop, warn: noop, error: noop };

/** An open ALS stream: the call to read from, the callback that answers it, and what its limits track. */
interface OpenStream {
  call: grpc.ServerReadableStream<Buffer, Buffer>;
  answer: grpc.sendUnaryData<Buffer>;
  /** The HTTP/2 connection it came on (its peer address). */
  connection: string;
  /** When its last complete message arrived (or it opened). */
  lastMessageAt: number;
  /** Its gateway node's ledger key, once its identifier was decoded. */
  key?: string;
}

/**
 * The Envoy gRPC Access Log Service sink. Envoy opens one stream per worker thread per logger, sends the
 * identifier only first, never half-closes and ignores replies: so every message is decoded and committed
 * as it arrives, never at end of stream. Messages are passed through gRPC as raw bytes and decoded off the
 * event loop (DecoderPool) straight into ClickHouse Native blocks, written to the write-ahead log and inserted (Ingest).
 *
 * Bounds, each refused on its own stream only (every other stream goes on) and counted by reason:
 * - a message: its size (GATESCOPE_MAX_MESSAGE_BYTES), its entries, a stored string, an identifier string
 *   (the decoder checks these before it writes a row);
 * - a stream: its request headers, streams per connection and in all (refused at open);
 * - idleness: a stream that delivered no complete message for GATESCOPE_ALS_STREAM_IDLE_TIMEOUT_SECONDS while
 *   the collector was reading is closed. An idle Envoy keeps its stream open and silent; it opens a new one
 *   with its next entries. A slow trickle of one message's bytes is idle too: only complete messages count.
 * - time: an entry whose start_time is older than the retention or further ahead than
 *   GATESCOPE_ALS_MAX_CLOCK_SKEW_SECONDS is dead-lettered and counted (the rest of its message is kept), so that
 *   no batch spans more days than an insert may have partitions;
 * - memory: rows in messages being decoded or decoded and not yet written to the WAL, and their bytes; over
 *   either bound the collector stops reading every stream, so HTTP/2 flow control holds Envoy back, and reads
 *   again below half of both;
 * - disk: the WAL's bytes (GATESCOPE_WAL_MAX_BYTES), the same way: while ClickHouse is away or slow, streams are
 *   read into the WAL until it is full, and again once it drained below 90 %.
 */
export async function buildCollector(deps: CollectorDeps): Promise<Collector> {
  const { ingest, retentionDays } = deps.config;
  const walConfig = deps.config.wal;
  const ledgerConfig = deps.config.ledger ?? loadConfig({}).ledger;
  /**
   * Tables are partitioned by day of start_time, and ClickHouse refuses an insert that touches more than
   * `max_partitions_per_insert_block` (100) partitions. Entries must start within the retention (older ones
   * would expire at once) and at most the clock skew ahead, so a batch spans at most retention + 2 days, and each
   * insert allows exactly that many partitions.
   */
  const maxPartitionsPerInsert = Math.max(100, retentionDays + 2);
  const log = deps.logger ?? silent;
  let handledCalls = 0;

  const { wal, recovered, report } = await WriteAheadLog.open({
    dir: join(deps.config.dataDir, 'wal'),
    durable: walConfig.enabled,
    tallyColumns: NODE_COLUMNS,
  });
  const deadLetters = new DeadLetterStore({
    dir: join(deps.config.dataDir, 'dead-letters'),
    collectorId: wal.collectorId,
    durable: walConfig.enabled,
    maxBytes: walConfig.deadLetterMaxBytes,
  });
  const parked = await deadLetters.load();
  const index = new DeadLetterIndex(deps.clickhouse, wal.collectorId, log);
  for (const letter of parked) index.parked(letter);

  const metrics = createCollectorMetrics(
    deps.registry ?? new Registry(),
    { started: () => callsStarted(server), handled: () => handledCalls },
    {
      walBytes: () => wal.bytes,
      walSegments: () => wal.segments,
      oldestUnstored: () => {
        const open = wal.oldestOpen();
        const queued = pipeline.oldestQueued();
        return open === undefined ? queued : queued === undefined ? open : Math.min(open, queued);
      },
      deadLetterFiles: () => deadLetters.files,
      deadLetterEntries: () => deadLetters.entries,
    },
  );
  logRecovery(log, report, walConfig.enabled);

  // The delivery ledger. Its start-up bookkeeping compares ClickHouse with what the WAL holds in flight now,
  // before anything new is added: batches settled before the restart (an outcome next to them) are booked again.
  const book = new LedgerBook(wal.collectorId);
  const settledBefore = recovered.filter((s) => s.resolution !== undefined);
  const walInFlight = new Map(wal.inFlight());
  for (const s of settledBefore) if (s.inFlight) mergeTally(walInFlight, s.tally, -1);
  /** Open streams per node key. */
  const openByNode = new Map<string, number>();
  const writer = new LedgerWriter({
    clickhouse: deps.clickhouse,
    book,
    epoch: wal.epoch,
    openStreams: () => openByNode.keys(),
    heartbeatMs: Math.max(250, Math.min(15_000, ledgerConfig.staleAfterMs / 4)),
    log,
    onError: () => metrics.ledgerInsertErrors.inc(),
  });
  const bookToken = (s: { header: { token: string }; seq: number }) => `${s.header.token}/ledger@${s.seq}`;
  writer.start(
    settledBefore.map((s) => ({ token: bookToken(s), outcome: s.resolution as BatchOutcome })),
    walInFlight,
  );
  createLedgerMetrics(deps.registry ?? new Registry(), book, ledgerConfig.maxMetricNodes, {
    inFlight: () => wal.inFlight(),
    openStreams: () => openByNode,
  });
  /** Ledger keys of streams, kept a minute after they close for messages still being decoded. */
  const streamKeys = new Map<number, string>();
  const keyOf = (stream: number) => streamKeys.get(stream) ?? UNKNOWN_KEY;
  metrics.walTruncatedBytes.inc(report.truncated.reduce((n, t) => n + t.bytes, 0));
  for (const s of recovered) {
    const source = s.header.deadLetter ? 'dead_letter' : 'restart';
    metrics.walReplayedBatches.inc({ source });
    metrics.walReplayedEntries.inc({ source }, s.rows);
  }
  const streams = new Map<number, OpenStream>();
  const streamsPerConnection = new Map<string, number>();
  let nextStream = 0;
  /** Streams are paused: by the memory and WAL bounds (`memoryPaused`) or by the decoders' queue (`decodePaused`). */
  let paused = false;
  let memoryPaused = false;
  let decodePaused = false;
  /** When the collector last started reading streams: time paused by back-pressure is not idleness. */
  let readingSince = Date.now();
  let closing = false;

  /** At most one warning per reason and minute: a flood of refusals must not become a flood of logs. */
  const lastWarned = new Map<string, number>();
  function warnThrottled(reason: string, fields: object, msg: string): void {
    const now = Date.now();
    if (now - (lastWarned.get(reason) ?? -Infinity) < 60_000) return;
    lastWarned.set(reason, now);
    log.warn({ reason, ...fields }, msg);
  }

  const pipeline = new Ingest({
    wal,
    deadLetters,
    clickhouse: deps.clickhouse,
    tables: TABLES,
    batchMaxRows: ingest.batchMaxRows,
    batchMaxDelayMs: ingest.batchMaxDelayMs,
    batchBusyDelayMs: ingest.batchBusyDelayMs,
    syncIntervalMs: walConfig.syncIntervalMs,
    maxPartitionsPerInsert,
    // A group commit holds every entry read before it started: wait until those are decoded.
    beforeCommit: () => pool.settled(),
    tallyColumns: NODE_COLUMNS,
    book: (segment, outcome) => writer.book(bookToken(segment), outcome),
    events: {
      onCommitted(rows, seconds) {
        if (walConfig.enabled) metrics.walDurableEntries.inc(rows);
        metrics.walCommitDuration.observe(seconds);
        updateBackpressure();
      },
      onCommitError(err) {
        metrics.walCommitErrors.inc();
        warnThrottled(
          'wal_commit',
          { err },
          'could not write the write-ahead log (disk full? I/O error?); the rows stay in memory and are written at the next commit, and streams pause if memory fills',
        );
      },
      onInserted(table, rows, seconds, info) {
        metrics.rowsInserted.inc({ table }, rows);
        metrics.insertBatches.inc({ table, outcome: 'ok' });
        metrics.insertDuration.observe({ table }, seconds);
        metrics.insertRows.observe({ table }, rows);
        if (info.duplicate) {
          metrics.insertDuplicates.inc({ table });
          log.info(
            { table, rows },
            'ClickHouse had already stored this batch (an earlier attempt landed): deduplicated by its token, not stored twice',
          );
        }
      },
      onInsertError(table, rows, failure, retryInMs) {
        metrics.insertBatches.inc({ table, outcome: 'error' });
        log.error(
          { err: failure.message, code: failure.code, name: failure.name, table, rows, retryInMs },
          'ClickHouse insert failed; the batch stays in the write-ahead log and is retried with the same bytes and token (streams pause only when GATESCOPE_WAL_MAX_BYTES is reached)',
        );
      },
      onSplit(table, rows, failure, pieces) {
        metrics.insertBatches.inc({ table, outcome: 'refused' });
        log.warn(
          { err: failure.message, code: failure.code, name: failure.name, table, rows, pieces },
          'ClickHouse refused a batch for good; splitting it (by day, then in halves) so that its good rows land and only the refused ones are dead-lettered',
        );
      },
      onDeadLettered(table, rows, reason, letter) {
        if (letter) {
          metrics.entriesDeadLettered.inc({ reason }, rows);
          index.parked(letter);
          log.warn(
            { table, rows, reason, id: letter.id, error: letter.error?.name },
            'entries dead-lettered: see `gatescope dead-letters list`, fix the cause, then `gatescope dead-letters replay`',
          );
        } else {
          metrics.entriesDropped.inc({ reason: 'dead_letter_full' }, rows);
          log.error(
            { table, rows, reason, limit: walConfig.deadLetterMaxBytes },
            'entries dropped: the dead letters are full (GATESCOPE_DEAD_LETTER_MAX_BYTES); replay or remove dead letters, or raise the limit',
          );
        }
      },
      onReplayQueued(batches) {
        for (const b of batches) {
          metrics.walReplayedBatches.inc({ source: 'dead_letter' });
          metrics.walReplayedEntries.inc({ source: 'dead_letter' }, b.rows);
        }
        log.info(
          { batches: batches.length, entries: batches.reduce((n, b) => n + b.rows, 0) },
          'dead letters queued for replay: inserting them',
        );
      },
      onDeadLetterReplayed(table, id, rows) {
        index.replayed(table, id, rows);
      },
      onDrain: () => updateBackpressure(),
      onError(doing, err) {
        warnThrottled(
          'ingest_disk',
          { err, doing },
          'ingest could not use its disk (GATESCOPE_DATA_DIR: full? read-only?); retrying, nothing is dropped',
        );
      },
    },
  });

  const liveWindow = new LiveWindow();
  const recentRows = new RecentRows({ keepMs: RECENT_ROWS_MS, maxRows: RECENT_ROWS_MAX });
  const pool = new DecoderPool(
    {
      workers: ingest.decoderWorkers,
      liveWindow: true,
      pathTemplateRulesJson: deps.config.pathTemplates.rulesJson,
      maxTemplatesPerRoute: deps.config.pathTemplates.maxTemplatesPerRoute,
      limits: {
        maxEntriesPerMessage: ingest.maxEntriesPerMessage,
        maxStringBytes: ingest.maxStringBytes,
        maxIdentifierBytes: ingest.maxIdentifierBytes,
        maxEntryAgeS: retentionDays * 86_400,
        maxEntryFutureS: ingest.maxClockSkewS,
      },
    },
    {
      onDecoded,
      onLive: (partial) => liveWindow.merge(partial),
      onRestart(thread, error, delayMs) {
        metrics.decoderRestarts.inc();
        log.error(
          { thread, err: error, restartInMs: delayMs },
          'an ALS decoder thread died; replacing it. Its streams are ended (Envoy reconnects) and the messages it held were refused',
        );
      },
      onStreamsLost(lost) {
        for (const stream of lost) {
          if (!streams.has(stream)) continue;
          metrics.streamsRefused.inc({ reason: 'decoder_restarted' });
          fail(
            stream,
            grpc.status.UNAVAILABLE,
            'the gatescope decoder thread serving this stream stopped and was replaced; messages already acknowledged were stored. Open a new stream and send the identifier again (Envoy does this with its next entries).',
          );
        }
      },
    },
  );

  /** The stream's gateway node is known: the ledger counts its stream as open under it. */
  function identify(stream: number, key: string): void {
    streamKeys.set(stream, key);
    const open = streams.get(stream);
    if (!open || open.key === key) return;
    if (open.key !== undefined) streamGone(open.key);
    open.key = key;
    openByNode.set(key, (openByNode.get(key) ?? 0) + 1);
    book.streamOpened(key);
  }

  function streamGone(key: string): void {
    const n = (openByNode.get(key) ?? 1) - 1;
    if (n > 0) openByNode.set(key, n);
    else openByNode.delete(key);
    book.streamClosed(key);
  }

  /**
   * A refused message, under its stream's node. Refused before its stream's first message was decoded (a bad
   * second message is refused on arrival), the node is known once the messages read before it are decoded.
   */
  function bookRejection(stream: number, reason: string): void {
    const book1 = () => {
      book.message(keyOf(stream));
      book.rejected(keyOf(stream), reason);
    };
    if (streamKeys.has(stream)) book1();
    else void pool.settled().then(book1, book1);
  }

  function onDecoded(batch: DecodedBatch, waitedMs: readonly number[]): void {
    // Rows per gateway node in each of the batch's blocks, booked as their messages are.
    const tallies = { http: new Map<string, number>(), tcp: new Map<string, number>() };
    const outsideTallies = { http: new Map<string, number>(), tcp: new Map<string, number>() };
    batch.messages.forEach((result, i) => {
      const { stream } = result;
      metrics.decodeDelay.observe(waitedMs[i] / 1000);
      if (result.identity) identify(stream, nodeKey(result.identity));
      if (!result.ok) {
        refuseMessage(stream, result);
        return;
      }
      const key = keyOf(stream);
      book.message(key);
      for (const [kind, inside, outside] of [
        ['http', result.http, result.outsideHttp],
        ['tcp', result.tcp, result.outsideTcp],
      ] as const) {
        if (inside + outside === 0) continue;
        metrics.entriesReceived.inc({ type: kind }, inside + outside);
        book.received(key, inside + outside);
        if (inside > 0) tallies[kind].set(key, (tallies[kind].get(key) ?? 0) + inside);
        if (outside > 0) outsideTallies[kind].set(key, (outsideTallies[kind].get(key) ?? 0) + outside);
      }
      if (result.outsideHttp + result.outsideTcp > 0) {
        warnThrottled(
          'start_time_out_of_range',
          { stream, entries: result.outsideHttp + result.outsideTcp },
          `ALS entries dead-lettered: their start_time is older than GATESCOPE_RETENTION_DAYS=${retentionDays} or more than GATESCOPE_ALS_MAX_CLOCK_SKEW_SECONDS=${ingest.maxClockSkewS} ahead (check the gateway's clock)`,
        );
      }
    });
    for (const table of ['http_requests', 'tcp_connections'] as const) {
      const kind = table === 'http_requests' ? 'http' : 'tcp';
      const inside = batch[kind];
      if (inside.rows > 0) {
        const block = asBuffer(inside.data);
        pipeline.add(table, block, inside.rows, tallies[kind], inside.streams);
        if (kind === 'http') recentRows.add(block, inside.rows, inside.streams);
      }
      const outside = batch.outside[kind];
      if (outside.rows > 0)
        pipeline.addOutOfWindow(table, asBuffer(outside.data), outside.rows, outsideTallies[kind]);
    }
    updateBackpressure();
  }

  /** A message that was not stored: the stream ends with a status that says why and what to change. */
  function refuseMessage(stream: number, result: DecodeFailure): void {
    const { reason, message } = result;
    metrics.messagesRejected.inc({ reason });
    bookRejection(stream, reason);
    const kept = 'Earlier messages on this stream were stored, this one was not';
    if (TRANSIENT_FAILURES.has(reason)) {
      log.warn({ stream, reason, err: message }, 'ALS message not decoded; stream closed with UNAVAILABLE');
      fail(
        stream,
        grpc.status.UNAVAILABLE,
        `gatescope could not decode this StreamAccessLogsMessage (${reason}): ${message}. ${kept}; send it again on a new stream with the identifier.`,
      );
    } else if (result.limit) {
      const limit = MESSAGE_LIMITS[reason];
      warnThrottled(
        reason,
        { stream, err: message },
        'ALS message over a limit; stream closed with RESOURCE_EXHAUSTED',
      );
      fail(
        stream,
        grpc.status.RESOURCE_EXHAUSTED,
        `gatescope refused a StreamAccessLogsMessage (${reason}): ${message}. ${kept}.` +
          (limit ? ` ${limit.instead}, or raise ${limit.variable}=${ingest[limit.key]}.` : ''),
      );
    } else {
      warnThrottled(
        reason,
        { stream, err: message },
        'malformed ALS message; stream closed with INVALID_ARGUMENT',
      );
      fail(
        stream,
        grpc.status.INVALID_ARGUMENT,
        `gatescope could not decode a StreamAccessLogsMessage (${reason}): ${message}. ${kept}; reconnect and send valid envoy.service.accesslog.v3 messages.`,
      );
    }
  }

  /** Rows in memory: entries of messages not decoded yet (counted on arrival), decoded rows not yet in the WAL. */
  const pendingRows = () => wal.pendingRows + pool.inflightRows;
  /** Bytes in memory: messages not decoded yet, decoded rows not yet in the WAL. */
  const pendingBytes = () => wal.pendingBytes + pool.inflightBytes;
  /** Bytes on their way to ClickHouse: the WAL on disk and what the next commit adds to it. */
  const walBytes = () => wal.bytes + wal.pendingBytes;

  function updateBackpressure(): void {
    const rows = pendingRows();
    const bytes = pendingBytes();
    const disk = walBytes();
    metrics.pendingRows.set(rows);
    metrics.pendingBytes.set(bytes);
    const walFull = disk >= walConfig.maxBytes;
    if (!memoryPaused && (rows >= ingest.maxPendingRows || bytes >= ingest.maxPendingBytes || walFull)) {
      memoryPaused = true;
      metrics.backpressure.set(1);
      if (walFull)
        warnThrottled(
          'wal_full',
          { walBytes: disk, limit: walConfig.maxBytes },
          'the write-ahead log is full (GATESCOPE_WAL_MAX_BYTES): ClickHouse is behind or away; ALS streams are paused until it drains',
        );
    } else if (
      memoryPaused &&
      rows < ingest.maxPendingRows / 2 &&
      bytes < ingest.maxPendingBytes / 2 &&
      disk < walConfig.maxBytes * 0.9
    ) {
      memoryPaused = false;
      metrics.backpressure.set(0);
    }
    // Entries wait where they are cheapest to wait and count as not yet arrived: in the client's HTTP/2 window,
    // not in a queue in front of the decoders (what is read is decoded, and seen live, within milliseconds).
    const queued = pool.inflightRows;
    if (!decodePaused && queued >= DECODE_QUEUE_ROWS) decodePaused = true;
    else if (decodePaused && queued <= DECODE_QUEUE_ROWS / 2) decodePaused = false;
    const pause = memoryPaused || decodePaused;
    if (pause === paused) return;
    paused = pause;
    if (!pause) readingSince = Date.now();
    for (const s of streams.values()) {
      if (pause) s.call.pause();
      else s.call.resume();
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
    const open = streams.get(stream);
    if (!open) return;
    streams.delete(stream);
    if (open.key !== undefined) streamGone(open.key);
    setTimeout(() => streamKeys.delete(stream), 60_000).unref();
    const n = (streamsPerConnection.get(open.connection) ?? 1) - 1;
    if (n > 0) streamsPerConnection.set(open.connection, n);
    else streamsPerConnection.delete(open.connection);
    metrics.openStreams.dec();
    pool.end(stream);
  }

  const idleMs = ingest.streamIdleTimeoutS * 1000;
  const idleSweep =
    idleMs > 0
      ? setInterval(
          () => {
            if (paused) return;
            const now = Date.now();
            for (const [stream, open] of streams) {
              if (now - Math.max(open.lastMessageAt, readingSince) < idleMs) continue;
              metrics.streamsRefused.inc({ reason: 'idle' });
              fail(
                stream,
                grpc.status.RESOURCE_EXHAUSTED,
                `no complete StreamAccessLogsMessage for ${ingest.streamIdleTimeoutS} s (GATESCOPE_ALS_STREAM_IDLE_TIMEOUT_SECONDS): the stream is closed to free its slot. Open a new one when there are entries to send (Envoy does this by itself).`,
              );
            }
          },
          Math.max(100, Math.min(idleMs / 4, 30_000)),
        )
      : undefined;
  idleSweep?.unref();

  const server = new grpc.Server({
    // Refused by grpc-js from the 5-byte length prefix, before the body is buffered. Between the two limits
    // the handler refuses and counts it; above twice the limit grpc-js answers RESOURCE_EXHAUSTED itself.
    'grpc.max_receive_message_length': ingest.maxMessageBytes * 2,
    'grpc.keepalive_permit_without_calls': 1,
    // A connection that carries no stream for as long as a stream may stay idle is closed (GOAWAY).
    ...(idleMs > 0 && { 'grpc.max_connection_idle_ms': idleMs }),
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
    const refuse = (reason: string, details: string) => {
      metrics.streamsRefused.inc({ reason });
      warnThrottled(reason, { peer: call.getPeer() }, `ALS stream refused (${reason})`);
      callback({ code: grpc.status.RESOURCE_EXHAUSTED, details });
    };
    const headerBytes = headerListBytes(call.metadata);
    if (headerBytes > ingest.maxHeaderBytes) {
      refuse(
        'headers_too_large',
        `the request headers are ${headerBytes} bytes (HTTP/2 accounting), above GATESCOPE_ALS_MAX_HEADER_BYTES=${ingest.maxHeaderBytes}; send less initial_metadata or raise the limit.`,
      );
      return;
    }
    if (streams.size >= ingest.maxStreams) {
      refuse(
        'too_many_streams',
        `gatescope already serves ${streams.size} ALS streams (GATESCOPE_ALS_MAX_STREAMS=${ingest.maxStreams}); retry later, spread gateways over more collectors, or raise the limit.`,
      );
      return;
    }
    const connection = call.getPeer();
    const onConnection = streamsPerConnection.get(connection) ?? 0;
    if (onConnection >= ingest.maxStreamsPerConnection) {
      refuse(
        'too_many_streams_per_connection',
        `this connection already carries ${onConnection} ALS streams (GATESCOPE_ALS_MAX_STREAMS_PER_CONNECTION=${ingest.maxStreamsPerConnection}); open another connection or raise the limit.`,
      );
      return;
    }
    const stream = ++nextStream;
    streamsPerConnection.set(connection, onConnection + 1);
    streams.set(stream, { call, answer: callback, connection, lastMessageAt: Date.now() });
    metrics.openStreams.inc();
    if (paused) call.pause();
    call.on('data', (message: Buffer) => {
      const open = streams.get(stream);
      if (!open) return;
      open.lastMessageAt = Date.now();
      metrics.messagesReceived.inc();
      if (message.length > ingest.maxMessageBytes) {
        metrics.messagesRejected.inc({ reason: 'oversized' });
        bookRejection(stream, 'oversized');
        fail(
          stream,
          grpc.status.RESOURCE_EXHAUSTED,
          `StreamAccessLogsMessage of ${message.length} bytes exceeds GATESCOPE_MAX_MESSAGE_BYTES=${ingest.maxMessageBytes}; lower Envoy's buffer_size_bytes or raise the limit.`,
        );
        return;
      }
      // Count its entries now (one tag and length each, at most the limit + 1): back-pressure then knows the
      // rows this message will become before a decoder thread makes them, and a bomb never leaves this thread.
      let entries: number;
      try {
        entries = countEntries(message, ingest.maxEntriesPerMessage);
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
        refuseMessage(stream, {
          ok: false,
          stream,
          reason: err.reason,
          message: err.message,
          limit: err.isLimit,
        });
        return;
      }
      pool.submit(stream, message, entries);
      updateBackpressure();
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

  pipeline.replay(recovered);
  // While ClickHouse is behind, nothing decoded arrives to re-check the WAL's bound: the inserts' drains do.
  updateBackpressure();

  return {
    get pendingRows() {
      return pendingRows();
    },
    get pendingBytes() {
      return pendingBytes();
    },
    get decoderThreads() {
      return pool.threads;
    },
    inFlight: () => wal.inFlight(),
    wal,
    liveWindow,
    recentRows,
    async listen(host, port) {
      const address = host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
      const credentials = serverCredentials(ingest.tls);
      return new Promise<number>((resolve, reject) =>
        server.bindAsync(address, credentials, (err, bound) => (err ? reject(err) : resolve(bound))),
      );
    },
    async flush() {
      // A barrier, not "until nothing is left": the messages read so far are decoded, then their rows stored.
      await pool.settled();
      await pipeline.flush();
      await writer.flush();
    },
    async close(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      closing = true;
      if (idleSweep) clearInterval(idleSweep);
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
      // Everything received is written to the WAL now; then as much as ClickHouse takes before the deadline.
      // Leave a little time to close the rest cleanly.
      const complete = await pipeline.flush(deadline - Math.min(2_000, timeoutMs / 10), Infinity);
      await pipeline.stop();
      const left = await wal.close();
      const rows = left.reduce((n, s) => n + s.rows, 0) + pipeline.queuedRows();
      if (!complete) {
        if (walConfig.enabled) {
          log.warn(
            { batches: pipeline.queuedBatches + left.length, rows },
            'shutdown deadline passed before ClickHouse stored every batch: they stay in the write-ahead log and are replayed at the next start',
          );
        } else {
          metrics.entriesDropped.inc({ reason: 'shutdown_timeout' }, rows);
          log.error(
            { rows },
            'shutdown deadline passed before ClickHouse committed every row, and the write-ahead log is off (GATESCOPE_WAL_ENABLED=0): they are lost',
          );
        }
      }
      await writer.close(Math.max(500, Math.min(2_000, deadline - Date.now())));
      await index.flush();
      await pool.close();
    },
  };
}

const asBuffer = (data: Uint8Array) => Buffer.from(data.buffer, data.byteOffset, data.byteLength);

/** One log line at start saying what the write-ahead log held and what was done with it. */
function logRecovery(log: Logger, report: RecoveryReport, enabled: boolean): void {
  for (const t of report.truncated)
    log.warn(
      t,
      'write-ahead log: cut a torn tail (a crash or power loss while writing; those bytes were never durable)',
    );
  for (const d of report.discarded)
    if (d.reason !== 'the WAL is off')
      log.warn(d, 'write-ahead log: removed a segment that never held a durable row');
  if (report.staleLock)
    log.info(
      report.staleLock,
      'write-ahead log: the previous process did not stop cleanly; took over its lock',
    );
  const lanes = Object.entries(report.lanes);
  if (lanes.length === 0) {
    log.info(
      { enabled, discarded: report.discarded.length },
      enabled ? 'write-ahead log: nothing to replay' : 'write-ahead log is off (GATESCOPE_WAL_ENABLED=0)',
    );
    return;
  }
  const summary = Object.fromEntries(
    lanes.map(([lane, l]) => [
      lane,
      { batches: l.segments, entries: l.rows, bytes: l.bytes, oldest: new Date(l.oldest).toISOString() },
    ]),
  );
  const entries = lanes.reduce((n, [lane, l]) => n + (lane.endsWith(OUT_OF_WINDOW) ? 0 : l.rows), 0);
  log.info(
    { replay: summary },
    `write-ahead log: replaying ${lanes.reduce((n, [, l]) => n + l.segments, 0)} batches (${entries} entries) left by the previous process, oldest first; ClickHouse deduplicates any it had already stored`,
  );
}
