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
    collector = await buildCollector({
      config: config({ decoderWorkers: workers }),
      clickhouse: ch,
      registry,
    });
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
  it('reads streams into the WAL while inserts are stuck, pushes back only when it is full, stores every row once when ClickHouse returns', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let inserts = 0;
    // The real engine behind a gate that holds every insert until released: a ClickHouse that stopped answering.
    const slow: ClickHouse = {
      ...ch,
      insertNative: async (...args) => {
        // The access-log batches (the delivery ledger's own small inserts are held too, not counted).
        if (args[0] !== 'ingest_ledger') inserts++;
        await gate;
        return ch.insertNative(...args);
      },
    };
    const registry = new Registry();
    const walMaxBytes = 400_000;
    const collector = await buildCollector({
      config: config(
        { maxPendingRows: 500, batchMaxRows: 100, batchMaxDelayMs: 10 },
        { maxBytes: walMaxBytes },
      ),
      clickhouse: slow,
      registry,
    });
    const port = await collector.listen('127.0.0.1', 0);
    const client = alsClient(port);
    const s = client.open();
    const perMessage = 50;
    let written = 0;
    // Write 100 messages (5,000 rows, ~2.5 MB in the WAL: six times its bound) as fast as the stream takes them.
    const writer = (async () => {
      for (let i = 0; i < 100; i++) {
        const entries = Array.from({ length: perMessage }, () =>
          httpEntry({ commonProperties: { routeName: 'slow-ch' } }),
        );
        if (!s.call.write(message(entries, i === 0 ? { nodeId: 'slow' } : undefined)))
          await new Promise((r) => s.call.once('drain', r));
        written += perMessage;
      }
    })();
    // Reading goes on well past the memory bound (500 rows): into the WAL, until its bytes reach the bound.
    await until(
      async () =>
        (await metric(registry, 'gatescope_ingest_backpressure')) === 1 &&
        collector.wal.bytes >= walMaxBytes * 0.9,
      'back-pressure with a full WAL',
    );
    await new Promise((r) => setTimeout(r, 300));
    const durable = await metric(registry, 'gatescope_wal_entries_durable_total');
    expect(durable).toBeGreaterThan(500);
    expect(durable).toBeLessThan(5_000);
    expect(collector.wal.bytes).toBeGreaterThanOrEqual(walMaxBytes * 0.9);
    // Over by at most what was in flight when reading paused (one commit's rows).
    expect(collector.wal.bytes).toBeLessThan(walMaxBytes * 1.5);
    expect(await metric(registry, 'gatescope_wal_bytes')).toBe(collector.wal.bytes);
    expect(await metric(registry, 'gatescope_wal_oldest_unflushed_age_seconds')).toBeGreaterThan(0.2);
    expect(collector.pendingRows).toBeLessThan(1_500);
    expect(await count("route_name = 'slow-ch'")).toBe(0);
    expect(inserts).toBe(1);
    release();
    await writer;
    await until(
      async () => (await count("route_name = 'slow-ch'")) === written,
      'all rows after recovery',
      30_000,
    );
    await collector.flush();
    const [dup] = await (
      await ch.client.query({
        query:
          "SELECT count() AS n, uniqExact(request_id) AS u FROM gatescope.http_requests WHERE route_name = 'slow-ch'",
        format: 'JSONEachRow',
      })
    ).json<{ n: number; u: number }>();
    expect([Number(dup.n), Number(dup.u)]).toEqual([5_000, 5_000]);
    expect(await metric(registry, 'gatescope_ingest_backpressure')).toBe(0);
    expect([
      collector.wal.bytes,
      await metric(registry, 'gatescope_wal_oldest_unflushed_age_seconds'),
    ]).toEqual([0, 0]);
    s.call.cancel();
    client.close();
    await collector.close(5_000);
  });

  it('an unreachable server: the rows wait in the WAL through a shutdown and are stored by the next start', async () => {
    const dead = await createClickHouse({
      url: 'http://127.0.0.1:9',
      database: 'gatescope',
      dataDir: tempDir('gs-dead-'),
    });
    const registry = new Registry();
    const cfg = config({ batchMaxDelayMs: 10 });
    const collector = await buildCollector({ config: cfg, clickhouse: dead, registry });
    const port = await collector.listen('127.0.0.1', 0);
    const client = alsClient(port);
    const s = client.open();
    const entries = [httpEntry(), httpEntry(), httpEntry()].map((e) => ({
      ...e,
      commonProperties: { ...e.commonProperties, routeName: 'waited' },
    }));
    s.call.write(message(entries, { nodeId: 'dead' }));
    await until(
      async () =>
        (await metric(registry, 'gatescope_clickhouse_insert_batches_total', {
          table: 'http_requests',
          outcome: 'error',
        })) >= 1,
      'a failed insert',
    );
    expect(collector.pendingRows).toBe(0);
    expect(await metric(registry, 'gatescope_wal_entries_durable_total')).toBe(3);
    expect(await metric(registry, 'gatescope_als_open_streams')).toBe(1);
    s.call.cancel();
    client.close();
    await collector.close(500);
    expect(
      await metric(registry, 'gatescope_als_entries_dropped_total', { reason: 'shutdown_timeout' }),
    ).toBe(0);
    await dead.close();

    // ClickHouse is back: the next start on the same data directory stores them, once.
    const lines: string[] = [];
    const logger = {
      info: (o: object, m?: string) => void lines.push(`${m} ${JSON.stringify(o)}`),
      warn: () => {},
      error: () => {},
    };
    const again = new Registry();
    const next = await buildCollector({ config: cfg, clickhouse: ch, registry: again, logger });
    await until(async () => (await count("route_name = 'waited'")) === 3, 'the replayed rows');
    expect(await metric(again, 'gatescope_wal_replayed_batches_total', { source: 'restart' })).toBe(1);
    expect(await metric(again, 'gatescope_wal_replayed_entries_total', { source: 'restart' })).toBe(3);
    expect(lines.join('\n')).toMatch(/write-ahead log: replaying 1 batches \(3 entries\)/);
    await next.flush();
    expect(await count("route_name = 'waited'")).toBe(3);
    await next.close(5_000);
  });
});
