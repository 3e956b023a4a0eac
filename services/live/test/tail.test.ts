import { afterAll, beforeAll, expect, it } from 'vitest';
import { client, emitAck, harness, insertRequests, testConfig, type Harness } from './helpers.js';

let h: Harness;
let url: string;
beforeAll(async () => {
  h = await harness();
  ({ url } = await h.start(testConfig({ tickMs: 200 }), { tailRowsPerSecond: 20 }));
});
afterAll(async () => {
  await h?.close();
});

interface TailBatch {
  rows: Record<string, unknown>[];
  skipped: number;
}

function collect(s: ReturnType<typeof client>) {
  const batches: TailBatch[] = [];
  s.on('tail', (b: TailBatch) => batches.push(b));
  return batches;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor(pred: () => boolean, ms = 10_000) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(50);
  }
}

it('streams matching requests as they are stored, each once, with every explorer column; history is not replayed', async () => {
  await insertRequests(h.ch, [
    {
      start_time: new Date(Date.now() - 1000),
      duration_ms: 1,
      response_code: 200,
      route_name: 'tail-a',
      request_id: 'before-tail',
    },
  ]);
  const s = client(url);
  const batches = collect(s);
  try {
    expect(await emitAck(s, 'tail', { route: 'tail-a' })).toMatchObject({ ok: true });
    await insertRequests(h.ch, [
      {
        start_time: new Date(Date.now() - 500),
        duration_ms: 12.5,
        response_code: 503,
        route_name: 'tail-a',
        request_id: 'r1',
        response_flags: ['UF', 'URX'],
      },
      {
        start_time: new Date(Date.now() - 400),
        duration_ms: 1,
        response_code: 200,
        route_name: 'tail-b',
        request_id: 'other-route',
      },
    ]);
    // A late row: started earlier than rows already shown, stored later.
    await sleep(500);
    await insertRequests(h.ch, [
      {
        start_time: new Date(Date.now() - 3000),
        duration_ms: 2900,
        response_code: 200,
        route_name: 'tail-a',
        request_id: 'r2-late',
      },
    ]);
    await waitFor(() => batches.flatMap((b) => b.rows).length >= 2);
    await sleep(800);
    const rows = batches.flatMap((b) => b.rows);
    expect(rows.map((r) => r.request_id)).toEqual(['r1', 'r2-late']);
    expect(rows[0]).toMatchObject({
      route_name: 'tail-a',
      response_code: 503,
      status_class: '5xx',
      response_flags: ['UF', 'URX'],
      duration_ms: 12.5,
      method: 'GET',
      authority: 'shop.example.com',
      upstream_cluster: 'outbound|80||frontend.default.svc.cluster.local',
      protocol: 'HTTP/1.1',
    });
    for (const col of [
      'start_time',
      'path',
      'path_template',
      'upstream_host',
      'user_agent',
      'bytes_sent',
      'bytes_received',
      'downstream_remote_address',
      'node_id',
    ]) {
      expect(rows[0]).toHaveProperty(col);
    }
  } finally {
    s.disconnect();
  }
});

it('sends every row stored after the tail request was answered, however late the first tick comes', async () => {
  // A tick so slow that the rows below are stored long before it: the answer itself must mark the start.
  const slow = await h.start(testConfig({ tickMs: 2_500 }), { tailRowsPerSecond: 20 });
  const s = client(slow.url);
  const batches = collect(s);
  try {
    await insertRequests(h.ch, [
      {
        start_time: new Date(Date.now() - 2000),
        duration_ms: 1,
        response_code: 200,
        route_name: 'tail-late',
        request_id: 'history',
      },
    ]);
    expect(await emitAck(s, 'tail', { route: 'tail-late' })).toMatchObject({ ok: true });
    await insertRequests(h.ch, [
      {
        start_time: new Date(Date.now() - 2000),
        duration_ms: 1,
        response_code: 200,
        route_name: 'tail-late',
        request_id: 'after-answer',
      },
    ]);
    await waitFor(() => batches.length > 0, 10_000);
    await sleep(300);
    expect(batches.flatMap((b) => b.rows).map((r) => r.request_id)).toEqual(['after-answer']);
  } finally {
    s.disconnect();
  }
});

it('rate-limits each socket and reports what it dropped as "N skipped", newest rows kept', async () => {
  const s = client(url);
  const batches = collect(s);
  try {
    await emitAck(s, 'tail', { route: 'tail-flood' });
    await sleep(600);
    const base = Date.now() - 2000;
    await insertRequests(
      h.ch,
      Array.from({ length: 500 }, (_, i) => ({
        start_time: new Date(base + i),
        duration_ms: 1,
        response_code: 200,
        route_name: 'tail-flood',
        request_id: `flood-${i}`,
      })),
    );
    await waitFor(() => batches.some((b) => b.skipped > 0));
    await sleep(1500);
    const delivered = batches.flatMap((b) => b.rows);
    const skipped = batches.reduce((a, b) => a + b.skipped, 0);
    expect(delivered.length).toBeLessThanOrEqual(20 + 2 * 20 + 5); // burst + refill over the wait
    expect(delivered.length + skipped).toBe(500); // every row is either shown or counted
    expect(delivered[delivered.length - 1].request_id).toBe('flood-499');
  } finally {
    s.disconnect();
  }
});

it('stops streaming after tail:stop', async () => {
  const s = client(url);
  const batches = collect(s);
  try {
    await emitAck(s, 'tail', { route: 'tail-stop' });
    await sleep(500);
    await s.timeout(5000).emitWithAck('tail:stop');
    await insertRequests(h.ch, [
      { start_time: new Date(), duration_ms: 1, response_code: 200, route_name: 'tail-stop' },
    ]);
    await sleep(800);
    expect(batches).toEqual([]);
  } finally {
    s.disconnect();
  }
});
