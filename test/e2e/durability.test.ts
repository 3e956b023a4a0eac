import { appendFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createClickHouse } from '@gatescope/clickhouse';
import { startDemoTraffic } from '@gatescope/demo-traffic';
import { describe, expect, it } from 'vitest';
import { startGatescopeProcess } from '../support/gatescope-process.js';
import { processMetric, requestTally, until } from '../support/probes.js';

describe('kill -9 of the all-in-one', () => {
  it('loses nothing it made durable and stores nothing twice; the next start cuts a torn tail and replays in order', async () => {
    const gs = await startGatescopeProcess();
    // Four streams at a steady 4,000 entries/s, as four Envoy workers would send them.
    const traffic = startDemoTraffic({ target: gs.als, rps: 4_000, streams: 4, flushMs: 100 });
    await until(
      async () => (await processMetric(gs, 'gatescope_wal_entries_durable_total')) > 12_000,
      'three seconds of traffic made durable',
      60_000,
    );
    const durable = await processMetric(gs, 'gatescope_wal_entries_durable_total');
    await gs.kill();
    await traffic.stop();
    expect(durable).toBeGreaterThan(12_000);

    // What a crash in the middle of an append leaves: half a block after the last whole one.
    const lane = join(gs.dataDir, 'wal', 'http_requests');
    const newest = readdirSync(lane)
      .filter((f) => f.endsWith('.native'))
      .sort()
      .at(-1);
    expect(newest).toBeDefined();
    appendFileSync(join(lane, newest!), Buffer.alloc(4_000, 7));
    appendFileSync(join(lane, newest!.replace('.native', '.idx')), Buffer.alloc(9, 1));

    const again = await startGatescopeProcess({ dataDir: gs.dataDir });
    const log = again.log();
    expect(log).toMatch(/"msg":"write-ahead log: cut a torn tail/);
    expect(log).toMatch(/write-ahead log: replaying \d+ batches \(\d+ entries\)/);
    expect(log).toMatch(/took over its lock/);
    await until(
      async () => (await processMetric(again, 'gatescope_wal_bytes')) === 0,
      'the replayed batches stored',
      60_000,
    );
    const [count, ...others] = await requestTally(again);
    expect(await again.stop()).toBe(0);
    // Everything durable before the kill is stored, once; every rollup counts the same requests.
    expect(count).toBeGreaterThanOrEqual(durable);
    expect(others).toEqual([count, count, count, count, count, count]);
    // The engine opens cleanly after the process is gone.
    const ch = await createClickHouse({ database: 'gatescope', dataDir: gs.dataDir });
    expect(await ch.ping()).toBe(true);
    await ch.close();
  }, 180_000);
});
