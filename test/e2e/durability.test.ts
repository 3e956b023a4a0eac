import { appendFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createClickHouse, type ClickHouse } from '@gatescope/clickhouse';
import { startDemoTraffic } from '@gatescope/demo-traffic';
import { describe, expect, it } from 'vitest';
import { startGatescopeProcess, type GatescopeProcess } from '../support/gatescope-process.js';

const metricValue = (text: string, name: string) => {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
};
const scrape = async (gs: GatescopeProcess) => (await fetch(`${gs.http}metrics`)).text();

async function until(check: () => Promise<boolean>, what: string, ms = 60_000) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The raw table's count and distinct request ids, and the requests every rollup counted. */
async function tally(ch: ClickHouse): Promise<{ count: number; unique: number; rollups: number[] }> {
  const one = async (sql: string) =>
    Number(
      Object.values(
        (await (await ch.client.query({ query: sql, format: 'JSONEachRow' })).json())[0] as object,
      )[0],
    );
  return {
    count: await one('SELECT count() FROM gatescope.http_requests'),
    unique: await one('SELECT uniqExact(request_id) FROM gatescope.http_requests'),
    rollups: [
      await one('SELECT sum(requests) FROM gatescope.http_requests_1m'),
      await one('SELECT sum(requests) FROM gatescope.http_routes_1m'),
      await one('SELECT sum(requests) FROM gatescope.http_requests_1h'),
      await one('SELECT sum(requests) FROM gatescope.http_routes_1h'),
    ],
  };
}

describe('kill -9 of the all-in-one', () => {
  it('loses nothing it made durable and stores nothing twice; the next start cuts a torn tail and replays in order', async () => {
    const gs = await startGatescopeProcess();
    // Four streams at a steady 4,000 entries/s, as four Envoy workers would send them.
    const traffic = startDemoTraffic({ target: gs.als, rps: 4_000, streams: 4, flushMs: 100 });
    await until(
      async () => metricValue(await scrape(gs), 'gatescope_wal_entries_durable_total') > 12_000,
      'three seconds of traffic made durable',
    );
    const durable = metricValue(await scrape(gs), 'gatescope_wal_entries_durable_total');
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
      async () => metricValue(await scrape(again), 'gatescope_wal_bytes') === 0,
      'the replayed batches stored',
    );
    const code = await again.stop();
    expect(code).toBe(0);

    const ch = await createClickHouse({ database: 'gatescope', dataDir: gs.dataDir });
    const t = await tally(ch);
    await ch.close();
    // Everything durable before the kill is stored, once; every rollup counts the same requests.
    expect(t.count).toBeGreaterThanOrEqual(durable);
    expect(t.unique).toBe(t.count);
    expect(t.rollups).toEqual([t.count, t.count, t.count, t.count]);
    // What was lost is at most what arrived after the last group commit: well under a second of traffic.
    expect(traffic.sent - t.count).toBeLessThan(4_000);
  }, 180_000);
});
