// `npm run loadtest`: sustained ALS ingest at 80 % of the maximum this machine reaches (measured first, in the same
// run, on the same process) for LOADTEST_MINUTES (5) while 200 socket.io clients are subscribed to `stats` and
// the API answers a dashboard's queries. Prints loss (must be 0), RSS over time (must be flat), API latency.
import { expect, it } from 'vitest';
import { startGatescopeProcess } from '../support/gatescope-process.js';
import { processMetric, requestTally, until } from '../support/probes.js';
import {
  cpuSeconds,
  fmt,
  liveClients,
  meanBetween,
  quantile,
  queryLoop,
  sampleRss,
  startLoad,
  storedRate,
} from './support.js';

const MINUTES = Number(process.env.LOADTEST_MINUTES ?? 5);
const LIVE_CLIENTS = 200;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (line: string) => console.log(`[loadtest] ${line}`);

it(`sustained ingest at 80 % of the maximum for ${MINUTES} min, ${LIVE_CLIENTS} live clients, API queries`, async () => {
  const gs = await startGatescopeProcess({
    env: { GATESCOPE_LOG_LEVEL: 'info' },
    startTimeoutMs: 120_000,
    // Another build's all-in-one, to compare (e.g. the main branch's, built elsewhere).
    main: process.env.LOADTEST_GATESCOPE_MAIN,
  });
  try {
    // 1. The maximum: as fast as gatescope takes it, measured over 25 s after a 10 s warm-up.
    const burst = startLoad(gs.als, { rate: 0, seconds: 45, prefix: 'a1' });
    await sleep(10_000);
    const max = await storedRate(gs, 25);
    burst.stop();
    const burstSent = (await burst.done).sent;
    await until(
      async () =>
        (await processMetric(gs, 'gatescope_clickhouse_rows_inserted_total', 'table="http_requests"')) >=
        burstSent,
      'the burst stored',
      180_000,
    );
    const rate = Math.round((0.8 * max) / 100) * 100;
    say(
      `maximum ${fmt(max)} entries/s stored (as fast as taken, 4 streams, 48 routes); sustained target ${fmt(rate)}/s`,
    );

    // 2. Sustained, with readers.
    const live = await liveClients(gs, LIVE_CLIENTS);
    const queries = queryLoop(gs);
    const rss = sampleRss(gs.pid, 5_000);
    const cpu0 = cpuSeconds(gs.pid);
    const stored0 = await processMetric(
      gs,
      'gatescope_clickhouse_rows_inserted_total',
      'table="http_requests"',
    );
    const live0 = live.received();
    const t0 = Date.now();
    const load = startLoad(gs.als, { rate, seconds: MINUTES * 60, prefix: 'b1' });
    const progress = setInterval(async () => {
      const s = (Date.now() - t0) / 1000;
      say(
        `t=${s.toFixed(0)}s sent ${fmt(load.sent())} (${fmt(load.sent() / s)}/s), RSS ${rss.samples.at(-1)!.mib.toFixed(0)} MiB, ` +
          `WAL ${fmt((await processMetric(gs, 'gatescope_wal_bytes')) / 1024)} KiB, back-pressure ${await processMetric(gs, 'gatescope_ingest_backpressure')}, ` +
          `API p99 so far ${quantile(queries.latencies, 0.99).toFixed(0)} ms`,
      );
    }, 30_000);
    const result = await load.done;
    clearInterval(progress);
    const seconds = (Date.now() - t0) / 1000;
    const cpu = cpuSeconds(gs.pid) - cpu0;
    await queries.stop();
    const liveMessages = live.received() - live0;
    const liveConnected = live.connected();
    live.close();
    rss.stop();

    // 3. Everything sent is stored, once.
    const sent = burstSent + result.sent;
    await until(
      async () =>
        (await processMetric(gs, 'gatescope_clickhouse_rows_inserted_total', 'table="http_requests"')) >=
        sent,
      'every entry stored',
      180_000,
    );
    const [count, unique, ...rollups] = await requestTally(gs);
    const storedDuring =
      (await processMetric(gs, 'gatescope_clickhouse_rows_inserted_total', 'table="http_requests"')) -
      stored0;

    say(
      `sent ${fmt(sent)} entries (${fmt(burstSent)} burst + ${fmt(result.sent)} sustained), stored ${fmt(count)}, loss ${fmt(sent - count)}, duplicates ${fmt(count - unique)}`,
    );
    say(
      `sustained ${fmt(result.sent / seconds)} entries/s for ${seconds.toFixed(0)} s (target ${fmt(rate)}/s; the client fell behind by at most ${result.behindMax.toFixed(1)} s); stored ${fmt(storedDuring)}`,
    );
    say(
      `gatescope CPU ${(cpu / seconds).toFixed(2)} cores on average, ${((cpu / Math.max(1, result.sent)) * 100_000).toFixed(2)} CPU-s per 100k entries`,
    );
    say(
      `API ${queries.latencies.length} queries: p50 ${quantile(queries.latencies, 0.5).toFixed(1)} ms, p99 ${quantile(queries.latencies, 0.99).toFixed(1)} ms, max ${Math.max(...queries.latencies).toFixed(0)} ms, errors ${queries.errors()}`,
    );
    say(
      `live: ${liveConnected}/${LIVE_CLIENTS} clients connected at the end, ${(liveMessages / LIVE_CLIENTS / seconds).toFixed(2)} stats pushes per client per second`,
    );
    const minute = (m: number) => meanBetween(rss.samples, m * 60, (m + 1) * 60);
    say(
      `RSS (MiB, mean per minute): ${Array.from({ length: Math.ceil(seconds / 60) }, (_, m) => minute(m).toFixed(0)).join(', ')}; max ${Math.max(...rss.samples.map((x) => x.mib)).toFixed(0)}`,
    );
    const first = minute(Math.min(1, Math.floor(seconds / 60) - 1));
    const last = meanBetween(rss.samples, seconds - 60, seconds + 1);
    say(
      `RSS trend: last minute ${last.toFixed(0)} MiB vs minute 2 ${first.toFixed(0)} MiB (${((last / first - 1) * 100).toFixed(1)} %)`,
    );

    expect(sent - count).toBe(0);
    expect(unique).toBe(count);
    expect(rollups).toEqual([count, count, count, count, count]);
    expect(last).toBeLessThan(first * 1.2);
    expect(queries.errors()).toBe(0);
  } finally {
    await gs.stop();
  }
});
