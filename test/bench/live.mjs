// Live freshness benchmark: how long from an ALS entry reaching the collector until the next `stats` push shows it,
// at default settings (collector flush GATESCOPE_BATCH_MAX_DELAY_MS, live tick GATESCOPE_LIVE_TICK_MS), with demo
// background traffic running through the same collector and engine. Each probe is one entry on a route of its own,
// sent over a real gRPC stream at a random phase against the flush and tick clocks; the time is measured until a
// socket.io client subscribed to /live receives a `stats` whose routes include it. Prints p50/p95/max.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { encodeStreamAccessLogsMessage, loadAccessLogServiceDefinition } from '@gatescope/als';
import { createClickHouse, migrate } from '@gatescope/clickhouse';
import { buildCollector } from '@gatescope/collector';
import { loadConfig } from '@gatescope/config';
import { demoEntry, demoIdentifier, startDemoTraffic } from '@gatescope/demo-traffic';
import { attachLive } from '@gatescope/live';
import { io } from 'socket.io-client';
import { report } from './report.mjs';

const PROBES = Number(process.env.BENCH_LIVE_PROBES ?? 40);
const BACKGROUND_RPS = Number(process.env.BENCH_LIVE_RPS ?? 500);

const dir = mkdtempSync(join(tmpdir(), 'gatescope-bench-live-'));
const config = loadConfig({
  ...process.env,
  GATESCOPE_DATA_DIR: dir,
  GATESCOPE_LOG_LEVEL: 'silent',
  CLICKHOUSE_URL: '',
  GATESCOPE_TOKENS: '',
});
const ch = await createClickHouse({ ...config.clickhouse, dataDir: dir });
await migrate(ch, { retentionDays: 30, rollupRetentionDays: 30 });
const collector = await buildCollector({ config, clickhouse: ch });
const alsPort = await collector.listen('127.0.0.1', 0);
const server = createServer();
const live = attachLive({ httpServer: server, config, clickhouse: ch, alsPort });
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${server.address().port}/live`;

const background = startDemoTraffic({ target: `127.0.0.1:${alsPort}`, rps: BACKGROUND_RPS });
const socket = io(url, { transports: ['websocket'] });
await new Promise((r) => socket.once('connect', r));
socket.emit('subscribe', {});
// A second, filtered subscriber: the tick does the work of a realistic page (two filter sets).
const other = io(url, { transports: ['websocket'] });
other.emit('subscribe', { route: 'frontend-canary' });

const waiting = new Map();
socket.on('stats', (s) => {
  const at = performance.now();
  for (const r of s.routes) {
    const w = waiting.get(r.route);
    if (w) {
      waiting.delete(r.route);
      w(at);
    }
  }
});

const method = loadAccessLogServiceDefinition().StreamAccessLogs;
const client = new grpc.Client(`127.0.0.1:${alsPort}`, grpc.credentials.createInsecure());
const call = client.makeClientStreamRequest(
  method.path,
  (b) => b,
  (b) => b,
  () => {},
);
call.on('error', () => {});
call.write(encodeStreamAccessLogsMessage({ identifier: demoIdentifier(), http_logs: { log_entry: [] } }));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
await sleep(3000); // let background traffic and the first full-history ticks settle

const latencies = [];
let missed = 0;
for (let i = 0; i < PROBES; i++) {
  await sleep(Math.random() * 1000); // random phase against the flush and tick clocks
  const route = `freshness-probe-${i}`;
  const entry = demoEntry(Math.random, Date.now());
  entry.common_properties.route_name = route;
  entry.response = { response_code: { value: 200 }, response_code_details: 'via_upstream' };
  const seen = new Promise((resolve) => waiting.set(route, resolve));
  const t0 = performance.now();
  call.write(encodeStreamAccessLogsMessage({ http_logs: { log_entry: [entry] } }));
  const at = await Promise.race([seen, sleep(15_000).then(() => undefined)]);
  if (at === undefined) {
    missed++;
    waiting.delete(route);
  } else latencies.push(at - t0);
}

const sorted = [...latencies].sort((a, b) => a - b);
const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
const fmt = (ms) => `${(ms / 1000).toFixed(2)} s`;
report(
  `live freshness (entry received -> stats push), ${latencies.length} probes` +
    `${missed ? `, ${missed} not seen within 15 s` : ''}, background ${BACKGROUND_RPS} rps,` +
    ` collector flush ${config.ingest.batchMaxDelayMs} ms, live tick ${config.live.tickMs} ms, window ${config.live.windowSeconds} s`,
);
report(`  p50 ${fmt(q(0.5))}   p95 ${fmt(q(0.95))}   max ${fmt(sorted.at(-1))}   min ${fmt(sorted[0])}`);
report(`  target p95 <= 2 s: ${q(0.95) <= 2000 && missed === 0 ? 'met' : 'NOT met'}`);
report(
  `  stats computations ${live.counters.statsComputations} (mean ${(live.counters.statsComputeMs / live.counters.statsComputations).toFixed(1)} ms each), query errors ${live.counters.queryErrors}`,
);

call.cancel();
client.close();
await background.stop();
socket.disconnect();
other.disconnect();
await collector.close(10_000);
await live.close();
await new Promise((r) => server.close(r));
await ch.close();
rmSync(dir, { recursive: true, force: true });
