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

// A socket whose token is restricted to some authorities sees only their rows, in stats and in the tail, and never
// shares a computation with an unrestricted socket asking for the same filters.
let h: Harness;
let url: string;
beforeAll(async () => {
  h = await harness();
  ({ url } = await h.start(
    testConfig({
      tickMs: 200,
      tokens: [
        {
          name: 'team-a',
          token: 'team-a-secret-1234',
          scopes: ['read'],
          restriction: { authorities: ['a.example.com'] },
        },
        { name: 'ops', token: 'ops-secret-123456', scopes: ['read', 'admin'] },
      ],
    }),
  ));
});
afterAll(async () => {
  await h?.close();
});

interface Stats {
  totals: { requests: number };
}

it('restricted and unrestricted sockets with the same filters get different groups and only their rows', async () => {
  const now = Date.now();
  await insertRequests(h.ch, [
    ...Array.from({ length: 6 }, (_, i) => ({
      start_time: new Date(now - 5_000 - i),
      duration_ms: 1,
      response_code: 200,
      route_name: 'shop',
      authority: 'a.example.com',
    })),
    ...Array.from({ length: 4 }, (_, i) => ({
      start_time: new Date(now - 5_000 - i),
      duration_ms: 1,
      response_code: 200,
      route_name: 'shop',
      authority: 'b.example.com',
    })),
  ]);
  const team = client(url, 'team-a-secret-1234');
  const ops = client(url, 'ops-secret-123456');
  try {
    await Promise.all([once(team, 'hello'), once(ops, 'hello')]);
    const a = await emitAck<{ ok: boolean; key: string }>(team, 'subscribe', { route: 'shop' });
    const b = await emitAck<{ ok: boolean; key: string }>(ops, 'subscribe', { route: 'shop' });
    expect(a.ok && b.ok).toBe(true);
    expect(a.key).not.toBe(b.key);
    expect(a.key).toContain('restricted_authority=a.example.com');
    const teamStats = await until<Stats>(team, 'stats', (s) => s.totals.requests > 0);
    const opsStats = await until<Stats>(ops, 'stats', (s) => s.totals.requests > 0);
    expect(teamStats.totals.requests).toBe(6);
    expect(opsStats.totals.requests).toBe(10);
    // Asking for the other authority only narrows: nothing.
    await emitAck(team, 'subscribe', { authority: 'b.example.com' });
    const none = await once<Stats>(team, 'stats');
    expect(none.totals.requests).toBe(0);
    // A client cannot send its own restriction.
    const forged = await emitAck<{ ok: boolean; error?: { code: string } }>(team, 'subscribe', {
      restriction: {},
    });
    expect(forged).toMatchObject({ ok: false, error: { code: 'ERR_LIVE_BAD_FILTER' } });
  } finally {
    team.disconnect();
    ops.disconnect();
  }
});

it('the tail of a restricted socket carries only its rows', async () => {
  const team = client(url, 'team-a-secret-1234');
  try {
    await once(team, 'hello');
    expect(await emitAck(team, 'tail', {})).toMatchObject({ ok: true });
    // The first poll primes the cursor (what was stored before is history, not tail); when it runs depends on the
    // machine's load, so rows are stored until the tail carries some.
    const insertPair = () => {
      const now = Date.now();
      return insertRequests(h.ch, [
        {
          start_time: new Date(now),
          duration_ms: 2,
          response_code: 200,
          route_name: 'tail',
          authority: 'b.example.com',
          path: '/b',
        },
        {
          start_time: new Date(now),
          duration_ms: 2,
          response_code: 200,
          route_name: 'tail',
          authority: 'a.example.com',
          path: '/a',
        },
      ]);
    };
    await insertPair();
    const feeder = setInterval(() => void insertPair(), 500);
    const batch = await until<{ rows: { authority: string; route_name: string }[] }>(team, 'tail', (t) =>
      t.rows.some((r) => r.route_name === 'tail'),
    ).finally(() => clearInterval(feeder));
    const mine = batch.rows.filter((r) => r.route_name === 'tail');
    expect(mine.length).toBeGreaterThan(0);
    expect(new Set(mine.map((r) => r.authority))).toEqual(new Set(['a.example.com']));
    await new Promise((r) => setTimeout(r, 600));
  } finally {
    team.disconnect();
  }
});
