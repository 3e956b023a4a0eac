/* eslint-disable @typescript-eslint/no-explicit-any -- the tests read JSON response bodies */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { ClickHouse } from '@gatescope/clickhouse';
import { LatencySketch } from '@gatescope/query';
import { buildApp } from '../src/index.js';
import { errorCode, rawRequest } from '../../../test/support/raw-http.js';
import { ADMIN, generate, H, openEngine, READ, testConfig } from './fixtures.js';

// Everything happens relative to an hour-aligned T in the recent past; the app's clock is T + 2 h.
const T = Math.floor(Date.now() / H) * H - 3 * H;
const NOW = T + 2 * H;
const iso = (ms: number) => new Date(ms).toISOString();
const V1 = 'outbound|80||frontend.default.svc.cluster.local';
const V2 = 'outbound|80||frontendv2.default.svc.cluster.local';

let ch: ClickHouse;
let cleanup: () => Promise<void>;
let app: FastifyInstance;

const auth = (token = READ) => ({ authorization: `Bearer ${token}` });
async function get(url: string, token = READ) {
  const res = await app.inject({ method: 'GET', url, headers: auth(token) });
  return { status: res.statusCode, body: res.json() as any };
}
async function sql(query: string, token = ADMIN, format?: string) {
  const res = await app.inject({
    method: 'POST',
    url: `/api/v1/sql${format ? `?format=${format}` : ''}`,
    headers: auth(token),
    payload: { query },
  });
  return {
    status: res.statusCode,
    body: format === 'csv' ? res.body : (res.json() as any),
    headers: res.headers,
  };
}

// Ten hand-written checkout requests between T+10m and T+20m, one per minute: exact expectations.
const CHECKOUT = Array.from({ length: 10 }, (_, i) => {
  const code = [200, 200, 200, 200, 200, 200, 404, 503, 503, 0][i];
  return {
    start_time: new Date(T + 10 * 60_000 + i * 60_000 + 500).toISOString().replace('T', ' ').replace('Z', ''),
    duration_ms: i + 1,
    response_code: code,
    response_flags: code === 503 ? ['UF'] : code === 0 ? ['DC'] : [],
    route_name: 'checkout',
    upstream_cluster: 'outbound|8080||checkout.shop.svc.cluster.local',
    upstream_host: i % 2 ? '10.2.0.1:8080' : '10.2.0.2:8080',
    authority: i < 8 ? 'shop.example.com' : 'api.shop.example.com',
    method: i % 3 === 0 ? 'POST' : 'GET',
    path: `/checkout/${i}`,
    path_template: i < 5 ? '/checkout/{id}' : '/checkout/{id}/pay',
    downstream_remote_address: `192.0.2.${i % 4}`,
    user_agent: i < 7 ? 'Mozilla/5.0' : 'curl/8.5.0',
    request_id: `req-${String(i + 1).padStart(2, '0')}`,
    bytes_sent: 1000 * (i + 1),
    bytes_received: 10 * (i + 1),
    node_id: i < 4 ? 'gw-a' : 'gw-b',
    node_cluster: i < 4 ? 'edge' : 'internal',
  };
});
const CHECKOUT_RANGE = `from=${iso(T + 10 * 60_000)}&to=${iso(T + 20 * 60_000)}`;

beforeAll(async () => {
  ({ ch, cleanup } = await openEngine());
  await ch.client.insert({ table: 'gatescope.http_requests', values: CHECKOUT, format: 'JSONEachRow' });
  // The canary: 2,000 requests on route "frontend" in [T+30m, T+40m), exactly alternating v1/v2; v2 is 20 % slower.
  await ch.client.command({
    query: `INSERT INTO gatescope.http_requests (start_time, duration_ms, response_code, route_name, upstream_cluster, authority, method, path, path_template, request_id, node_id, node_cluster)
      SELECT fromUnixTimestamp64Milli(toInt64({t:Int64} + number * 300)), if(number % 2 = 0, 10 + (intDiv(number, 2) % 20), (10 + (intDiv(number, 2) % 20)) * 1.2),
             if(number % 100 = 1 OR number % 100 = 3, 503, 200), 'frontend', if(number % 2 = 0, {v1:String}, {v2:String}), 'www.example.com', 'GET', '/', '/', concat('canary-', toString(number)), 'gw-a', 'edge'
      FROM numbers(2000)`,
    query_params: { t: T + 30 * 60_000, v1: V1, v2: V2 },
  });
  // Volume for rollup-vs-raw agreement: 300k rows over the 24 h ending at T + 2 h.
  await generate(ch, { startMs: NOW - 24 * H, spanMs: 24 * H, total: 300_000, chunk: 150_000 });
  app = await buildApp({
    config: testConfig(),
    clickhouse: ch,
    now: () => NOW,
    logger: false,
    sqlLimits: { maxExecutionTimeS: 1, maxResultRows: 1000 },
  });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await cleanup?.();
});

describe('ops endpoints', () => {
  it('answers /healthz and /readyz without a token', async () => {
    expect((await app.inject('/healthz')).json()).toEqual({ status: 'ok' });
    const ready = await app.inject('/readyz');
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready', clickhouse: 'embedded' });
  });
  it('exposes Prometheus metrics including the request duration histogram, to a token with a scope', async () => {
    await get(`/api/v1/summary?${CHECKOUT_RANGE}`);
    expect((await app.inject('/metrics')).statusCode).toBe(401);
    const text = (await app.inject({ url: '/metrics', headers: auth() })).body;
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toMatch(
      /gatescope_api_http_request_duration_seconds_bucket\{[^}]*route="\/api\/v1\/summary"/,
    );
  });
  it('generates the OpenAPI document from the route schemas and serves /docs, both to read tokens', async () => {
    expect((await app.inject('/openapi.json')).statusCode).toBe(401);
    expect((await app.inject('/docs/')).statusCode).toBe(401);
    const doc = (await app.inject({ url: '/openapi.json', headers: auth() })).json();
    expect(doc.openapi).toMatch(/^3\./);
    for (const p of [
      '/api/v1/summary',
      '/api/v1/routes',
      '/api/v1/timeseries',
      '/api/v1/routes/{route}/split',
      '/api/v1/status',
      '/api/v1/top/{dimension}',
      '/api/v1/requests',
      '/api/v1/sql',
    ]) {
      expect(Object.keys(doc.paths)).toContain(p);
    }
    expect(doc.paths['/api/v1/routes'].get.parameters.map((p: { name: string }) => p.name)).toEqual(
      expect.arrayContaining(['sort', 'route', 'status_class']),
    );
    const docs = await app.inject({ url: '/docs/', headers: auth() });
    expect(docs.statusCode).toBe(200);
    expect(docs.body).toContain('swagger');
    // Swagger UI has its own Content-Security-Policy; still no framing.
    expect(docs.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
  });
});

describe('auth', () => {
  it('distinguishes missing (401), invalid (401) and insufficient (403) tokens', async () => {
    const none = await app.inject('/api/v1/summary');
    expect(none.statusCode).toBe(401);
    expect(none.json().error.code).toBe('ERR_AUTH_REQUIRED');
    const bad = await get('/api/v1/summary', 'wrong-token-xyz');
    expect(bad.status).toBe(401);
    expect(bad.body.error.code).toBe('ERR_AUTH_INVALID');
    const sqlRead = await sql('SELECT 1', READ);
    expect(sqlRead.status).toBe(403);
    expect(sqlRead.body.error).toMatchObject({ code: 'ERR_AUTH_FORBIDDEN' });
    expect((await sql('SELECT 1', ADMIN)).status).toBe(200);
  });
  it('decides on the matched route: encoded spellings of the SQL path need the admin scope (issue 7)', async () => {
    const post = (url: string, token?: string) =>
      app.inject({
        method: 'POST',
        url,
        headers: token ? auth(token) : {},
        payload: { query: 'SELECT 1' },
      });
    const anonymous = await post('/%61pi/v1/sql');
    expect([anonymous.statusCode, anonymous.json().error.code]).toEqual([401, 'ERR_AUTH_REQUIRED']);
    const reader = await post('/api/v1/%73ql', READ);
    expect([reader.statusCode, reader.json().error.code]).toEqual([403, 'ERR_AUTH_FORBIDDEN']);
    expect((await post('/api/v1/%73ql', ADMIN)).statusCode).toBe(200);
  });
});

describe('summary and filters', () => {
  it('gives exact totals from raw rows, and the one quantile definition (quantilesDD 0.5 %)', async () => {
    const { status, body } = await get(`/api/v1/summary?${CHECKOUT_RANGE}&route=checkout`);
    expect(status).toBe(200);
    // Durations 1..10 ms: p50 is the ⌊0.5·9⌋ = 4th order statistic (5 ms), p99 the 8th (9 ms), each within 0.5 %.
    const sketch = new LatencySketch();
    for (let d = 1; d <= 10; d++) sketch.add(d);
    const r3 = (v: number) => Math.round(v * 1000) / 1000;
    expect(Math.abs(body.p50_ms / 5 - 1)).toBeLessThanOrEqual(0.005);
    expect(Math.abs(body.p99_ms / 9 - 1)).toBeLessThanOrEqual(0.005);
    expect(body).toMatchObject({
      requests: 10,
      error_rate: 0.2,
      p50_ms: r3(sketch.quantile(0.5)),
      p90_ms: r3(sketch.quantile(0.9)),
      p95_ms: r3(sketch.quantile(0.95)),
      p99_ms: r3(sketch.quantile(0.99)),
      max_ms: 10,
      bytes_sent: 55_000,
      bytes_received: 550,
      status_classes: { '1xx': 0, '2xx': 6, '3xx': 0, '4xx': 1, '5xx': 2, none: 1 },
      source: { kind: 'raw' },
    });
    expect(body.rps).toBeCloseTo(10 / 600, 6);
    expect(body.from).toBe(iso(T + 10 * 60_000));
  });
  it.each([
    ['gateway=gw-a', 4],
    ['gateway=internal', 6],
    ['authority=api.shop.example.com', 2],
    ['upstream_cluster=outbound%7C8080%7C%7Ccheckout.shop.svc.cluster.local', 10],
    ['method=post', 4],
    ['status_class=5xx', 2],
    ['status_class=none&status_class=4xx', 2],
    ['response_flag=DC', 1],
    ['response_flag=UF', 2],
    ['path_template=%2Fcheckout%2F%7Bid%7D%2Fpay', 5],
  ])('filters by %s', async (filter, expected) => {
    const { body } = await get(`/api/v1/summary?${CHECKOUT_RANGE}&route=checkout&${filter}`);
    expect(body.requests).toBe(expected);
  });
  it('treats filter values as data, never as SQL', async () => {
    const { status, body } = await get(
      `/api/v1/summary?${CHECKOUT_RANGE}&route=${encodeURIComponent("checkout' OR 1=1 --")}`,
    );
    expect(status).toBe(200);
    expect(body.requests).toBe(0);
    expect(body.p50_ms).toBeNull();
  });
});

describe('bad parameters', () => {
  it.each([
    ['/api/v1/summary?range=5minutes', 'range', 'ERR_QUERY_BAD_RANGE'],
    ['/api/v1/summary?from=yesterday', 'from', 'ERR_QUERY_BAD_TIME'],
    [`/api/v1/summary?from=${NOW}&to=${NOW - 1000}`, 'from', 'ERR_QUERY_BAD_RANGE'],
    ['/api/v1/summary?status_class=6xx', 'status_class', 'ERR_QUERY_BAD_PARAM'],
    ['/api/v1/routes?sort=speed', 'sort', 'ERR_BAD_REQUEST'],
    ['/api/v1/routes?limit=0', 'limit', 'ERR_QUERY_BAD_PARAM'],
    ['/api/v1/timeseries?metrics=rps,latency', 'metrics', 'ERR_QUERY_BAD_PARAM'],
    ['/api/v1/timeseries?step=7q', 'step', 'ERR_QUERY_BAD_STEP'],
    ['/api/v1/timeseries?range=30d&step=10s', 'step', 'ERR_QUERY_BAD_STEP'],
    ['/api/v1/requests?cursor=garbage', 'cursor', 'ERR_QUERY_BAD_CURSOR'],
    ['/api/v1/top/cookie', 'dimension', 'ERR_BAD_REQUEST'],
    ['/api/v1/summary?colour=red', 'colour', 'ERR_BAD_REQUEST'],
    ['/api/v1/summary?range=1h&path_template=%2Fx&source=rollup', 'source', 'ERR_QUERY_NO_ROLLUP'],
  ])('%s -> 400 naming %s', async (url, param, code) => {
    const { status, body } = await get(url);
    expect(status).toBe(400);
    expect(body.error.code).toBe(code);
    expect(body.error.message).toContain(param);
  });
});

describe('routes', () => {
  it('lists one item per route with shares, sorted and limited', async () => {
    const { body } = await get(
      `/api/v1/routes?from=${iso(T)}&to=${iso(T + H)}&route=checkout&route=frontend`,
    );
    expect(body.routes.map((r: { route: string }) => r.route)).toEqual(['frontend', 'checkout']);
    expect(body.routes[0]).toMatchObject({ route: 'frontend', requests: 2000 });
    expect(body.routes[0].share + body.routes[1].share).toBeCloseTo(1, 9);
    expect(body.routes[1].share).toBeCloseTo(10 / 2010, 9);
    const byP99 = await get(
      `/api/v1/routes?from=${iso(T)}&to=${iso(T + H)}&route=checkout&route=frontend&sort=p99_ms&order=asc&limit=1`,
    );
    expect(byP99.body.routes).toHaveLength(1);
    expect(byP99.body.routes[0].route).toBe('checkout');
  });
});

describe('window cache', () => {
  const metric = async (name: string) => {
    const text = (await app.inject({ url: '/metrics', headers: auth() })).body;
    return Number(new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  };
  it('answers a filtered 24 h window from its second ask on with the same body, and says so in /metrics', async () => {
    const url = `/api/v1/routes?range=24h&method=GET&sort=p99_ms&limit=5`;
    const first = (await get(url)).body;
    expect(first.source.granularity_s).toBe(3600);
    expect(first.routes.length).toBeGreaterThan(0);
    expect(await metric('gatescope_api_window_cache_windows')).toBe(0);
    // The second ask admits it; the fill runs in the background.
    expect((await get(url)).body).toEqual(first);
    await until(async () => (await metric('gatescope_api_window_cache_windows')) === 1);
    const cachedBefore = await metric('gatescope_api_window_cache_answers_total{source="cache"}');
    expect((await get(url)).body).toEqual(first);
    expect(await metric('gatescope_api_window_cache_answers_total{source="cache"}')).toBe(cachedBefore + 1);
    expect(await metric('gatescope_api_window_cache_fills_total')).toBe(1);
    expect(await metric('gatescope_api_window_cache_partials')).toBeGreaterThan(0);
    // Another sort of the same window: the same cached window, ordered as the statement orders it.
    const byRoute = (await get(`/api/v1/routes?range=24h&method=GET&sort=route&order=desc&limit=3`)).body;
    const all = (await get(`/api/v1/routes?range=24h&method=GET&limit=100`)).body.routes.map(
      (r: { route: string }) => r.route,
    );
    expect(byRoute.routes.map((r: { route: string }) => r.route)).toEqual(
      [...all].sort().reverse().slice(0, 3),
    );
  });
});

async function until(check: () => Promise<boolean>, ms = 10_000) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('canary split', () => {
  it('shows a 50/50 split and how much slower v2 is than the baseline', async () => {
    const { status, body } = await get(
      `/api/v1/routes/frontend/split?from=${iso(T + 30 * 60_000)}&to=${iso(T + 40 * 60_000)}`,
    );
    expect(status).toBe(200);
    expect(body.requests).toBe(2000);
    expect(body.clusters).toHaveLength(2);
    const v1 = body.clusters.find((c: { upstream_cluster: string }) => c.upstream_cluster === V1);
    const v2 = body.clusters.find((c: { upstream_cluster: string }) => c.upstream_cluster === V2);
    expect(v1.share).toBe(0.5);
    expect(v2.share).toBe(0.5);
    expect(v1.requests).toBe(1000);
    expect(body.baseline).toBe(V1); // equal sizes: ties go to the first name
    expect(v1.baseline).toBe(true);
    expect(v2.error_rate).toBe(0.04);
    expect(v1.error_rate).toBe(0);
    expect(v2.error_rate_diff).toBeCloseTo(0.04, 9);
    expect(Math.abs(v2.p50_ratio / 1.2 - 1)).toBeLessThan(0.011); // two quantiles, each within 0.5 %
    expect(v2.p99_ms_diff).toBeCloseTo(v2.p99_ms - v1.p99_ms, 3);
    expect(v2.p99_ms_diff).toBeGreaterThan(0);
  });
});

describe('timeseries', () => {
  it('gives chart-ready series per step and group', async () => {
    const { body } = await get(
      `/api/v1/timeseries?${CHECKOUT_RANGE}&route=checkout&step=1m&metrics=requests,5xx&group_by=status_class`,
    );
    expect(body.step_s).toBe(60);
    const five = body.series.find((s: any) => s.labels.metric === '5xx' && s.labels.status_class === '5xx');
    expect(five.points).toHaveLength(10);
    expect(five.points[0][0]).toBe(T + 10 * 60_000);
    expect(five.points.map((p: number[]) => p[1])).toEqual([0, 0, 0, 0, 0, 0, 0, 1, 1, 0]);
    const ok = body.series.find(
      (s: any) => s.labels.metric === 'requests' && s.labels.status_class === '2xx',
    );
    expect(ok.points.reduce((s: number, p: number[]) => s + p[1], 0)).toBe(6);
  });
  it('chooses the step automatically', async () => {
    const { body } = await get(`/api/v1/timeseries?${CHECKOUT_RANGE}&route=checkout&metrics=rps`);
    expect(body.step_s).toBe(10);
    expect(body.series).toHaveLength(1);
    expect(body.series[0].points).toHaveLength(60);
    const day = await get(`/api/v1/timeseries?range=24h&metrics=requests`);
    expect(day.body.step_s).toBe(3600);
    expect(day.body.source.table).toBe('http_totals_1h');
  });
});

describe('status, top and requests', () => {
  it('lists non-2xx traffic first', async () => {
    const { body } = await get(`/api/v1/status?${CHECKOUT_RANGE}&route=checkout`);
    expect(body.rows.map((r: any) => [r.response_code, r.response_flags, r.requests])).toEqual([
      [503, ['UF'], 2],
      [0, ['DC'], 1],
      [404, [], 1],
      [200, [], 6],
    ]);
    expect(body.rows[0]).toMatchObject({ status_class: '5xx', route: 'checkout', share: 0.2 });
    expect(body.ingest).toEqual({ dead_letters: { files: 0, entries: 0, by: [] } });
  });
  it('says which dead letters wait for replay (the newest state of each file, every collector)', async () => {
    const at = (s: number) => new Date(T + s * 1000).toISOString().replace('T', ' ').replace('Z', '');
    const row = (collector: string, id: string, state: string, updated: number, more: object = {}) => ({
      collector,
      id,
      table_name: 'http_requests',
      reason: 'insert_refused',
      error_code: 469,
      error_name: 'VIOLATED_CONSTRAINT',
      error_message: 'Constraint … violated',
      entries: 2,
      created_at: at(1),
      state,
      updated_at: at(updated),
      ...more,
    });
    await ch.client.insert({
      table: 'gatescope.ingest_dead_letters',
      values: [
        row('c1', 'a', 'parked', 1),
        row('c1', 'b', 'parked', 1),
        row('c1', 'b', 'replayed', 5), // replayed since: no longer waiting
        row('c2', 'a', 'parked', 2, { entries: 5, created_at: at(3) }),
        row('c2', 'w', 'parked', 2, {
          reason: 'start_time_out_of_range',
          error_code: 0,
          error_name: '',
          entries: 40,
        }),
      ],
      format: 'JSONEachRow',
    });
    const { body } = await get(`/api/v1/status?${CHECKOUT_RANGE}`);
    expect(body.ingest.dead_letters).toEqual({
      files: 3,
      entries: 47,
      by: [
        {
          table: 'http_requests',
          reason: 'start_time_out_of_range',
          error_name: '',
          files: 1,
          entries: 40,
          oldest: expect.any(String),
          newest: expect.any(String),
        },
        {
          table: 'http_requests',
          reason: 'insert_refused',
          error_name: 'VIOLATED_CONSTRAINT',
          files: 2,
          entries: 7,
          oldest: expect.stringMatching(/^\d{4}-\d\d-\d\d/),
          newest: expect.any(String),
        },
      ],
    });
    await ch.client.command({ query: 'TRUNCATE TABLE gatescope.ingest_dead_letters' });
  });
  it('ranks top values by requests, errors and p99', async () => {
    const byReq = await get(`/api/v1/top/path_template?${CHECKOUT_RANGE}&route=checkout`);
    expect(byReq.body.items.map((i: any) => [i.value, i.requests])).toEqual([
      ['/checkout/{id}', 5],
      ['/checkout/{id}/pay', 5],
    ]);
    const byErr = await get(`/api/v1/top/path_template?${CHECKOUT_RANGE}&route=checkout&by=errors`);
    expect(byErr.body.items[0]).toMatchObject({ value: '/checkout/{id}/pay', errors: 2 });
    const ua = await get(`/api/v1/top/user_agent?${CHECKOUT_RANGE}&route=checkout&by=p99_ms&limit=1`);
    expect(ua.body.items).toEqual([expect.objectContaining({ value: 'curl/8.5.0', requests: 3 })]);
    // curl's durations are 8, 9, 10 ms: p99 is the 1st order statistic (9 ms) as the sketch reports it.
    const curl = new LatencySketch().add(8).add(9).add(10);
    expect(ua.body.items[0].p99_ms).toBeCloseTo(curl.quantile(0.99), 9);
  });
  it('pages through raw requests newest first with a cursor', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const { body } = await get(
        `/api/v1/requests?${CHECKOUT_RANGE}&route=checkout&limit=3${cursor ? `&cursor=${cursor}` : ''}`,
      );
      seen.push(...body.rows.map((r: any) => r.request_id));
      cursor = body.next_cursor;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(4);
    expect(seen).toEqual(CHECKOUT.map((r) => r.request_id).reverse());
  });
  it('returns every stored column and filters by request id, duration and code', async () => {
    const one = await get(`/api/v1/requests?${CHECKOUT_RANGE}&request_id=req-08`);
    expect(one.body.rows).toHaveLength(1);
    expect(one.body.rows[0]).toMatchObject({
      request_id: 'req-08',
      response_code: 503,
      response_flags: ['UF'],
      status_class: '5xx',
      upstream_host: '10.2.0.1:8080',
      node_id: 'gw-b',
      bytes_sent: 8000,
    });
    expect(Object.keys(one.body.rows[0])).toEqual(
      expect.arrayContaining([
        'start_time',
        'user_agent',
        'downstream_remote_address',
        'time_to_last_rx_byte_ms',
        'node_cluster',
      ]),
    );
    expect(
      (await get(`/api/v1/requests?${CHECKOUT_RANGE}&route=checkout&min_duration_ms=8.5`)).body.rows.map(
        (r: any) => r.request_id,
      ),
    ).toEqual(['req-10', 'req-09']);
    expect(
      (await get(`/api/v1/requests?${CHECKOUT_RANGE}&route=checkout&response_code=404`)).body.rows.map(
        (r: any) => r.request_id,
      ),
    ).toEqual(['req-07']);
  });
});

describe('rollups agree with raw rows', () => {
  const day = `from=${iso(NOW - 24 * H)}&to=${iso(NOW)}`;
  const within = (a: number, b: number, rel: number) => Math.abs(a - b) <= rel * Math.abs(b);

  it('per route over 24 h: the same counts and percentiles within 1 %', async () => {
    const raw = await get(`/api/v1/routes?${day}&source=raw&sort=route&limit=1000`);
    const rollup = await get(`/api/v1/routes?${day}&sort=route&limit=1000`);
    expect(raw.body.source.kind).toBe('raw');
    expect(rollup.body.source).toMatchObject({ kind: 'routes', table: 'http_routes_1h' });
    // Hours have no coarser tier (migration 0008 measured a 6-hour one slower for 24 h): one table.
    expect(rollup.body.source.tables).toEqual(['http_routes_1h']);
    expect(rollup.body.routes.length).toBeGreaterThanOrEqual(20);
    expect(rollup.body.routes.map((r: any) => r.route)).toEqual(raw.body.routes.map((r: any) => r.route));
    let compared = 0;
    for (const [i, r] of rollup.body.routes.entries()) {
      const x = raw.body.routes[i];
      expect(r.requests).toBe(x.requests);
      expect(r.status_classes).toEqual(x.status_classes);
      expect(r.bytes_sent).toBe(x.bytes_sent);
      expect(r.max_ms).toBe(x.max_ms);
      // Percentiles of a handful of values, or of 20 distinct values (the canary), depend on the rank convention
      // (the sketch returns an order statistic, exact ones interpolate) more than on the sketch: compare the
      // generated continuous distributions.
      if (!r.route.startsWith('route-') || r.requests < 1000) continue;
      for (const k of ['p50_ms', 'p90_ms', 'p95_ms', 'p99_ms']) {
        expect(within(r[k], x[k], 0.01), `${r.route} ${k}: rollup ${r[k]} vs exact ${x[k]}`).toBe(true);
        compared++;
      }
    }
    expect(compared).toBeGreaterThanOrEqual(80);
    // The bimodal route too (cache hits ~1 ms, misses ~200 ms).
    const cache = rollup.body.routes.find((r: any) => r.route === 'route-07');
    expect(cache.p50_ms).toBeLessThan(5);
    expect(cache.p95_ms).toBeGreaterThan(100);
  });

  it('with a filter only the full-dimension rollup keeps (status_class, gateway)', async () => {
    const q = `${day}&status_class=2xx&gateway=gw-1`;
    const raw = await get(`/api/v1/summary?${q}&source=raw`);
    const rollup = await get(`/api/v1/summary?${q}`);
    expect(rollup.body.source.table).toBe('http_requests_1h');
    expect(rollup.body.requests).toBe(raw.body.requests);
    expect(rollup.body.requests).toBeGreaterThan(100_000);
    for (const k of ['p50_ms', 'p90_ms', 'p95_ms', 'p99_ms'])
      expect(within(rollup.body[k], raw.body[k], 0.01)).toBe(true);
  });

  it('status counts from the full-dimension rollup equal raw counts', async () => {
    const raw = await get(`/api/v1/status?${day}&source=raw&limit=5000`);
    const rollup = await get(`/api/v1/status?${day}&limit=5000`);
    expect(rollup.body.source.table).toBe('http_requests_1h');
    const key = (r: any) => `${r.response_code}|${r.response_flags.join('+')}|${r.route}|${r.requests}`;
    expect(rollup.body.rows.map(key)).toEqual(raw.body.rows.map(key));
    expect(rollup.body.rows[0].status_class).not.toBe('2xx');
  });

  it('auto mode reads a 1–12 h range from raw rows when they are cheaper than the per-minute states', async () => {
    // 300k rows over 24 h on 20 routes: ~12 raw rows per per-minute state, far below RAW_ROWS_PER_STATE.
    const six = `from=${iso(NOW - 6 * H)}&to=${iso(NOW)}`;
    const auto = await get(`/api/v1/routes?${six}`);
    expect(auto.status).toBe(200);
    expect(auto.body.source).toMatchObject({ kind: 'raw', table: 'http_requests' });
    const rollup = await get(`/api/v1/routes?${six}&source=rollup`);
    expect(rollup.body.source.table).toBe('http_routes_1m');
    const total = (b: any) => b.routes.reduce((n: number, r: any) => n + r.requests, 0);
    expect(total(auto.body)).toBeGreaterThan(0);
    // Same question, both sources: the rollup covers whole minutes, so it may hold a few more requests.
    expect(Math.abs(total(rollup.body) - total(auto.body)) / total(auto.body)).toBeLessThan(0.01);
  });

  it('timeseries from per-minute and hourly rollups match raw buckets', async () => {
    for (const range of [
      // At this test's volume auto mode reads 6 h from raw rows (cheaper, see below): ask for the rollup.
      [`from=${iso(NOW - 6 * H)}&to=${iso(NOW)}&step=1h`, 'http_routes_1m', '&source=rollup'],
      [day, 'http_totals_1h', ''],
    ] as const) {
      const url = `/api/v1/timeseries?${range[0]}&metrics=requests,p50_ms,p99_ms`;
      const raw = await get(`${url}&source=raw`);
      const rollup = await get(`${url}${range[2]}`);
      expect(rollup.body.source.table).toBe(range[1]);
      expect(rollup.body.step_s).toBe(raw.body.step_s);
      expect(rollup.body.series).toHaveLength(3);
      for (const [i, s] of rollup.body.series.entries()) {
        const r = raw.body.series[i];
        expect(s.labels).toEqual(r.labels);
        for (const [j, [t, v]] of s.points.entries()) {
          expect(t).toBe(r.points[j][0]);
          if (s.labels.metric === 'requests') expect(v).toBe(r.points[j][1]);
          else if (v !== null)
            expect(
              within(v, r.points[j][1], 0.01),
              `${s.labels.metric} at ${iso(t)}: ${v} vs ${r.points[j][1]}`,
            ).toBe(true);
        }
      }
    }
  });
});

describe('ad-hoc SQL', () => {
  it('keeps its read-only limits to the query: the shared engine session still takes inserts after it', async () => {
    expect((await sql('SELECT 1 AS one')).status).toBe(200);
    expect((await sql('SELECT count() FROM gatescope.http_requests', ADMIN, 'csv')).status).toBe(200);
    const rs = await ch.client.query({ query: "SELECT getSetting('readonly') AS ro", format: 'JSONEachRow' });
    expect(await rs.json()).toEqual([{ ro: 0 }]);
    await ch.client.command({
      query: 'CREATE TABLE IF NOT EXISTS gatescope.sql_session_probe (x UInt8) ENGINE = Memory',
    });
    await ch.client.command({ query: 'INSERT INTO gatescope.sql_session_probe VALUES (1)' });
    await ch.client.command({ query: 'DROP TABLE gatescope.sql_session_probe' });
  });
  it('answers like ClickHouse FORMAT JSON', async () => {
    const { status, body } = await sql(
      "SELECT route_name, count() AS n FROM gatescope.http_requests WHERE route_name = 'checkout' GROUP BY route_name;",
    );
    expect(status).toBe(200);
    expect(body.meta).toEqual([
      { name: 'route_name', type: 'LowCardinality(String)' },
      { name: 'n', type: 'UInt64' },
    ]);
    expect(body.data).toEqual([{ route_name: 'checkout', n: 10 }]);
    expect(body.rows).toBe(1);
    expect(body.truncated).toBe(false);
    expect(body.statistics.elapsed).toBeGreaterThan(0);
  });
  it('streams CSV', async () => {
    const { status, body, headers } = await sql(
      "SELECT request_id, response_code FROM gatescope.http_requests WHERE route_name = 'checkout' ORDER BY request_id LIMIT 2",
      ADMIN,
      'csv',
    );
    expect(status).toBe(200);
    expect(headers['content-type']).toMatch(/text\/csv/);
    expect(body).toBe('"request_id","response_code"\n"req-01",200\n"req-02",200\n');
  });
  it.each([
    [
      "INSERT INTO gatescope.http_requests (route_name) VALUES ('x')",
      400,
      'ERR_SQL_NOT_SELECT',
      'Only SELECT',
    ],
    ['DROP TABLE gatescope.http_requests', 400, 'ERR_SQL_NOT_SELECT', 'Only SELECT'],
    ['SELECT * FROM system.tables', 403, 'ERR_SQL_DATABASE', 'system.tables'],
    ['SELECT * FROM information_schema.tables', 403, 'ERR_SQL_DATABASE', 'information_schema'],
    [
      'WITH t AS (SELECT name FROM system.databases) SELECT * FROM t',
      403,
      'ERR_SQL_DATABASE',
      'system.databases',
    ],
    [
      'SELECT count() FROM gatescope.http_requests WHERE route_name IN (SELECT name FROM system.users)',
      403,
      'ERR_SQL_DATABASE',
      'system.users',
    ],
    ["SELECT * FROM file('/etc/passwd', LineAsString)", 403, 'ERR_SQL_FUNCTION', 'file()'],
    ["SELECT file('/etc/passwd')", 403, 'ERR_SQL_FUNCTION', 'file()'],
    ["SELECT * FROM url('http://127.0.0.1:1/x', CSV, 'a String')", 403, 'ERR_SQL_FUNCTION', 'url()'],
    ["SELECT * FROM remote('127.0.0.1', system.one)", 403, 'ERR_SQL_FUNCTION', 'remote()'],
    ["SELECT * FROM s3('http://127.0.0.1:1/b/k.csv')", 403, 'ERR_SQL_FUNCTION', 's3()'],
    ['SELECT 1 SETTINGS max_execution_time = 1000', 403, 'ERR_SQL_SETTINGS', 'SETTINGS'],
    ["SELECT 1 INTO OUTFILE '/tmp/gatescope-leak.txt'", 403, 'ERR_SQL_OUTPUT', 'OUTFILE'],
    [
      'SELECT count() FROM numbers(1000000000000) WHERE cityHash64(number) = 42',
      400,
      'ERR_SQL_TIMEOUT',
      'longer than allowed',
    ],
    ['SELECT nope FROM gatescope.http_requests', 400, 'ERR_SQL_INVALID', 'nope'],
  ])('%s -> %i %s', async (query, status, code, text) => {
    const res = await sql(query);
    expect(res.status, JSON.stringify(res.body)).toBe(status);
    expect(res.body.error.code).toBe(code);
    expect(res.body.error.message).toContain(text);
  });
  it('cuts a result at the row cap and says so', async () => {
    const { status, body, headers } = await sql('SELECT number FROM numbers(5000)');
    expect(status).toBe(200);
    expect(body.rows).toBe(1000);
    expect(body.data[999]).toEqual({ number: 999 });
    expect(body).toMatchObject({ truncated: true, truncated_by: 'rows' });
    expect(body.message).toMatch(/cut at 1000 rows.*GATESCOPE_SQL_MAX_RESULT_ROWS/);
    expect(headers['x-gatescope-truncated']).toBe('rows');
    const exact = await sql('SELECT number FROM numbers(1000)');
    expect(exact.body).toMatchObject({ rows: 1000, truncated: false });
  });
  it('allows generator table functions and the gatescope tables', async () => {
    const { status, body } = await sql('SELECT sum(number) AS s FROM numbers(10)');
    expect(status).toBe(200);
    expect(body.data).toEqual([{ s: 45 }]);
  });
});

describe('real port', () => {
  it('serves over HTTP on port 0', async () => {
    const server = await buildApp({ config: testConfig(), clickhouse: ch, now: () => NOW, logger: false });
    const address = await server.listen({ host: '127.0.0.1', port: 0 });
    try {
      const res = await fetch(`${address}/api/v1/summary?${CHECKOUT_RANGE}&route=checkout`, {
        headers: auth(),
      });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { requests: number }).requests).toBe(10);
      const unauth = await fetch(`${address}/api/v1/routes`);
      expect(unauth.status).toBe(401);
      // An absolute-form target (what fetch cannot send) is refused before routing, whatever the token.
      const absolute = await rawRequest({
        port: Number(new URL(address).port),
        method: 'POST',
        target: `${address}/api/v1/sql`,
        headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ query: 'SELECT 1' }),
      });
      expect([absolute.status, errorCode(absolute)]).toEqual([400, 'ERR_REQUEST_TARGET']);
    } finally {
      await server.close();
    }
  });
});
