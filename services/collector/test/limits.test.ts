import * as grpc from '@grpc/grpc-js';
import type { ClickHouse } from '@gatescope/clickhouse';
import { buildCollector } from '@gatescope/collector';
import type { Config } from '@gatescope/config';
import { join } from 'node:path';
import { readNative } from '@gatescope/als';
import { listDeadLetters, readDeadLetterRows } from '@gatescope/wal';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ISTIO_HTTP_STREAM, emptyEntriesMessage } from '../../../test/fixtures/als.js';
import {
  alsClient,
  collectorConfig,
  countRows,
  httpEntry,
  message,
  metric,
  until,
  openTestEngine,
} from './helpers.js';

let ch: ClickHouse;
beforeAll(async () => {
  ch = await openTestEngine('gs-limits-');
});
afterAll(async () => {
  await ch?.close();
});

/** A collector with some limits changed, on port 0, closed after the test. */
async function start(
  over: Partial<Config['ingest']>,
  clickhouse = ch,
  wal: Parameters<typeof collectorConfig>[1] = {},
) {
  const registry = new Registry();
  const config = collectorConfig(over, wal);
  const collector = await buildCollector({ config, clickhouse, registry });
  const port = await collector.listen('127.0.0.1', 0);
  const clients: ReturnType<typeof alsClient>[] = [];
  return {
    collector,
    registry,
    port,
    config,
    /** A new client: a connection of its own. */
    client() {
      const c = alsClient(port);
      clients.push(c);
      return c;
    },
    async close() {
      for (const c of clients) c.close();
      await collector.close(5_000);
    },
  };
}

/** One entry with a request id, to find it again. */
const tagged = (requestId: string, route = 'limits') =>
  httpEntry({
    commonProperties: { routeName: route },
    request: { requestMethod: 'GET', path: '/', requestId },
  });

/** Proves a good stream still gets through and stores its entry. */
async function stillServes(c: ReturnType<typeof alsClient>, requestId: string) {
  const s = c.open();
  s.call.write(message([tagged(requestId)], { nodeId: 'good' }));
  await until(
    async () => (await countRows(ch, 'request_id = {r:String}', { r: requestId })) === 1,
    requestId,
  );
  s.call.cancel();
}

describe('per-message limits', () => {
  it('refuses a message of more entries than the limit with RESOURCE_EXHAUSTED, before decoding; others go on', async () => {
    const gs = await start({ maxEntriesPerMessage: 1_000, decoderWorkers: 1 });
    const c = gs.client();
    const bad = c.open();
    const good = c.open();
    bad.call.write(message([tagged('before-bomb')], { nodeId: 'bomber' }));
    await until(async () => (await countRows(ch, "request_id = 'before-bomb'")) === 1, 'row before the bomb');
    bad.call.write(emptyEntriesMessage(1_001));
    const { error } = await bad.done;
    expect(error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(error?.details).toMatch(
      /too_many_entries.*more than 1000.*GATESCOPE_ALS_MAX_ENTRIES_PER_MESSAGE=1000/,
    );
    expect(
      await metric(gs.registry, 'gatescope_als_messages_rejected_total', { reason: 'too_many_entries' }),
    ).toBe(1);
    // Nothing of the bomb was decoded or stored.
    expect(await metric(gs.registry, 'gatescope_als_entries_received_total', { type: 'http' })).toBe(1);
    expect(await countRows(ch, "node_id = 'bomber'")).toBe(1);
    // Exactly the limit is accepted (and, empty entries having no start_time, dead-lettered as out of window).
    good.call.write(emptyEntriesMessage(1_000));
    await until(
      async () =>
        (await metric(gs.registry, 'gatescope_als_entries_received_total', { type: 'http' })) === 1_001,
      'a message of exactly the limit',
    );
    await gs.collector.flush();
    expect(
      await metric(gs.registry, 'gatescope_als_entries_dead_lettered_total', {
        reason: 'start_time_out_of_range',
      }),
    ).toBe(1_000);
    expect(await metric(gs.registry, 'gatescope_als_open_streams')).toBe(1);
    await stillServes(c, 'after-bomb');
    good.call.cancel();
    await gs.close();
  });

  it('refuses a string or an identifier over its limit with RESOURCE_EXHAUSTED, naming the variable', async () => {
    const gs = await start({ maxStringBytes: 20_000, maxIdentifierBytes: 200 });
    const c = gs.client();
    const longPath = c.open();
    longPath.call.write(
      message([httpEntry({ request: { requestMethod: 'GET', path: '/' + 'p'.repeat(20_000) } })], {
        nodeId: 'long-path',
      }),
    );
    let { error } = await longPath.done;
    expect(error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(error?.details).toMatch(/request\.path is 20001 bytes.*GATESCOPE_ALS_MAX_STRING_BYTES=20000/);

    const longId = c.open();
    longId.call.write(message([tagged('long-id')], { nodeId: 'n'.repeat(201) }));
    ({ error } = await longId.done);
    expect(error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(error?.details).toMatch(
      /identifier\.node\.id is 201 bytes.*GATESCOPE_ALS_MAX_IDENTIFIER_BYTES=200/,
    );
    expect(await countRows(ch, "request_id = 'long-id'")).toBe(0);

    // An Istio gateway's first message: a node with 360 extensions and metadata (skipped, not stored).
    const istio = c.open();
    for (const f of ISTIO_HTTP_STREAM) istio.call.write(f.bytes);
    const expected = ISTIO_HTTP_STREAM.reduce((n, f) => n + f.expected.http.length, 0);
    await until(
      async () =>
        (await metric(gs.registry, 'gatescope_als_entries_received_total', { type: 'http' })) === expected,
      'the Istio stream',
    );
    for (const reason of ['string_too_long', 'identifier_too_long'])
      expect(await metric(gs.registry, 'gatescope_als_messages_rejected_total', { reason })).toBe(1);
    istio.call.cancel();
    await gs.close();
  });
});

describe('start_time window', () => {
  it('dead-letters entries older than the retention or beyond the clock skew; the rest of the message is stored', async () => {
    const gs = await start({ batchMaxDelayMs: 10 });
    const s = gs.client().open();
    const nowS = Math.floor(Date.now() / 1000);
    const at = (seconds: number, requestId: string) =>
      httpEntry({
        commonProperties: { startTime: { seconds, nanos: 0 }, routeName: 'window' },
        request: { requestMethod: 'GET', path: '/', requestId },
      });
    // 150 entries spread over 150 days beyond the retention: in one insert they would touch 150 partitions,
    // and ClickHouse refuses more than 100 (the whole batch, every time it is retried).
    const spread = Array.from({ length: 150 }, (_, i) => at(nowS - (3_650 + 2 + i) * 86_400, `spread-${i}`));
    s.call.write(
      message([at(nowS - 60, 'window-recent'), ...spread, at(nowS + 3 * 86_400, 'window-future')], {
        nodeId: 'w',
      }),
    );
    s.call.write(message([at(nowS - 30, 'window-after')]));
    await until(async () => (await countRows(ch, "route_name = 'window'")) === 2, 'the in-window rows');
    await gs.collector.flush();
    expect(
      await metric(gs.registry, 'gatescope_als_entries_dead_lettered_total', {
        reason: 'start_time_out_of_range',
      }),
    ).toBe(151);
    expect(await metric(gs.registry, 'gatescope_als_entries_received_total', { type: 'http' })).toBe(153);
    const letters = await listDeadLetters(join(gs.config.dataDir, 'dead-letters'));
    expect(letters.map((l) => [l.table, l.reason, l.entries])).toEqual([
      ['http_requests', 'start_time_out_of_range', 151],
    ]);
    const rows = readNative(await readDeadLetterRows(join(gs.config.dataDir, 'dead-letters'), letters[0]));
    expect(rows.map((r) => r.request_id).sort()).toEqual(
      [...spread.map((_, i) => `spread-${i}`), 'window-future'].sort(),
    );
    expect(
      await metric(gs.registry, 'gatescope_clickhouse_insert_batches_total', {
        table: 'http_requests',
        outcome: 'error',
      }),
    ).toBe(0);
    s.call.cancel();
    await gs.close();
  });

  it('within a long retention, a batch spread over many days still inserts (one insert may touch them all)', async () => {
    const gs = await start({ batchMaxDelayMs: 10 });
    const s = gs.client().open();
    const nowS = Math.floor(Date.now() / 1000);
    const entries = Array.from({ length: 150 }, (_, i) =>
      httpEntry({
        commonProperties: {
          startTime: { seconds: nowS - (i + 1) * 86_400, nanos: 0 },
          routeName: 'many-days',
        },
      }),
    );
    s.call.write(message(entries, { nodeId: 'many-days' }));
    await until(async () => (await countRows(ch, "route_name = 'many-days'")) === 150, '150 days of rows');
    expect(
      await metric(gs.registry, 'gatescope_clickhouse_insert_batches_total', {
        table: 'http_requests',
        outcome: 'error',
      }),
    ).toBe(0);
    s.call.cancel();
    await gs.close();
  });
});

describe('per-stream limits', () => {
  it('refuses streams over the per-connection limit, and over the total, at open', async () => {
    const gs = await start({ maxStreamsPerConnection: 3, maxStreams: 5 });
    const a = gs.client();
    const onA = Array.from({ length: 4 }, () => a.open());
    const { error } = await onA[3].done;
    expect(error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(error?.details).toMatch(/GATESCOPE_ALS_MAX_STREAMS_PER_CONNECTION=3/);
    // Another connection still gets streams, up to the total.
    const b = gs.client();
    const onB = Array.from({ length: 3 }, () => b.open());
    const third = await onB[2].done;
    expect(third.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(third.error?.details).toMatch(/already serves 5 ALS streams \(GATESCOPE_ALS_MAX_STREAMS=5\)/);
    expect(await metric(gs.registry, 'gatescope_als_open_streams')).toBe(5);
    // The open ones work; closing one frees a slot.
    onB[0].call.write(message([tagged('within-limits')], { nodeId: 'b' }));
    await until(async () => (await countRows(ch, "request_id = 'within-limits'")) === 1, 'row within limits');
    onA[0].call.cancel();
    await until(async () => (await metric(gs.registry, 'gatescope_als_open_streams')) === 4, 'a slot freed');
    await stillServes(gs.client(), 'after-freed-slot');
    expect(
      await metric(gs.registry, 'gatescope_als_streams_refused_total', {
        reason: 'too_many_streams_per_connection',
      }),
    ).toBe(1);
    expect(
      await metric(gs.registry, 'gatescope_als_streams_refused_total', { reason: 'too_many_streams' }),
    ).toBe(1);
    for (const s of [...onA, ...onB]) s.call.cancel();
    await gs.close();
  });

  it('refuses request headers over the limit at open', async () => {
    const gs = await start({ maxHeaderBytes: 4_096 });
    const c = gs.client();
    const md = new grpc.Metadata();
    md.set('x-padding', 'h'.repeat(5_000));
    const s = c.open(md);
    const { error } = await s.done;
    expect(error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(error?.details).toMatch(/request headers are \d+ bytes.*GATESCOPE_ALS_MAX_HEADER_BYTES=4096/);
    expect(
      await metric(gs.registry, 'gatescope_als_streams_refused_total', { reason: 'headers_too_large' }),
    ).toBe(1);
    const ok = new grpc.Metadata();
    ok.set('x-envoy-peer', 'gateway-1');
    const t = c.open(ok);
    t.call.write(message([tagged('small-headers')], { nodeId: 'h' }));
    await until(async () => (await countRows(ch, "request_id = 'small-headers'")) === 1, 'row');
    t.call.cancel();
    await gs.close();
  });

  it('closes a stream with no complete message for the idle timeout; a stream that sends stays', async () => {
    const gs = await start({ streamIdleTimeoutS: 1 });
    const c = gs.client();
    const idle = c.open();
    const busy = c.open();
    busy.call.write(message([tagged('busy-0')], { nodeId: 'busy' }));
    const started = Date.now();
    let sent = 0;
    const ticker = setInterval(() => busy.call.write(message([tagged(`busy-${++sent}`)])), 250);
    const { error } = await idle.done;
    const after = Date.now() - started;
    expect(error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(error?.details).toMatch(
      /no complete StreamAccessLogsMessage for 1 s.*GATESCOPE_ALS_STREAM_IDLE_TIMEOUT_SECONDS/,
    );
    expect(after).toBeGreaterThanOrEqual(900);
    await new Promise((r) => setTimeout(r, 1_500));
    clearInterval(ticker);
    expect(await metric(gs.registry, 'gatescope_als_streams_refused_total', { reason: 'idle' })).toBe(1);
    expect(await metric(gs.registry, 'gatescope_als_open_streams')).toBe(1);
    await until(
      async () => (await countRows(ch, "node_id = 'busy'")) === sent + 1,
      'every message of the busy stream',
    );
    busy.call.cancel();
    await gs.close();
  });
});

describe('back-pressure', () => {
  it('counts the bytes held in memory: stops reading when they pass the bound, reads again once written to the WAL', async () => {
    // A bound of 2 MB of bytes and a row bound it never reaches: only the bytes can pause reading. Group commits
    // once a second hold the decoded rows in memory meanwhile.
    const gs = await start(
      { maxPendingBytes: 2_000_000, maxPendingRows: 1_000_000, batchMaxRows: 100_000, batchMaxDelayMs: 10 },
      ch,
      { syncIntervalMs: 1_000 },
    );
    const s = gs.client().open();
    // Fat rows: a 4 KB user agent each, 50 per message.
    const fat = () =>
      Array.from({ length: 50 }, () =>
        httpEntry({
          commonProperties: { routeName: 'fat' },
          request: { requestMethod: 'GET', path: '/f', userAgent: 'u'.repeat(4_000) },
        }),
      );
    let written = 0;
    const writer = (async () => {
      for (let i = 0; i < 40; i++) {
        if (!s.call.write(message(fat(), i === 0 ? { nodeId: 'fat' } : undefined)))
          await new Promise((r) => s.call.once('drain', r));
        written += 50;
      }
    })();
    await until(
      async () => (await metric(gs.registry, 'gatescope_ingest_backpressure')) === 1,
      'back-pressure',
    );
    await new Promise((r) => setTimeout(r, 300));
    // 2,000 rows of ~4.3 KB (~8.6 MB) were sent; what is held stays near the 2 MB bound (plus what was in
    // flight when reading stopped), the rest waits in HTTP/2 flow control.
    expect(gs.collector.pendingBytes).toBeLessThan(4_000_000);
    expect(await metric(gs.registry, 'gatescope_ingest_pending_bytes')).toBeGreaterThanOrEqual(2_000_000);
    await writer;
    await until(async () => (await countRows(ch, "route_name = 'fat'")) === written, 'every fat row', 30_000);
    expect(written).toBe(2_000);
    expect(await metric(gs.registry, 'gatescope_ingest_backpressure')).toBe(0);
    s.call.cancel();
    await gs.close();
  });
});

describe('decoder threads', () => {
  it('a thread killed with messages in flight is replaced: its messages are refused, flush and close do not hang', async () => {
    const gs = await start({ decoderWorkers: 1, batchMaxDelayMs: 10 });
    const c = gs.client();
    const victim = c.open();
    const sent = 200;
    const perMessage = 100;
    // Queue a lot of work on the one decoder thread, then kill the thread while it works.
    const burst = Array.from({ length: sent }, (_, i) =>
      message(
        Array.from({ length: perMessage }, () => httpEntry({ commonProperties: { routeName: 'victim' } })),
        i === 0 ? { nodeId: 'victim' } : undefined,
      ),
    );
    for (const m of burst) victim.call.write(m);
    await until(
      async () => (await metric(gs.registry, 'gatescope_als_messages_received_total')) >= 20,
      'messages',
    );
    const thread = gs.collector.decoderThreads[0]!;
    await thread.terminate();
    const { error } = await victim.done;
    expect(error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(error?.details).toMatch(/decoder/);
    // flush() returns: nothing waits for the dead thread.
    await gs.collector.flush();
    expect(await metric(gs.registry, 'gatescope_als_decoder_restarts_total')).toBe(1);
    const refused =
      (await metric(gs.registry, 'gatescope_als_messages_rejected_total', { reason: 'decoder_crashed' })) +
      (await metric(gs.registry, 'gatescope_als_messages_rejected_total', { reason: 'decoder_unavailable' }));
    expect(refused).toBeGreaterThan(0);
    // Every entry decoded before the kill was stored, none twice, none of a refused message.
    const received = await metric(gs.registry, 'gatescope_als_entries_received_total', { type: 'http' });
    expect(received % perMessage).toBe(0);
    expect(received).toBeLessThan(sent * perMessage);
    expect(await countRows(ch, "route_name = 'victim'")).toBe(received);
    // A new thread serves new streams.
    expect(gs.collector.decoderThreads[0]).toBeDefined();
    expect(gs.collector.decoderThreads[0]).not.toBe(thread);
    await stillServes(c, 'after-restart');
    await gs.close();
  });
});
