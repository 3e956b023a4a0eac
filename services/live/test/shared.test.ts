import type { LiveStats } from '@gatescope/live-stats';
import { afterAll, beforeAll, expect, it } from 'vitest';
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
beforeAll(async () => {
  h = await harness();
});
afterAll(async () => {
  await h?.close();
});

it('runs ONE computation per tick per distinct filter set, whatever the number of sockets', async () => {
  const { url, live } = await h.start(testConfig({ tickMs: 300 }));
  const sameA = Array.from({ length: 8 }, () => client(url));
  const sameB = Array.from({ length: 4 }, () => client(url));
  const all = [...sameA, ...sameB];
  try {
    // Same filters written differently (order, spaces, blanks) must share one computation.
    await Promise.all(
      sameA.map((s, i) =>
        emitAck(
          s,
          'subscribe',
          i % 2 ? { route: 'shared', gateway: 'gw' } : { gateway: ' gw ', route: 'shared', authority: '' },
        ),
      ),
    );
    await Promise.all(sameB.map((s) => emitAck(s, 'subscribe', { route: 'other' })));
    await insertRequests(h.ch, [
      {
        start_time: new Date(Date.now() - 2000),
        duration_ms: 3,
        response_code: 200,
        route_name: 'shared',
        node_id: 'gw',
      },
    ]);
    await Promise.all(sameA.map((s) => until<LiveStats>(s, 'stats', (x) => x.totals.requests === 1)));
    await Promise.all(all.map((s) => once(s, 'stats')));

    const before = { computations: live.counters.statsComputations, queries: h.queries.length };
    const received: number[] = all.map(() => 0);
    all.forEach((s, i) => s.on('stats', () => received[i]++));
    await new Promise((r) => setTimeout(r, 3_000));
    const ticks = Math.min(...received);
    const computations = live.counters.statsComputations - before.computations;
    const queries = h.queries.slice(before.queries);

    expect(ticks).toBeGreaterThanOrEqual(5); // every socket kept receiving stats…
    // …from 2 computations per tick (2 distinct filter sets), not 12; allow the tick in flight at each edge.
    expect(computations).toBeLessThanOrEqual(2 * (ticks + 2));
    expect(computations).toBeGreaterThanOrEqual(2 * (ticks - 1));
    // Each computation is exactly two ClickHouse queries (window + points).
    expect(queries.length).toBe(computations * 2);
  } finally {
    all.forEach((s) => s.disconnect());
  }
});

it('keeps one computation per filter set across two live servers reading the same ClickHouse, with the same numbers', async () => {
  const one = await h.start(testConfig({ tickMs: 250 }));
  const two = await h.start(testConfig({ tickMs: 250 }));
  const a = client(one.url);
  const b = client(two.url);
  try {
    await emitAck(a, 'subscribe', { route: 'lb' });
    await emitAck(b, 'subscribe', { route: 'lb' });
    await insertRequests(
      h.ch,
      Array.from({ length: 42 }, (_, i) => ({
        start_time: new Date(Date.now() - 4000 - i),
        duration_ms: i,
        response_code: i % 7 ? 200 : 500,
        route_name: 'lb',
      })),
    );
    const [sa, sb] = await Promise.all([
      until<LiveStats>(a, 'stats', (x) => x.totals.requests === 42),
      until<LiveStats>(b, 'stats', (x) => x.totals.requests === 42),
    ]);
    expect(sa.totals.errors).toBe(sb.totals.errors);
    expect(sa.routes.map((r) => [r.route, r.requests, r.health])).toEqual(
      sb.routes.map((r) => [r.route, r.requests, r.health]),
    );
  } finally {
    a.disconnect();
    b.disconnect();
  }
});

it('stops computing for a filter set once its last socket leaves', async () => {
  const { url, live } = await h.start(testConfig({ tickMs: 200 }));
  const s = client(url);
  await emitAck(s, 'subscribe', { route: 'gone' });
  await once(s, 'stats');
  s.disconnect();
  await new Promise((r) => setTimeout(r, 400));
  const n = live.counters.statsComputations;
  await new Promise((r) => setTimeout(r, 1_000));
  expect(live.counters.statsComputations).toBe(n);
});

it('bounds the number of distinct filter sets it computes, and says so', async () => {
  const { url } = await h.start(testConfig({ tickMs: 500 }), { maxFilterSets: 2 });
  const s = client(url);
  try {
    expect(await emitAck(s, 'subscribe', { route: 'one' })).toMatchObject({ ok: true });
    const t = client(url);
    try {
      expect(await emitAck(t, 'subscribe', { route: 'two' })).toMatchObject({ ok: true });
      const u = client(url);
      try {
        expect(await emitAck(u, 'subscribe', { route: 'three' })).toMatchObject({
          ok: false,
          error: { code: 'ERR_LIVE_TOO_MANY_VIEWS' },
        });
        // An existing view is still open to everyone.
        expect(await emitAck(u, 'subscribe', { route: 'one' })).toMatchObject({ ok: true });
      } finally {
        u.disconnect();
      }
    } finally {
      t.disconnect();
    }
  } finally {
    s.disconnect();
  }
});
