import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type Config } from '@gatescope/config';
import { startGatescope, type Gatescope } from '@gatescope/gatescope';
import { liveTailQuery, QueryReader } from '@gatescope/query';
import { pino } from 'pino';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeTrafficMessage } from '../fixtures/als.js';
import { alsClient } from '../support/als-client.js';
import { until } from '../support/probes.js';

// The all-in-one's live tail reads rows as the decoders make them, not after ClickHouse stored them: with inserts held
// back for 60 s, a tail still shows every entry of its filter within ticks, and each row is exactly the row ClickHouse
// returns for it once stored (the tail over ClickHouse, `liveTailQuery`, is what the standalone live service reads).

type TailRow = Record<string, unknown> & { request_id: string; route_name: string; start_time_us: number };
let config: Config;
let gs: Gatescope;
let socket: Socket;
const tail: TailRow[] = [];

beforeAll(async () => {
  config = loadConfig({
    GATESCOPE_DATA_DIR: mkdtempSync(join(tmpdir(), 'gs-e2e-live-tail-')),
    GATESCOPE_HTTP_PORT: '0',
    GATESCOPE_ALS_PORT: '0',
    GATESCOPE_BATCH_MAX_DELAY_MS: '60000',
    GATESCOPE_LIVE_TICK_MS: '200',
  });
  gs = await startGatescope(config, pino({ level: 'silent' }));
  socket = io(`http://127.0.0.1:${gs.httpPort}/live`, { transports: ['websocket'], forceNew: true });
  socket.on('tail', (t: { rows: TailRow[] }) => tail.push(...t.rows));
});
afterAll(async () => {
  socket?.disconnect();
  await gs?.close();
});

const count = async (where: string) => {
  const rs = await gs.clickhouse.client.query({
    query: `SELECT count() AS n FROM gatescope.http_requests WHERE ${where}`,
    format: 'JSONEachRow',
  });
  return Number(((await rs.json()) as { n: string }[])[0].n);
};

it('shows decoded rows matching its filter before ClickHouse has them, the same rows ClickHouse then returns', async () => {
  const client = alsClient(gs.alsPort);
  await client.ready();
  const { call } = client.open();
  const message = (seed: number, identifier = false) =>
    makeTrafficMessage({ entries: 30, seed, identifier, start: new Date(Date.now() - 2_000) });
  const first = message(1, true);
  const route = (
    first.message as { http_logs: { log_entry: { common_properties: { route_name: string } }[] } }
  ).http_logs.log_entry[0].common_properties.route_name;
  await new Promise<void>((resolve, reject) =>
    socket.emit('tail', { route }, (r: { ok: boolean }) =>
      r.ok ? resolve() : reject(new Error(JSON.stringify(r))),
    ),
  );
  // The answer came after the tail's first look: from here on every decoded row is tail, the first message's too.
  call.write(first.bytes);
  await until(async () => tail.length > 0, 'the first rows');
  // Let the socket's rate limit (50 rows a second, burst 50) refill, so the rows counted below all fit.
  await new Promise((r) => setTimeout(r, 1_500));
  tail.length = 0;

  const sent = [message(100), message(101), message(102)];
  for (const m of sent) call.write(m.bytes);
  type Entry = { common_properties: { route_name: string }; request: { request_id: string } };
  const entries = sent.flatMap(
    (m) => (m.message as { http_logs: { log_entry: Entry[] } }).http_logs.log_entry,
  );
  const ids = new Set(
    entries.filter((e) => e.common_properties.route_name === route).map((e) => e.request.request_id),
  );
  const matching = ids.size;
  const ours = () => tail.filter((r) => ids.has(r.request_id));
  expect(matching).toBeGreaterThan(3);
  expect(matching).toBeLessThan(entries.length);
  await until(async () => ours().length >= matching, `${matching} tail rows`);
  expect(tail.every((r) => r.route_name === route)).toBe(true);
  // Nothing inserted yet (batches wait 60 s): these rows came from the decoders.
  expect(await count('1')).toBe(0);

  await gs.flush();
  expect(await count('1')).toBeGreaterThanOrEqual(entries.length);
  const stored = await new QueryReader({
    clickhouse: gs.clickhouse,
    limits: config.query.limits,
  }).rows<TailRow>(
    liveTailQuery({
      database: 'gatescope',
      filters: { route: [route] },
      fromMs: Date.now() - 60_000,
      limit: 10_000,
    }),
  );
  const byKey = (rows: TailRow[]) =>
    [...rows].sort((a, b) => a.start_time_us - b.start_time_us || a.request_id.localeCompare(b.request_id));
  const shown = byKey(ours());
  const expected = byKey(stored).filter((r) => ids.has(r.request_id));
  expect(shown).toHaveLength(matching);
  expect(expected).toHaveLength(matching);
  expect(shown).toEqual(expected);
  call.end();
});
