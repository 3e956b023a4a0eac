/* eslint-disable @typescript-eslint/no-explicit-any -- the tests read JSON response bodies */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { ClickHouse } from '@gatescope/clickhouse';
import { buildApp } from '../src/index.js';
import { H, openEngine, READ, testConfig } from './fixtures.js';

// The UI's way-finding endpoints against the real embedded engine: values, flows, canary, health, schema.
const T = Math.floor(Date.now() / H) * H - 3 * H;
const NOW = T + 2 * H;
const iso = (ms: number) => new Date(ms).toISOString();
const V1 = 'outbound|80||frontend.default.svc.cluster.local';
const V2 = 'outbound|80||frontendv2.default.svc.cluster.local';
const RANGE = `from=${iso(T)}&to=${iso(T + H)}`;

let ch: ClickHouse;
let cleanup: () => Promise<void>;
let app: FastifyInstance;
async function get(url: string, token: string | undefined = READ) {
  const res = await app.inject({
    method: 'GET',
    url,
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  return { status: res.statusCode, body: res.json() as any };
}

beforeAll(async () => {
  ({ ch, cleanup } = await openEngine());
  // 2,000 canary requests on frontend-canary, alternating v1/v2, v2 20 % slower, 2 % 5xx on v2 only; 400 NR 404s
  // with no route; 30 checkout requests.
  await ch.client.command({
    query: `INSERT INTO gatescope.http_requests (start_time, duration_ms, response_code, route_name, upstream_cluster, authority, method, path, path_template, request_id, node_id, node_cluster)
      SELECT fromUnixTimestamp64Milli(toInt64({t:Int64} + number * 600)), if(number % 2 = 0, 10 + number % 20, (10 + number % 20) * 1.2),
             if(number % 100 = 1 OR number % 100 = 3, 503, 200), 'frontend-canary', if(number % 2 = 0, {v1:String}, {v2:String}),
             'shop.example.com', 'GET', '/', '/', concat('c-', toString(number)), 'router~10.0.0.7~ingress-1.istio-system~x', 'istio-ingressgateway.istio-system'
      FROM numbers(2000)`,
    query_params: { t: T + 60_000, v1: V1, v2: V2 },
  });
  await ch.client.command({
    query: `INSERT INTO gatescope.http_requests (start_time, duration_ms, response_code, response_flags, route_name, upstream_cluster, authority, method, path, path_template, request_id, node_id, node_cluster)
      SELECT fromUnixTimestamp64Milli(toInt64({t:Int64} + number * 1000)), 0.3, 404, ['NR'], '', '', 'shop.example.com', 'GET', '/nope', '/nope', concat('nr-', toString(number)), 'gw', 'istio-ingressgateway.istio-system'
      FROM numbers(400)`,
    query_params: { t: T + 60_000 },
  });
  await ch.client.command({
    query: `INSERT INTO gatescope.http_requests (start_time, duration_ms, response_code, route_name, upstream_cluster, authority, method, path, path_template, request_id, node_id, node_cluster)
      SELECT fromUnixTimestamp64Milli(toInt64({t:Int64} + number * 1000)), 5, 200, 'checkout', 'outbound|80||checkout.default.svc.cluster.local', 'api.example.com', 'POST', '/checkout', '/checkout', concat('k-', toString(number)), 'gw', 'istio-ingressgateway.istio-system'
      FROM numbers(30)`,
    query_params: { t: T + 60_000 },
  });
  app = await buildApp({ config: testConfig(), clickhouse: ch, logger: false, now: () => NOW });
});
afterAll(async () => {
  await app?.close();
  await cleanup?.();
});

describe('values (autocomplete, did-you-mean)', () => {
  it('lists the values of a dimension in the range, busiest first, optionally containing a text', async () => {
    const r = await get(`/api/v1/values/route?${RANGE}`);
    expect(r.status).toBe(200);
    expect(r.body.values).toEqual([
      { value: 'frontend-canary', requests: 2000 },
      { value: '', requests: 400 },
      { value: 'checkout', requests: 30 },
    ]);
    const c = await get(`/api/v1/values/upstream_cluster?${RANGE}&prefix=FRONTENDV2`);
    expect(c.body.values).toEqual([{ value: V2, requests: 1000 }]);
    const g = await get(`/api/v1/values/gateway?${RANGE}`);
    expect(g.body.values.map((v: any) => v.value)).toEqual(['istio-ingressgateway.istio-system']);
    const f = await get(`/api/v1/values/response_flag?${RANGE}`);
    expect(f.body.values).toEqual([{ value: 'NR', requests: 400 }]);
    const empty = await get(`/api/v1/values/route?from=${iso(T - 3 * H)}&to=${iso(T - 2 * H)}`);
    expect(empty.body.values).toEqual([]);
  });

  it('refuses an unknown dimension and wants a token', async () => {
    expect((await get(`/api/v1/values/user_agent?${RANGE}`)).status).toBe(400);
    expect((await get(`/api/v1/values/route?${RANGE}`, '')).status).toBe(401);
    expect((await get(`/api/v1/values/route?range=banana`)).body.error.code).toBe('ERR_QUERY_BAD_RANGE');
  });
});

describe('flows (the routing map)', () => {
  it('gives gateway -> route totals and gateway -> route -> cluster rows with rps, 5xx, p99 and health', async () => {
    const r = await get(`/api/v1/flows?${RANGE}`);
    expect(r.status).toBe(200);
    const canary = r.body.routes.find((x: any) => x.route === 'frontend-canary');
    expect(canary).toMatchObject({
      gateway: 'istio-ingressgateway.istio-system',
      upstream_cluster: '',
      requests: 2000,
    });
    expect(canary.rps).toBeCloseTo(2000 / 3600, 5);
    expect(canary.error_rate).toBeCloseTo(40 / 2000);
    expect(canary.p99_ms).toBeGreaterThan(20);
    const split = r.body.clusters.filter((x: any) => x.route === 'frontend-canary');
    expect(split.map((x: any) => [x.upstream_cluster, x.requests]).sort()).toEqual([
      [V1, 1000],
      [V2, 1000],
    ]);
    expect(split.find((x: any) => x.upstream_cluster === V2).health).toBe('degraded');
    const nr = r.body.routes.find((x: any) => x.route === '');
    expect(nr).toMatchObject({ requests: 400, health: 'failing' });
  });
});

describe('canary against an explicit baseline', () => {
  it('chooses the stable cluster by name and names the slower one in the verdict', async () => {
    const r = await get(`/api/v1/routes/frontend-canary/canary?${RANGE}`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ baseline: V1, baseline_chosen_by: 'name', slower: V2, requests: 2000 });
    expect(r.body.verdict).toMatch(
      /^frontendv2\.default is slower than frontend\.default: \+\d+ % p50, \+\d+ % p99, \+4\.00 pp 5xx over 1h, n = 1,000 vs 1,000\.$/,
    );
    const v2 = r.body.clusters.find((c: any) => c.upstream_cluster === V2);
    expect(v2.vs_baseline.p50_ratio).toBeGreaterThan(1.2);
    expect(v2.vs_baseline.p50_ratio).toBeLessThan(1.3);
    expect(v2.share).toBe(0.5);
    expect(r.body.clusters.find((c: any) => c.baseline).vs_baseline).toBeNull();
  });

  it('takes the baseline the user gives, by full or short name', async () => {
    for (const b of [encodeURIComponent(V2), 'frontendv2.default']) {
      const r = await get(`/api/v1/routes/frontend-canary/canary?${RANGE}&baseline=${b}`);
      expect(r.body).toMatchObject({ baseline: V2, baseline_chosen_by: 'user', slower: null });
      expect(r.body.verdict).toMatch(/^frontend\.default is faster than frontendv2\.default/);
    }
  });

  it('an unknown route has no requests and no verdict to give', async () => {
    const r = await get(`/api/v1/routes/frontend/canary?${RANGE}`);
    expect(r.body).toMatchObject({ requests: 0, baseline: null, clusters: [] });
  });
});

describe('health over a range', () => {
  it('judges each route by 5xx and 4xx with a minimum request count; an NR-only route is failing', async () => {
    const r = await get(`/api/v1/health?${RANGE}`);
    expect(r.status).toBe(200);
    const by = Object.fromEntries(r.body.routes.map((x: any) => [x.route, x]));
    expect(by['frontend-canary'].health).toBe('degraded');
    expect(by[''].health).toBe('failing');
    expect(by[''].reason).toContain('4xx 100.0 %');
    expect(by.checkout.health).toBe('healthy');
    expect(r.body.thresholds).toMatchObject({ degradedErrorRate: 0.001, minRequests: 20 });
  });
});

describe('schema for the SQL console', () => {
  it('lists the database tables with column types (system tables are not readable through SQL)', async () => {
    const r = await get('/api/v1/schema');
    expect(r.status).toBe(200);
    expect(r.body.database).toBe('gatescope');
    const t = r.body.tables.find((x: any) => x.name === 'http_requests');
    expect(t.columns).toEqual(
      expect.arrayContaining([
        { name: 'duration_ms', type: expect.stringMatching(/Float|Decimal/), comment: '' },
      ]),
    );
    expect(t.rows).toBe(2430);
    expect(r.body.tables.map((x: any) => x.name)).not.toContain('schema_migrations');
  });

  it('every new route is in the OpenAPI document', async () => {
    const doc = await get('/openapi.json');
    for (const p of [
      '/api/v1/values/{dimension}',
      '/api/v1/flows',
      '/api/v1/routes/{route}/canary',
      '/api/v1/health',
      '/api/v1/schema',
    ])
      expect(Object.keys(doc.body.paths)).toContain(p);
  });
});
