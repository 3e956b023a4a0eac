import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeliveryAttempt } from '@gatescope/alerts';
import { createClickHouse, migrate, type ClickHouse } from '@gatescope/clickhouse';
import { loadConfig } from '@gatescope/config';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backoffMs, Delivery, Evaluator, parseRetryAfter, type Notification } from '../src/index.js';

let ch: ClickHouse;
beforeAll(async () => {
  ch = await createClickHouse({ database: 'gatescope', dataDir: mkdtempSync(join(tmpdir(), 'gs-alerts-')) });
  await migrate(ch, { retentionDays: 30, rollupRetentionDays: 400 });
});
afterAll(async () => {
  await ch?.close();
});

const logger = pino({ level: 'silent' });
const config = loadConfig({ GATESCOPE_DATA_DIR: '/unused', GATESCOPE_ALERTS_INTERVAL: '1s' });

describe('one evaluator at a time (the lease in ClickHouse)', () => {
  it('lets one of two evaluators evaluate; the other takes over once it lets go', async () => {
    const deps = { config, clickhouse: ch, logger };
    const a = new Evaluator({ ...deps, registry: new Registry() });
    const b = new Evaluator({ ...deps, registry: new Registry() });
    const [ra, rb] = await Promise.all([a.evaluate(), b.evaluate()]);
    expect([ra?.leader ?? false, rb?.leader ?? false].sort()).toEqual([false, true]);
    const [leader, standby] = ra ? [a, b] : [b, a];
    expect(await standby.evaluate()).toBeUndefined();
    expect((await leader.evaluate())?.leader).toBe(true);
    await leader.close(); // releases the lease
    expect((await standby.evaluate())?.leader).toBe(true);
    await standby.close();
  });
});

async function server(
  handler: (n: number) => { status: number; headers?: Record<string, string>; hang?: boolean },
) {
  const times: number[] = [];
  const srv: Server = createServer((req, res) => {
    times.push(Date.now());
    const { status, headers, hang } = handler(times.length);
    req.resume();
    if (hang) return; // never answers
    res.writeHead(status, headers).end();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/hook`,
    times,
    close: () => srv.closeAllConnections(),
  };
}

const notification = (url: string, over: Partial<Notification> = {}): Notification => ({
  id: 'msg_test',
  receiver: 'r',
  url,
  allowPrivate: true,
  timeoutMs: 2_000,
  payload: {
    version: '4',
    groupKey: 'k',
    truncatedAlerts: 0,
    status: 'firing',
    receiver: 'r',
    groupLabels: {},
    commonLabels: {},
    commonAnnotations: {},
    externalURL: '',
    alerts: [],
  },
  ...over,
});

describe('webhook delivery', () => {
  it("honours a 429's Retry-After over a shorter backoff", async () => {
    const s = await server((n) =>
      n === 1 ? { status: 429, headers: { 'retry-after': '2' } } : { status: 204 },
    );
    const attempts: DeliveryAttempt[] = [];
    const d = new Delivery({
      queueSize: 10,
      maxAttempts: 3,
      baseDelayMs: 50,
      record: (a) => attempts.push(a),
      logger,
    });
    d.enqueue(notification(s.url));
    await d.drained();
    expect(attempts.map((a) => `${a.outcome}:${a.httpStatus}`)).toEqual(['retry:429', 'delivered:204']);
    expect(s.times[1] - s.times[0]).toBeGreaterThanOrEqual(1_950);
    s.close();
  });

  it('times out a receiver that never answers, retries, and gives up after the last attempt', async () => {
    const s = await server(() => ({ status: 200, hang: true }));
    const attempts: DeliveryAttempt[] = [];
    const d = new Delivery({
      queueSize: 10,
      maxAttempts: 2,
      baseDelayMs: 20,
      record: (a) => attempts.push(a),
      logger,
    });
    d.enqueue(notification(s.url, { timeoutMs: 300 }));
    await d.drained();
    expect(attempts.map((a) => a.outcome)).toEqual(['retry', 'failed']);
    expect(attempts[1].error).toMatch(/gave up after 2 attempts/);
    expect(attempts[0].latencyMs).toBeGreaterThanOrEqual(290);
    s.close();
  });

  it('keeps its queue bounded: beyond it a notification is dropped and recorded', async () => {
    const s = await server(() => ({ status: 200 }));
    const attempts: DeliveryAttempt[] = [];
    const d = new Delivery({ queueSize: 2, maxAttempts: 1, record: (a) => attempts.push(a), logger });
    expect([
      d.enqueue(notification(s.url)),
      d.enqueue(notification(s.url)),
      d.enqueue(notification(s.url)),
    ]).toEqual([true, true, false]);
    await d.drained();
    expect(attempts.map((a) => a.outcome).sort()).toEqual(['delivered', 'delivered', 'dropped']);
    s.close();
  });

  it('refuses a loopback receiver without allow_private_network, before connecting', async () => {
    const s = await server(() => ({ status: 200 }));
    const attempts: DeliveryAttempt[] = [];
    const d = new Delivery({ queueSize: 2, maxAttempts: 3, record: (a) => attempts.push(a), logger });
    d.enqueue(notification(s.url, { allowPrivate: false }));
    await d.drained();
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ outcome: 'refused', attempt: 1 });
    expect(s.times).toHaveLength(0);
    s.close();
  });

  it('backs off exponentially with jitter, and reads Retry-After in both forms', () => {
    expect(backoffMs(1, 1000, 300_000, () => 0)).toBe(500);
    expect(backoffMs(3, 1000, 300_000, () => 1)).toBe(4000);
    expect(backoffMs(30, 1000, 300_000, () => 1)).toBe(300_000);
    expect(parseRetryAfter('7')).toBe(7000);
    expect(parseRetryAfter(new Date(Date.now() + 10_000).toUTCString())).toBeGreaterThan(8_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
});
