import type { ClickHouse } from '@gatescope/clickhouse';
import { buildCollector } from '@gatescope/collector';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  alsClient,
  collectorConfig,
  countRows,
  httpEntry,
  message,
  metric,
  openTestEngine,
  until,
} from './helpers.js';

// The batch policy on the real embedded engine: light traffic goes to ClickHouse within GATESCOPE_BATCH_MAX_DELAY_MS;
// busy traffic (GATESCOPE_BATCH_MAX_ROWS per GATESCOPE_BATCH_MAX_DELAY_MS or faster) grows into fewer, bigger
// inserts for up to GATESCOPE_BATCH_BUSY_DELAY_MS.
let ch: ClickHouse;
beforeAll(async () => {
  ch = await openTestEngine('gs-batching-');
});
afterAll(async () => {
  await ch?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function start(batchBusyDelayMs: number) {
  const registry = new Registry();
  const config = collectorConfig({ batchMaxRows: 200, batchMaxDelayMs: 200, batchBusyDelayMs });
  const collector = await buildCollector({ config, clickhouse: ch, registry });
  const port = await collector.listen('127.0.0.1', 0);
  return { collector, registry, client: alsClient(port) };
}

const inserts = (registry: Registry) =>
  metric(registry, 'gatescope_clickhouse_insert_batches_total', { table: 'http_requests', outcome: 'ok' });

/**
 * 3,000 entries of `route` as 30 messages of 100, one every 50 ms (2,000/s: busy for 200 rows per 200 ms). Returns
 * the inserts it took and how long after its last message every row was counted.
 */
async function burst(
  gs: Awaited<ReturnType<typeof start>>,
  route: string,
): Promise<{ inserts: number; afterMs: number }> {
  const before = await inserts(gs.registry);
  const s = gs.client.open();
  for (let i = 0; i < 30; i++) {
    s.call.write(
      message(
        Array.from({ length: 100 }, () => httpEntry({ commonProperties: { routeName: route } })),
        i === 0 ? { nodeId: route } : undefined,
      ),
    );
    await sleep(50);
  }
  const ended = performance.now();
  await until(
    async () => (await countRows(ch, 'route_name = {r:String}', { r: route })) === 3_000,
    route,
    20_000,
  );
  const afterMs = performance.now() - ended;
  s.call.cancel();
  return { inserts: (await inserts(gs.registry)) - before, afterMs };
}

describe('batches', () => {
  it('busy traffic goes in fewer, bigger inserts, out as soon as the burst ends; light traffic is not held back', async () => {
    const gs = await start(4_000);
    // Light: 10 entries are stored within the max delay (plus the insert), not held for the busy delay.
    const s = gs.client.open();
    const t0 = performance.now();
    s.call.write(
      message(
        Array.from({ length: 10 }, () => httpEntry({ commonProperties: { routeName: 'light' } })),
        { nodeId: 'light' },
      ),
    );
    await until(
      async () => (await countRows(ch, "route_name = 'light'")) === 10,
      'the light traffic',
      10_000,
    );
    expect(performance.now() - t0).toBeLessThan(3_000);
    s.call.cancel();

    const grown = await burst(gs, 'busy');
    gs.client.close();
    await gs.collector.close(5_000);

    // The same burst with busy growth off: a batch goes out at 200 rows whenever the previous insert is done.
    const off = await start(0);
    const each = await burst(off, 'busy-off');
    off.client.close();
    await off.collector.close(5_000);

    expect(grown.inserts).toBeLessThanOrEqual(2);
    expect(each.inserts).toBeGreaterThan(grown.inserts);
    expect(each.inserts).toBeGreaterThanOrEqual(4);
    // The burst's end is seen (nothing for GATESCOPE_BATCH_MAX_DELAY_MS): its batch goes out then, not once its first
    // row is 4 s old (measured: 0.3 s after the last message, and 1.6 s without this rule).
    expect(grown.afterMs).toBeLessThan(1_200);
  });
});

describe('flush', () => {
  it('is a barrier: under steady traffic it ends, with every message read before it stored', async () => {
    const gs = await start(0);
    const s = gs.client.open();
    const route = 'steady';
    // A message of 10 entries every 2 ms, without pause: shorter than any insert, so there is never a moment with
    // nothing left to store (a flush that waited for one never ended; it hung the browser tests on a loaded CPU).
    let stop = false;
    const sending = (async () => {
      for (let i = 0; !stop; i++) {
        const batch = Array.from({ length: 10 }, () => httpEntry({ commonProperties: { routeName: route } }));
        s.call.write(message(batch, i === 0 ? { nodeId: route } : undefined));
        await sleep(2);
      }
    })();
    await until(async () => (await countRows(ch, 'route_name = {r:String}', { r: route })) > 0, route);
    const read = await metric(gs.registry, 'gatescope_als_messages_received_total');
    const t0 = performance.now();
    await gs.collector.flush();
    const took = performance.now() - t0;
    const stored = await countRows(ch, 'route_name = {r:String}', { r: route });
    stop = true;
    await sending;
    s.call.cancel();
    gs.client.close();
    await gs.collector.close(5_000);

    expect(stored).toBeGreaterThanOrEqual(read * 10);
    expect(took).toBeLessThan(10_000);
  });
});
