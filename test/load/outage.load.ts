// `npm run loadtest:outage`: gatescope in server mode (the ClickHouse front over the embedded engine, loopback) at a
// steady 5,000 entries/s; ClickHouse refuses every connection for LOADTEST_OUTAGE_MINUTES (10), then comes back
// while traffic goes on. Prints: loss (must be 0), the WAL's peak against its bound, when streams were paused, how
// long the backlog took to drain.
import { expect, it } from 'vitest';
import { startClickHouseFront } from '../support/clickhouse-front.js';
import { startGatescopeProcess } from '../support/gatescope-process.js';
import { processMetric, until } from '../support/probes.js';
import { fmt, rssKb, startLoad } from './support.js';

const OUTAGE_MINUTES = Number(process.env.LOADTEST_OUTAGE_MINUTES ?? 10);
const RATE = Number(process.env.LOADTEST_RATE ?? 5_000);
const WAL_MAX_BYTES = Number(process.env.LOADTEST_WAL_MAX_BYTES ?? 1024 ** 3);
const AFTER_S = 120;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (line: string) => console.log(`[loadtest] ${line}`);

it(`a ${OUTAGE_MINUTES}-minute ClickHouse outage at ${RATE} entries/s: no loss, the WAL bounded, drained`, async () => {
  const front = await startClickHouseFront();
  const gs = await startGatescopeProcess({
    env: {
      CLICKHOUSE_URL: front.url,
      GATESCOPE_WAL_MAX_BYTES: String(WAL_MAX_BYTES),
      GATESCOPE_CLICKHOUSE_TIMEOUT_MS: '15000',
      GATESCOPE_LOG_LEVEL: 'info',
    },
    startTimeoutMs: 120_000,
  });
  try {
    const load = startLoad(gs.als, { rate: RATE, seconds: 30 + OUTAGE_MINUTES * 60 + AFTER_S, prefix: 'c1' });
    await sleep(30_000);
    const t0 = Date.now();
    const outage = front.fault({ kind: 'refuse', forMs: OUTAGE_MINUTES * 60_000 });
    say(
      `ClickHouse refuses every connection for ${OUTAGE_MINUTES} min; WAL bound ${fmt(WAL_MAX_BYTES / 2 ** 20)} MiB`,
    );
    let walPeak = 0;
    let pausedAt: number | undefined;
    let rssPeak = 0;
    const watch = setInterval(async () => {
      const wal = await processMetric(gs, 'gatescope_wal_bytes');
      walPeak = Math.max(walPeak, wal);
      rssPeak = Math.max(rssPeak, rssKb(gs.pid) / 1024);
      if (pausedAt === undefined && (await processMetric(gs, 'gatescope_ingest_backpressure')) === 1)
        pausedAt = (Date.now() - t0) / 1000;
    }, 1_000);
    const report = setInterval(async () => {
      say(
        `t=${((Date.now() - t0) / 1000).toFixed(0)}s sent ${fmt(load.sent())}, WAL ${fmt((await processMetric(gs, 'gatescope_wal_bytes')) / 2 ** 20)} MiB ` +
          `in ${await processMetric(gs, 'gatescope_wal_segments')} batches, oldest ${fmt(await processMetric(gs, 'gatescope_wal_oldest_unflushed_age_seconds'))} s, ` +
          `back-pressure ${await processMetric(gs, 'gatescope_ingest_backpressure')}, RSS ${(rssKb(gs.pid) / 1024).toFixed(0)} MiB`,
      );
    }, 60_000);
    await outage.done;
    const back = Date.now();
    say(`ClickHouse is back after ${((back - t0) / 1000).toFixed(0)} s; traffic goes on`);
    await until(
      async () => (await processMetric(gs, 'gatescope_wal_oldest_unflushed_age_seconds')) < 3,
      'the backlog drained',
      30 * 60_000,
    );
    const drainS = (Date.now() - back) / 1000;
    const result = await load.done;
    clearInterval(watch);
    clearInterval(report);
    await until(
      async () => (await processMetric(gs, 'gatescope_wal_bytes')) === 0,
      'every batch stored',
      10 * 60_000,
    );
    const [{ n, u }] = await front.rows<{ n: number; u: number }>(
      'SELECT count() AS n, uniqExact(request_id) AS u FROM gatescope.http_requests',
    );
    const received = await processMetric(gs, 'gatescope_als_entries_received_total');
    say(
      `sent ${fmt(result.sent)}, received ${fmt(received)}, stored ${fmt(Number(n))}, loss ${fmt(result.sent - Number(n))}, duplicates ${fmt(Number(n) - Number(u))}`,
    );
    say(
      `WAL peak ${fmt(walPeak / 2 ** 20)} MiB of ${fmt(WAL_MAX_BYTES / 2 ** 20)} MiB; streams paused ${pausedAt === undefined ? 'never' : `from ${pausedAt.toFixed(0)} s into the outage`}; the client (Envoy) fell behind by at most ${result.behindMax.toFixed(0)} s (what a real Envoy would have buffered or dropped)`,
    );
    say(
      `drained in ${drainS.toFixed(0)} s after ClickHouse came back (oldest unstored row under 3 s old), with ${fmt(RATE)}/s still arriving; peak RSS ${rssPeak.toFixed(0)} MiB`,
    );
    expect(result.sent - Number(n)).toBe(0);
    expect(Number(u)).toBe(Number(n));
    // Bounded: over by at most one group commit and one open batch.
    expect(walPeak).toBeLessThan(WAL_MAX_BYTES * 1.1);
  } finally {
    await gs.stop();
    await front.close();
  }
});
