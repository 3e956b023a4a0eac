import * as grpc from '@grpc/grpc-js';
import { createClickHouse, type ClickHouse } from '@gatescope/clickhouse';
import { buildCollector, type Collector } from '@gatescope/collector';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  alsClient,
  collectorConfig as config,
  countRows,
  httpEntry,
  message,
  metric,
  tempDir,
  until,
  openTestEngine,
} from './helpers.js';

let ch: ClickHouse;
beforeAll(async () => {
  ch = await openTestEngine('gs-collector-');
});
afterAll(async () => {
  await ch?.close();
});

const count = (where: string, params: Record<string, unknown> = {}) => countRows(ch, where, params);

describe.each([1, 0])('collector with %i decoder worker(s)', (workers) => {
  let collector: Collector;
  let registry: Registry;
  let port: number;
  const node = `node-w${workers}`;
  beforeAll(async () => {
    registry = new Registry();
    collector = buildCollector({ config: config({ decoderWorkers: workers }), clickhouse: ch, registry });
    port = await collector.listen('127.0.0.1', 0);
  });
  afterAll(async () => {
    await collector.close(10_000);
  });

  it('commits entries as they arrive on concurrent, never half-closed streams, identifier from first message only', async () => {
    const client = alsClient(port);
    const streams = Array.from({ length: 4 }, () => client.open());
    for (const [i, s] of streams.entries()) {
      // First message carries the identifier, later ones do not (as Envoy does).
      s.call.write(message([httpEntry(), httpEntry()], { nodeId: `${node}-s${i}` }));
      for (let k = 0; k < 5; k++) s.call.write(message([httpEntry(), httpEntry(), httpEntry()]));
    }
    // Streams stay open: the rows must show up without any end of stream.
    await until(
      async () => (await count('node_id LIKE {p:String}', { p: `${node}-s%` })) === 4 * 17,
      'rows from open streams',
    );
    for (let i = 0; i < 4; i++) expect(await count('node_id = {n:String}', { n: `${node}-s${i}` })).toBe(17);
    expect(await metric(registry, 'gatescope_als_open_streams')).toBe(4);
    expect(await metric(registry, 'gatescope_als_entries_received_total', { type: 'http' })).toBe(68);
    expect(
      await metric(registry, 'gatescope_clickhouse_rows_inserted_total', { table: 'http_requests' }),
    ).toBe(68);
    for (const s of streams) s.call.cancel();
    client.close();
    await until(async () => (await metric(registry, 'gatescope_als_open_streams')) === 0, 'streams closed');
  });

  it('attributes a stream without identifier to node "unknown" instead of failing', async () => {
    const client = alsClient(port);
    const s = client.open();
    const e = httpEntry({ request: { requestMethod: 'GET', path: '/x', requestId: `noid-${workers}` } });
    s.call.write(message([e]));
    await until(
      async () => (await count('request_id = {r:String}', { r: `noid-${workers}` })) === 1,
      'row without identifier',
    );
    expect(await count("request_id = {r:String} AND node_id = 'unknown'", { r: `noid-${workers}` })).toBe(1);
    s.call.cancel();
    client.close();
  });

  it('answers a malformed message with INVALID_ARGUMENT on that stream only; others go on; a counter moves', async () => {
    const client = alsClient(port);
    const bad = client.open();
    const good = client.open();
    bad.call.write(
      message(
        [httpEntry({ request: { requestMethod: 'GET', path: '/ok', requestId: `before-bad-${workers}` } })],
        { nodeId: `${node}-bad` },
      ),
    );
    bad.call.write(Buffer.from([0x12, 0xff, 0xff, 0xff, 0x0f, 0x01])); // length prefix far beyond the bytes
    const { error } = await bad.done;
    expect(error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error?.details).toMatch(/could not decode a StreamAccessLogsMessage/);
    good.call.write(
      message(
        [httpEntry({ request: { requestMethod: 'GET', path: '/ok', requestId: `after-bad-${workers}` } })],
        { nodeId: `${node}-good` },
      ),
    );
    await until(
      async () => (await count('request_id = {r:String}', { r: `after-bad-${workers}` })) === 1,
      'row on the good stream',
    );
    // What the bad stream sent before its malformed message was kept.
    await until(
      async () => (await count('request_id = {r:String}', { r: `before-bad-${workers}` })) === 1,
      'row before the bad message',
    );
    expect(
      await metric(registry, 'gatescope_als_messages_rejected_total', { reason: 'malformed_protobuf' }),
    ).toBeGreaterThanOrEqual(1);
    good.call.cancel();
    client.close();
  });

  it('refuses an oversized message with RESOURCE_EXHAUSTED and counts it', async () => {
    const client = alsClient(port);
    const s = client.open();
    const huge = httpEntry({
      request: { requestMethod: 'GET', path: '/' + 'a'.repeat(300 * 1024), requestId: 'huge' },
    });
    s.call.write(message([huge], { nodeId: `${node}-huge` }));
    const { error } = await s.done;
    expect(error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(error?.details).toMatch(/GATESCOPE_MAX_MESSAGE_BYTES/);
    expect(await metric(registry, 'gatescope_als_messages_rejected_total', { reason: 'oversized' })).toBe(1);
    client.close();
  });

  it('answers a wrong method with UNIMPLEMENTED and keeps serving', async () => {
    const Ctor = grpc.makeGenericClientConstructor(
      {
        Nope: {
          path: '/envoy.service.accesslog.v3.AccessLogService/Nope',
          requestStream: false,
          responseStream: false,
          requestSerialize: (b: Buffer) => b,
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (b: Buffer) => b,
          responseDeserialize: (b: Buffer) => b,
        },
      },
      'X',
    );
    const c = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const err = await new Promise<grpc.ServiceError | null>((r) =>
      (c as unknown as { Nope: (b: Buffer, cb: (e: grpc.ServiceError | null) => void) => void }).Nope(
        Buffer.alloc(0),
        r,
      ),
    );
    expect(err?.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(await metric(registry, 'gatescope_als_unimplemented_calls_total')).toBe(1);
    c.close();
  });
});

describe('a slow or dead ClickHouse', () => {
  it('applies back-pressure while inserts are stuck, keeps every row, and commits them when ClickHouse recovers', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let inserts = 0;
    // The real engine behind a gate that holds every insert until released: a ClickHouse that stopped answering.
    const slow: ClickHouse = {
      ...ch,
      insertNative: async (...args) => {
        inserts++;
        await gate;
        return ch.insertNative(...args);
      },
    };
    const registry = new Registry();
    const collector = buildCollector({
      config: config({ maxPendingRows: 500, batchMaxRows: 100, batchMaxDelayMs: 10 }),
      clickhouse: slow,
      registry,
    });
    const port = await collector.listen('127.0.0.1', 0);
    const client = alsClient(port);
    const s = client.open();
    const perMessage = 50;
    let written = 0;
    // Write 100 messages (5,000 rows, 10x the pending bound) as fast as the stream accepts them.
    for (let i = 0; i < 100; i++) {
      const entries = Array.from({ length: perMessage }, () =>
        httpEntry({ commonProperties: { routeName: 'slow-ch' } }),
      );
      if (!s.call.write(message(entries, i === 0 ? { nodeId: 'slow' } : undefined)))
        await new Promise((r) => s.call.once('drain', r));
      written += perMessage;
    }
    await until(async () => (await metric(registry, 'gatescope_ingest_backpressure')) === 1, 'back-pressure');
    // Memory stays bounded: pending is the 500-row bound plus what was already in flight when reading
    // paused; the rest of the 5,000 rows waits in HTTP/2 flow control, not in gatescope's memory.
    await new Promise((r) => setTimeout(r, 300));
    expect(collector.pendingRows).toBeLessThan(1_500);
    expect(await count("route_name = 'slow-ch'")).toBe(0);
    expect(inserts).toBe(1);
    release();
    await until(
      async () => (await count("route_name = 'slow-ch'")) === written,
      'all rows after recovery',
      30_000,
    );
    expect(await metric(registry, 'gatescope_ingest_backpressure')).toBe(0);
    s.call.cancel();
    client.close();
    await collector.close(5_000);
  });

  it('keeps rows and retries when the ClickHouse server is unreachable, reporting the failures', async () => {
    const dead = await createClickHouse({
      url: 'http://127.0.0.1:9',
      database: 'gatescope',
      dataDir: tempDir('gs-dead-'),
    });
    const registry = new Registry();
    const collector = buildCollector({ config: config({ batchMaxDelayMs: 10 }), clickhouse: dead, registry });
    const port = await collector.listen('127.0.0.1', 0);
    const client = alsClient(port);
    const s = client.open();
    s.call.write(message([httpEntry(), httpEntry(), httpEntry()], { nodeId: 'dead' }));
    await until(
      async () =>
        (await metric(registry, 'gatescope_clickhouse_insert_batches_total', {
          table: 'http_requests',
          outcome: 'error',
        })) >= 1,
      'a failed insert',
    );
    expect(collector.pendingRows).toBe(3);
    expect(await metric(registry, 'gatescope_als_open_streams')).toBe(1);
    s.call.cancel();
    client.close();
    await collector.close(500);
    expect(
      await metric(registry, 'gatescope_als_entries_dropped_total', { reason: 'shutdown_timeout' }),
    ).toBe(3);
    await dead.close();
  });
});
