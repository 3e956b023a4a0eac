import { createClient, ClickHouseLogLevel, type ClickHouseClient } from '@clickhouse/client';
import { HTTP_REQUEST_COLUMNS, TCP_CONNECTION_COLUMNS } from '@gatescope/als';
import { listMigrations, requiredSchemaVersion } from '@gatescope/clickhouse';
import type { LiveStats } from '@gatescope/live';
import { PathTemplater } from '@gatescope/path-template';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ISTIO_HTTP_STREAM,
  makeTrafficMessage,
  NO_IDENTIFIER_MESSAGE,
  TCP_STREAM,
  type Row,
} from '../fixtures/als.js';
import { sendWithPythonClient } from '../support/als-client.js';
import { startClickHouseFront, type ClickHouseFront } from '../support/clickhouse-front.js';
import {
  runGatescopeCommand,
  startServiceProcess,
  type GatescopeProcess,
} from '../support/gatescope-process.js';

// Scale-out as deployed: `gatescope migrate`, then the collector, the API and the live server as separate
// processes (their standalone mains) against CLICKHOUSE_URL, here the test front over the real engine
// (test/support/clickhouse-front.ts says what that does not cover). Data ingested by the collector is served
// by the API and pushed by the live server; the server-mode insert path stores the fixtures exactly, through
// an insert answered 500 and one that hangs.

let front: ClickHouseFront;
let reader: ClickHouseClient;
const procs: GatescopeProcess[] = [];
let api: GatescopeProcess;
let collector: GatescopeProcess;
let live: GatescopeProcess;

const env = () => ({
  CLICKHOUSE_URL: front.url,
  GATESCOPE_RETENTION_DAYS: '3650', // the fixtures are dated 2024
  GATESCOPE_BATCH_MAX_DELAY_MS: '200',
  GATESCOPE_CLICKHOUSE_TIMEOUT_MS: '3000',
  GATESCOPE_LIVE_TICK_MS: '500',
  GATESCOPE_DECODER_WORKERS: '1',
});
const start = async (service: 'api' | 'collector' | 'live') => {
  const p = await startServiceProcess(service, { env: env() });
  procs.push(p);
  return p;
};
const json = async (url: string) => {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};
const waitFor = async <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
};

beforeAll(async () => {
  front = await startClickHouseFront();
  reader = createClient({ url: front.url, log: { level: ClickHouseLogLevel.OFF } });
});
afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill()));
  await reader?.close();
  await front?.close();
});

describe('scale-out: separate processes on a ClickHouse server', () => {
  it('runs no DDL from the services: the API reports the schema missing until `gatescope migrate` runs', async () => {
    api = await start('api');
    const ready = await json(`${api.http}readyz`);
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ error: { code: 'ERR_SCHEMA_PENDING' } });
    expect((ready.body.error as { message: string }).message).toMatch(
      new RegExp(`version 0, this build needs ${requiredSchemaVersion()}: run \`gatescope migrate\``),
    );
    expect(front.requests.filter((r) => /^\s*(CREATE|ALTER|INSERT|DROP)/i.test(r.statement))).toEqual([]);
  });

  it('migrates once with two migrators started together (the lock), and the waiting API becomes ready', async () => {
    const [a, b] = await Promise.all([
      runGatescopeCommand(['migrate'], { env: env() }),
      runGatescopeCommand(['migrate'], { env: env() }),
    ]);
    expect([a.code, b.code]).toEqual([0, 0]);
    const applied = [a.out, b.out].map((out) => {
      const line = out.split('\n').find((l) => l.includes('storage ready'));
      return (JSON.parse(line!) as { applied: string[] }).applied;
    });
    expect(applied.map((x) => x.length).sort()).toEqual([0, listMigrations().length]);
    // Each migration statement ran exactly once, whichever migrator ran it.
    const creates = front.requests.filter((r) =>
      /^CREATE TABLE IF NOT EXISTS gatescope\.http_requests\s*\(/.test(r.statement),
    );
    expect(creates.length).toBe(1);
    const versions = await front.rows<{ version: number; n: string }>(
      'SELECT version, count() AS n FROM gatescope.schema_migrations GROUP BY version ORDER BY version',
    );
    expect(versions.map((v) => [Number(v.version), Number(v.n)])).toEqual(
      listMigrations().map((m) => [m.version, 1]),
    );

    const ready = await waitFor('the API to see the schema', async () => {
      const r = await json(`${api.http}readyz`);
      return r.status === 200 ? r : undefined;
    });
    expect(ready.body).toEqual({ status: 'ready', clickhouse: 'server' });
  });

  it('stores every fixture exactly through the server insert path, retrying a 500 and a hung insert', async () => {
    [collector, live] = await Promise.all([start('collector'), start('live')]);
    const insertHttp = /^INSERT INTO gatescope\.http_requests \(/;
    const error = front.fault({ kind: 'error', match: insertHttp });
    const hang = front.fault({ kind: 'hang', match: insertHttp });

    const http = ISTIO_HTTP_STREAM.map((f) => f.bytes);
    const client = await sendWithPythonClient(collector.als, [
      http,
      TCP_STREAM.map((f) => f.bytes),
      [NO_IDENTIFIER_MESSAGE.bytes],
      http,
    ]);
    const templater = new PathTemplater();
    const key = (r: Row) =>
      `${r.start_time}|${r.request_id ?? ''}|${r.path ?? ''}|${String(r.downstream_remote_port).padStart(5, '0')}`;
    const byKey = (x: Row, y: Row) => (key(x) < key(y) ? -1 : key(x) > key(y) ? 1 : 0);
    const expectedHttp = [...ISTIO_HTTP_STREAM, ...ISTIO_HTTP_STREAM, NO_IDENTIFIER_MESSAGE]
      .flatMap((f) => f.expected.http)
      .map((r) => ({ ...r, path_template: templater.template(String(r.route_name), String(r.path)) }))
      .sort(byKey);
    const expectedTcp = TCP_STREAM.flatMap((f) => f.expected.tcp).sort(byKey);
    // Read back over HTTP, the way every server-mode reader does.
    const rows = async (table: string, columns: readonly { name: string }[]) =>
      (
        (await (
          await reader.query({
            query: `SELECT ${columns.map((c) => c.name).join(', ')} FROM gatescope.${table}`,
            format: 'JSONEachRow',
            clickhouse_settings: {
              date_time_output_format: 'simple',
              output_format_json_quote_64bit_integers: 0,
            },
          })
        ).json()) as Row[]
      ).sort(byKey);

    await Promise.all([error.done, hang.done]);
    const [gotHttp, gotTcp] = await waitFor('every row', async () => {
      const got = await Promise.all([
        rows('http_requests', HTTP_REQUEST_COLUMNS),
        rows('tcp_connections', TCP_CONNECTION_COLUMNS),
      ]);
      return got[0].length >= expectedHttp.length && got[1].length >= expectedTcp.length ? got : undefined;
    });
    // Give a duplicate (a retried batch landing twice) the time to show up before comparing.
    await new Promise((r) => setTimeout(r, 1_000));
    expect((await rows('http_requests', HTTP_REQUEST_COLUMNS)).length).toBe(expectedHttp.length);
    gotHttp.forEach((row, i) => expect(row, `http row ${i} (${key(row)})`).toEqual(expectedHttp[i]));
    expect(gotTcp).toEqual(expectedTcp);

    // The failed attempts reached ClickHouse and were retried: a 500, a hang the client gave up on, then commits.
    const attempts = front.requests.filter((r) => insertHttp.test(r.statement));
    expect(attempts.map((r) => r.fault ?? r.status).slice(0, 3)).toEqual(['error', 'hang', 200]);
    expect(collector.log()).toMatch(/Timeout error/);
    const metrics = await (await fetch(`${collector.http}metrics`)).text();
    expect(metrics).toMatch(
      /^gatescope_clickhouse_insert_batches_total\{table="http_requests",outcome="error"\} [2-9]/m,
    );
    expect(await client.finish()).toMatch(/^sent$/m);
  });

  it('serves what the collector stored from the API process', async () => {
    const from = encodeURIComponent('2024-05-01T00:00:00Z');
    const to = encodeURIComponent('2024-05-02T00:00:00Z');
    const [n] = await front.rows<{ n: string }>(
      "SELECT count() AS n FROM gatescope.http_requests WHERE start_time >= '2024-05-01' AND start_time < '2024-05-02'",
    );
    const summary = await json(`${api.http}api/v1/summary?from=${from}&to=${to}&source=raw`);
    expect(summary.status).toBe(200);
    expect(JSON.stringify(summary.body)).toContain(`"requests":${Number(n.n)}`);
    const routes = await json(`${api.http}api/v1/routes?from=${from}&to=${to}&source=raw`);
    expect(JSON.stringify(routes.body)).toContain('frontend-canary');
  });

  it('pushes fresh traffic from the live process (stats and tail)', async () => {
    const socket: Socket = io(`${live.http}live`, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
    });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('connect_error', reject);
      });
      const statsSeen = new Promise<LiveStats>((resolve) =>
        socket.on('stats', (s: LiveStats) => {
          if (s.totals.requests >= 40) resolve(s);
        }),
      );
      const tailSeen = new Promise<{ rows: Record<string, unknown>[] }>((resolve) =>
        socket.on('tail', (t: { rows: Record<string, unknown>[] }) => {
          if (t.rows.length > 0) resolve(t);
        }),
      );
      await socket.emitWithAck('subscribe', {});
      await socket.emitWithAck('tail', {});
      const fresh = makeTrafficMessage({
        entries: 40,
        identifier: true,
        start: new Date(Date.now() - 2_000),
        seed: 7,
      });
      const sender = await sendWithPythonClient(collector.als, [[fresh.bytes]]);
      const stats = await Promise.race([
        statsSeen,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error('no stats with the fresh rows')), 20_000),
        ),
      ]);
      expect(stats.totals.requests).toBe(40);
      const tail = await Promise.race([
        tailSeen,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error('no tail rows for the fresh traffic')), 20_000),
        ),
      ]);
      expect(tail.rows[0]).toHaveProperty('route_name');
      await sender.finish();
    } finally {
      socket.close();
    }
  });

  it('answers a hung ClickHouse query with a clear timeout error, and recovers', async () => {
    front.fault({ kind: 'hang', match: /FROM gatescope\.http_requests/ });
    const started = Date.now();
    const res = await json(`${api.http}api/v1/summary?range=5m&source=raw`);
    expect(res.status).toBe(504);
    expect(res.body).toMatchObject({ error: { code: 'ERR_CLICKHOUSE_TIMEOUT' } });
    expect((res.body.error as { message: string }).message).toMatch(/GATESCOPE_CLICKHOUSE_TIMEOUT_MS/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_500);
    expect((await json(`${api.http}api/v1/summary?range=5m&source=raw`)).status).toBe(200);
  });

  it('stops every process cleanly on SIGTERM', async () => {
    const codes = await Promise.all([collector.stop(), api.stop(), live.stop()]);
    expect(codes).toEqual([0, 0, 0]);
  });
});
