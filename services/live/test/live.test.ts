import type { LiveStats } from '@gatescope/live-stats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  client,
  emitAck,
  harness,
  insertRequests,
  once,
  testConfig,
  until,
  type Harness,
} from './helpers.js';

let h: Harness;
let url: string;

beforeAll(async () => {
  h = await harness();
  ({ url } = await h.start(testConfig({ tickMs: 200 })));
});
afterAll(async () => {
  await h?.close();
});

const ago = (ms: number) => new Date(Date.now() - ms);

describe('live stats over socket.io', () => {
  it('says hello with what the UI needs, then pushes stats every tick: full history first, then deltas', async () => {
    const s = client(url);
    try {
      const hello = await once<{ window_s: number; als: { port: number }; health: object }>(s, 'hello');
      expect(hello).toMatchObject({
        window_s: 60,
        tick_ms: 200,
        history_s: 900,
        als: { host: '127.0.0.1', port: 8090 },
        database: 'gatescope',
      });
      const ack = await emitAck<{ ok: boolean }>(s, 'subscribe', {});
      expect(ack).toMatchObject({ ok: true, key: '' });
      const first = await once<LiveStats>(s, 'stats');
      expect(first.points_full).toBe(true);
      expect(first.points).toHaveLength(900);
      expect(first.window_s).toBe(60);
      const second = await once<LiveStats>(s, 'stats');
      expect(second.points_full).toBe(false);
      expect(second.points.length).toBe(15);
      expect(second.ts).toBeGreaterThan(first.ts);
    } finally {
      s.disconnect();
    }
  });

  it('reflects stored requests: rps, 5xx share, quantiles, status classes, per-route rows with health', async () => {
    const s = client(url);
    try {
      await emitAck(s, 'subscribe', { route: 'stats-a' });
      await once(s, 'stats');
      const rows = [];
      for (let i = 0; i < 100; i++) {
        rows.push({
          start_time: ago(5_000 + i * 10),
          duration_ms: i + 1,
          response_code: i < 10 ? 503 : 200,
          route_name: 'stats-a',
          response_flags: i < 10 ? ['UF'] : [],
        });
      }
      rows.push({ start_time: ago(5_000), duration_ms: 1, response_code: 200, route_name: 'stats-other' });
      await insertRequests(h.ch, rows);
      const stats = await until<LiveStats>(s, 'stats', (x) => x.totals.requests === 100);
      expect(stats.totals.rps).toBeCloseTo(100 / 60, 2);
      expect(stats.totals.error_rate).toBeCloseTo(0.1);
      expect(stats.totals.status_classes).toMatchObject({ '2xx': 90, '5xx': 10 });
      expect(stats.totals.p50_ms).toBeGreaterThan(40);
      expect(stats.totals.p50_ms).toBeLessThan(61);
      expect(stats.totals.p99_ms).toBeGreaterThan(95);
      expect(stats.routes).toHaveLength(1);
      expect(stats.routes[0]).toMatchObject({ route: 'stats-a', requests: 100, health: 'failing' });
      expect(stats.routes[0].spark.reduce((a, b) => a + b)).toBe(100);
      // The per-second points show the same requests.
      const inPoints = stats.points.reduce((a, p) => a + p.requests, 0);
      expect(inPoints).toBe(100);
    } finally {
      s.disconnect();
    }
  });

  it('filters by gateway (node id or node cluster), authority and upstream cluster', async () => {
    const a = client(url);
    const b = client(url);
    const c = client(url);
    try {
      await emitAck(a, 'subscribe', { gateway: 'gw-node-7' });
      await emitAck(b, 'subscribe', { gateway: 'gw-cluster-7', authority: 'api.filters.test' });
      await emitAck(c, 'subscribe', { upstream_cluster: 'outbound|80||v2.filters.svc' });
      await insertRequests(h.ch, [
        {
          start_time: ago(3_000),
          duration_ms: 5,
          response_code: 200,
          route_name: 'f1',
          node_id: 'gw-node-7',
          node_cluster: 'x',
          authority: 'a',
        },
        {
          start_time: ago(3_000),
          duration_ms: 5,
          response_code: 200,
          route_name: 'f2',
          node_id: 'n',
          node_cluster: 'gw-cluster-7',
          authority: 'api.filters.test',
        },
        {
          start_time: ago(3_000),
          duration_ms: 5,
          response_code: 200,
          route_name: 'f3',
          node_id: 'n',
          node_cluster: 'gw-cluster-7',
          authority: 'other',
        },
        {
          start_time: ago(3_000),
          duration_ms: 5,
          response_code: 200,
          route_name: 'f4',
          upstream_cluster: 'outbound|80||v2.filters.svc',
        },
      ]);
      const [sa, sb, sc] = await Promise.all([
        until<LiveStats>(a, 'stats', (x) => x.totals.requests > 0),
        until<LiveStats>(b, 'stats', (x) => x.totals.requests > 0),
        until<LiveStats>(c, 'stats', (x) => x.totals.requests > 0),
      ]);
      expect(sa.routes.map((r) => r.route)).toEqual(['f1']);
      expect(sb.routes.map((r) => r.route)).toEqual(['f2']);
      expect(sc.routes.map((r) => r.route)).toEqual(['f4']);
    } finally {
      [a, b, c].forEach((s) => s.disconnect());
    }
  });

  it('treats filter values as data, not SQL', async () => {
    const s = client(url);
    try {
      await emitAck(s, 'subscribe', { route: "x' OR 1=1 --" });
      const stats = await until<LiveStats>(s, 'stats', () => true);
      expect(stats.totals.requests).toBe(0);
    } finally {
      s.disconnect();
    }
  });

  it('rejects bad filters with a stable code and keeps the socket usable', async () => {
    const s = client(url);
    try {
      const bad = await emitAck<{ ok: boolean; error: { code: string; message: string } }>(s, 'subscribe', {
        path: '/x',
      });
      expect(bad).toMatchObject({ ok: false, error: { code: 'ERR_LIVE_BAD_FILTER' } });
      expect(bad.error.message).toMatch(/live filters are route, authority, gateway, upstream_cluster/);
      expect(await emitAck(s, 'subscribe', { route: 'ok' })).toMatchObject({ ok: true });
    } finally {
      s.disconnect();
    }
  });
});
