import { join } from 'node:path';
import type { ClickHouse } from '@gatescope/clickhouse';
import { buildCollector } from '@gatescope/collector';
import { listDeadLetters, requeueDeadLetters } from '@gatescope/wal';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alsClient, collectorConfig, httpEntry, message, metric, openTestEngine, until } from './helpers.js';

// Faults at the ClickHouse boundary, on the real embedded engine: a row it refuses (a table constraint), an
// insert that lands but whose answer is lost, the engine's own memory limit.
let ch: ClickHouse;
beforeAll(async () => {
  ch = await openTestEngine('gs-durability-');
});
afterAll(async () => {
  await ch?.close();
});

const rowsOf = async <T>(query: string, params: Record<string, unknown> = {}) =>
  (await ch.client.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>();

/** Count and distinct request ids of a route in the raw table, and its requests in every rollup. */
async function stored(route: string): Promise<number[]> {
  const [raw] = await rowsOf<{ n: string; u: string }>(
    'SELECT count() AS n, uniqExact(request_id) AS u FROM gatescope.http_requests WHERE route_name = {r:String}',
    { r: route },
  );
  const sums = [];
  for (const t of ['http_requests_1m', 'http_routes_1m', 'http_requests_1h', 'http_routes_1h']) {
    const [x] = await rowsOf<{ n: string }>(
      `SELECT sum(requests) AS n FROM gatescope.${t} WHERE route_name = {r:String}`,
      { r: route },
    );
    sums.push(Number(x.n));
  }
  return [Number(raw.n), Number(raw.u), ...sums];
}

async function start(clickhouse: ClickHouse, over: Parameters<typeof collectorConfig>[1] = {}) {
  const registry = new Registry();
  const config = collectorConfig({ batchMaxRows: 10_000, batchMaxDelayMs: 100 }, over);
  const log = (level: string) => (o: object, m?: string) =>
    process.env.DEBUG_TEST && console.log(level, m, JSON.stringify(o).slice(0, 500));
  const logger = { info: log('info'), warn: log('warn'), error: log('error') };
  const collector = await buildCollector({ config, clickhouse, registry, logger });
  const port = await collector.listen('127.0.0.1', 0);
  const client = alsClient(port);
  return { collector, registry, config, client };
}

const entries = (route: string, n: number, over: Record<string, unknown> = {}, common: object = {}) =>
  Array.from({ length: n }, () => httpEntry({ commonProperties: { routeName: route, ...common }, ...over }));
const DAY_AFTER = { startTime: { seconds: 1_764_150_000 + 86_400, nanos: 0 } };

describe('a row ClickHouse refuses', () => {
  it('is split off and dead-lettered; the rest of its batch and everything after it lands; replayed after the fix, once', async () => {
    await ch.client.command({
      query: "ALTER TABLE gatescope.http_requests ADD CONSTRAINT no_poison CHECK path != '/poison'",
    });
    const gs = await start(ch);
    const s = gs.client.open();
    const poison = (route: string) =>
      httpEntry({
        commonProperties: { routeName: route },
        request: { requestMethod: 'GET', path: '/poison', requestId: `poison-${route}` },
      });
    // One message: 300 good rows with two refused ones among them, the good ones on two days.
    const batch = [
      ...entries('refused', 150),
      poison('refused'),
      ...entries('refused', 100, {}, DAY_AFTER),
      poison('refused-2'),
      ...entries('refused', 50),
    ];
    s.call.write(message(batch, { nodeId: 'refused' }));
    s.call.write(message(entries('after-refused', 40)));
    await until(async () => (await stored('after-refused'))[0] === 40, 'the traffic after it');
    await until(async () => (await stored('refused'))[0] === 300, 'the good rows of the refused batch');
    await gs.collector.flush();
    expect(await stored('refused')).toEqual([300, 300, 300, 300, 300, 300]);
    expect(
      await metric(gs.registry, 'gatescope_als_entries_dead_lettered_total', { reason: 'insert_refused' }),
    ).toBe(2);
    expect(
      await metric(gs.registry, 'gatescope_clickhouse_insert_batches_total', {
        table: 'http_requests',
        outcome: 'refused',
      }),
    ).toBe(1);
    expect(await metric(gs.registry, 'gatescope_dead_letter_entries')).toBe(2);
    const dlDir = join(gs.config.dataDir, 'dead-letters');
    const letters = await listDeadLetters(dlDir);
    expect(letters.map((l) => [l.reason, l.entries, l.error?.code, l.error?.name])).toEqual([
      ['insert_refused', 1, 469, 'VIOLATED_CONSTRAINT'],
      ['insert_refused', 1, 469, 'VIOLATED_CONSTRAINT'],
    ]);
    // The index the API reads.
    await until(
      async () =>
        Number(
          (
            await rowsOf<{ n: string }>(
              "SELECT count() AS n FROM gatescope.ingest_dead_letters FINAL WHERE state = 'parked' AND error_name = 'VIOLATED_CONSTRAINT'",
            )
          )[0].n,
        ) === 2,
      'the dead letters in ingest_dead_letters',
    );

    // Fixed: the constraint goes. Replay (what `gatescope dead-letters replay` does), twice over.
    await ch.client.command({ query: 'ALTER TABLE gatescope.http_requests DROP CONSTRAINT no_poison' });
    await requeueDeadLetters(dlDir, join(gs.config.dataDir, 'wal'), letters);
    await until(async () => (await stored('refused-2'))[0] === 1, 'the replayed rows', 10_000);
    await until(async () => (await stored('refused'))[0] === 301, 'the replayed rows', 10_000);
    expect(await metric(gs.registry, 'gatescope_wal_replayed_batches_total', { source: 'dead_letter' })).toBe(
      2,
    );
    expect(await listDeadLetters(dlDir)).toEqual([]);
    expect(await metric(gs.registry, 'gatescope_dead_letter_entries')).toBe(0);
    await until(
      async () =>
        (
          await rowsOf<{ n: number }>(
            "SELECT count() AS n FROM gatescope.ingest_dead_letters FINAL WHERE state = 'parked'",
          )
        )[0].n === 0,
      'the index says replayed',
    );
    expect(await stored('refused')).toEqual([301, 301, 301, 301, 301, 301]);
    s.call.cancel();
    gs.client.close();
    await gs.collector.close(5_000);
  });
});

describe('transient failures', () => {
  it('an insert that landed but whose answer was lost is retried with the same token: stored once, counted as a duplicate', async () => {
    let calls = 0;
    const lossy: ClickHouse = {
      ...ch,
      async insertNative(...args) {
        const r = await ch.insertNative(...args);
        if (args[0] !== 'ingest_ledger' && ++calls === 1)
          throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
        return r;
      },
    };
    const gs = await start(lossy);
    const s = gs.client.open();
    s.call.write(message(entries('lost-answer', 120), { nodeId: 'lossy' }));
    await until(
      async () =>
        (await metric(gs.registry, 'gatescope_clickhouse_insert_duplicates_total', {
          table: 'http_requests',
        })) === 1,
      'the deduplicated retry',
    );
    await gs.collector.flush();
    expect(await stored('lost-answer')).toEqual([120, 120, 120, 120, 120, 120]);
    expect(
      await metric(gs.registry, 'gatescope_clickhouse_insert_batches_total', {
        table: 'http_requests',
        outcome: 'error',
      }),
    ).toBe(1);
    s.call.cancel();
    gs.client.close();
    await gs.collector.close(5_000);
  });

  it("the engine's memory limit is retried with backoff, never dead-lettered", async () => {
    let calls = 0;
    // The first two attempts run under a 100 kB memory limit: the engine itself refuses them (MEMORY_LIMIT_EXCEEDED).
    const tight: ClickHouse = {
      ...ch,
      insertNative(table, columns, data, settings, options) {
        const limit: Record<string, number> =
          table !== 'ingest_ledger' && ++calls <= 2 ? { max_memory_usage: 100_000 } : {};
        return ch.insertNative(table, columns, data, { ...settings, ...limit }, options);
      },
    };
    const gs = await start(tight);
    const s = gs.client.open();
    s.call.write(message(entries('memory', 300), { nodeId: 'memory' }));
    await until(async () => (await stored('memory'))[0] === 300, 'the rows after the retries', 20_000);
    expect(
      await metric(gs.registry, 'gatescope_clickhouse_insert_batches_total', {
        table: 'http_requests',
        outcome: 'error',
      }),
    ).toBe(2);
    expect(
      await metric(gs.registry, 'gatescope_als_entries_dead_lettered_total', { reason: 'insert_refused' }),
    ).toBe(0);
    expect(await listDeadLetters(join(gs.config.dataDir, 'dead-letters'))).toEqual([]);
    s.call.cancel();
    gs.client.close();
    await gs.collector.close(5_000);
  });
});
