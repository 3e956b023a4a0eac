/* eslint-disable @typescript-eslint/no-explicit-any -- the tests read JSON response bodies */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { ClickHouse } from '@gatescope/clickhouse';
import type { Config } from '@gatescope/config';
import { buildApp } from '../src/index.js';
import { H, openEngine, testConfig } from './fixtures.js';

// A token restricted to some authorities (or gateways) sees only their rows, whatever it asks and however it
// spells it: every analytics endpoint, raw and rollup sources, and ad-hoc SQL (subqueries, CTEs, joins, unions,
// qualified or not, rollup tables). Its own filters can only narrow that.
const TEAM_A = 'team-a-token-123456';
const TEAM_GW = 'team-gw-token-123456';
const OPS = 'ops-token-1234567890';
const T = Math.floor(Date.now() / H) * H - 3 * H;
const NOW = T + 2 * H;
const iso = (ms: number) => new Date(ms).toISOString();

let ch: ClickHouse;
let cleanup: () => Promise<void>;
let app: FastifyInstance;

function config(): Config {
  const c = testConfig();
  c.auth.tokens = [
    {
      name: 'team-a',
      token: TEAM_A,
      scopes: ['read', 'admin'],
      restriction: { authorities: ['a.example.com'] },
    },
    { name: 'team-gw', token: TEAM_GW, scopes: ['read', 'admin'], restriction: { gateways: ['internal'] } },
    { name: 'ops', token: OPS, scopes: ['read', 'admin'] },
  ];
  return c;
}

async function get(url: string, token: string) {
  const res = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
  return { status: res.statusCode, body: res.json() as any };
}
async function sql(query: string, token: string) {
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/sql',
    headers: { authorization: `Bearer ${token}` },
    payload: { query },
  });
  return { status: res.statusCode, body: res.json() as any };
}

// 60 rows on a.example.com via gateway gw-a (cluster edge), 40 on b.example.com via gw-b (cluster internal),
// one a minute from T.
const A = 60;
const B = 40;
beforeAll(async () => {
  ({ ch, cleanup } = await openEngine());
  await ch.client.command({
    query: `INSERT INTO gatescope.http_requests (start_time, duration_ms, response_code, route_name, upstream_cluster, authority, method, path, path_template, request_id, node_id, node_cluster, downstream_remote_address)
      SELECT fromUnixTimestamp64Milli(toInt64({t:Int64} + number * 60000)), number % 7 + 1, if(number % 10 = 0, 503, 200),
             if(number % 2 = 0, 'shop', 'api'), 'outbound|80||svc', if(number < ${A}, 'a.example.com', 'b.example.com'), 'GET',
             concat('/p/', toString(number)), '/p/{id}', concat('r-', toString(number)),
             if(number < ${A}, 'gw-a', 'gw-b'), if(number < ${A}, 'edge', 'internal'), '192.0.2.1'
      FROM numbers(${A + B})`,
    query_params: { t: T },
  });
  app = await buildApp({ config: config(), clickhouse: ch, now: () => NOW, logger: false });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await cleanup?.();
});

const RANGE = `from=${iso(T)}&to=${iso(T + 2 * H)}`;

describe('analytics endpoints', () => {
  it.each(['raw', 'rollup', 'auto'])(
    'summary, routes, timeseries, split, status with source=%s',
    async (source) => {
      const q = `${RANGE}&source=${source}`;
      for (const [token, expected] of [
        [OPS, A + B],
        [TEAM_A, A],
        [TEAM_GW, B],
      ] as const) {
        const summary = await get(`/api/v1/summary?${q}`, token);
        expect(summary.status, JSON.stringify(summary.body)).toBe(200);
        expect(summary.body.requests).toBe(expected);
        if (token !== OPS) expect(summary.body.source.table).not.toMatch(/^http_routes_/);
        const routes = await get(`/api/v1/routes?${q}`, token);
        expect(routes.body.routes.reduce((n: number, r: any) => n + r.requests, 0)).toBe(expected);
        const ts = await get(`/api/v1/timeseries?${q}&metrics=requests&step=1h`, token);
        expect(ts.body.series[0].points.reduce((n: number, p: number[]) => n + (p[1] ?? 0), 0)).toBe(
          expected,
        );
        const split = await get(`/api/v1/routes/shop/split?${q}`, token);
        expect(split.body.requests).toBe(expected / 2);
        const status = await get(`/api/v1/status?${q}`, token);
        expect(status.body.rows.reduce((n: number, r: any) => n + r.requests, 0)).toBe(expected);
      }
    },
  );
  it('top and requests (raw rows)', async () => {
    const top = await get(`/api/v1/top/authority?${RANGE}`, TEAM_A);
    expect(top.body.items.map((i: any) => i.value)).toEqual(['a.example.com']);
    const gw = await get(`/api/v1/top/authority?${RANGE}`, TEAM_GW);
    expect(gw.body.items.map((i: any) => i.value)).toEqual(['b.example.com']);
    const rows = await get(`/api/v1/requests?${RANGE}&limit=1000`, TEAM_A);
    expect(rows.body.rows).toHaveLength(A);
    expect(new Set(rows.body.rows.map((r: any) => r.authority))).toEqual(new Set(['a.example.com']));
  });
  it('user filters only narrow: asking for another authority gives nothing', async () => {
    const other = await get(`/api/v1/summary?${RANGE}&authority=b.example.com`, TEAM_A);
    expect(other.body.requests).toBe(0);
    const rows = await get(`/api/v1/requests?${RANGE}&gateway=gw-b`, TEAM_A);
    expect(rows.body.rows).toHaveLength(0);
    const own = await get(`/api/v1/summary?${RANGE}&authority=a.example.com&authority=b.example.com`, TEAM_A);
    expect(own.body.requests).toBe(A);
  });
});

describe('ad-hoc SQL under a restriction (additional_table_filters, enforced by the engine)', () => {
  const count = async (query: string, token = TEAM_A) => {
    const res = await sql(query, token);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return Number(Object.values(res.body.data[0])[0]);
  };
  it.each([
    'SELECT count() FROM http_requests',
    'SELECT count() FROM gatescope.http_requests',
    'SELECT count() FROM (SELECT * FROM gatescope.http_requests)',
    'WITH r AS (SELECT * FROM http_requests) SELECT count() FROM r',
    'SELECT count() FROM (SELECT authority FROM http_requests UNION ALL SELECT authority FROM gatescope.http_requests) WHERE 1 = 1',
    'SELECT (SELECT count() FROM http_requests)',
    "SELECT countIf(authority != 'b.example.com') FROM http_requests WHERE authority IN ('a.example.com', 'b.example.com')",
    'SELECT count() FROM http_requests AS x JOIN gatescope.http_requests AS y ON x.request_id = y.request_id',
    "SELECT count() FROM numbers(1000) WHERE toString(number) IN (SELECT replaceOne(request_id, 'r-', '') FROM http_requests)",
    'SELECT sum(requests) FROM gatescope.http_requests_1m',
    'SELECT sum(requests) FROM http_requests_1h',
  ])('%s sees only its rows', async (query) => {
    const n = await count(query);
    const expected = query.includes('UNION ALL') ? 2 * A : A;
    expect(n).toBe(expected);
    if (!query.includes('!='))
      expect(await count(query, OPS)).toBe(query.includes('UNION ALL') ? 2 * (A + B) : A + B);
  });
  it('a gateway restriction filters node id or node cluster', async () => {
    expect(await count('SELECT count() FROM http_requests', TEAM_GW)).toBe(B);
    expect(await count('SELECT sum(requests) FROM http_requests_1m', TEAM_GW)).toBe(B);
  });
  it.each([
    'SELECT sum(requests) FROM http_routes_1m',
    'SELECT * FROM gatescope.http_routes_1h',
    'SELECT count() FROM http_requests_1m_mv',
    'SELECT count() FROM tcp_connections',
    'SELECT count() FROM schema_migrations',
    'SELECT count() FROM http_requests WHERE route_name IN (SELECT route_name FROM http_routes_1m)',
  ])('tables the filter cannot apply to are refused: %s', async (query) => {
    const res = await sql(query, TEAM_A);
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('ERR_SQL_RESTRICTED');
    expect(res.body.error.message).toMatch(/authorities a\.example\.com/);
    expect((await sql(query, OPS)).status).toBe(200);
  });
});

describe('analytics limits (GATESCOPE_QUERY_MAX_*)', () => {
  it('stops /top over 400 days of raw rows with a clear 4xx, and the engine serves the next query', async () => {
    const tight = testConfig();
    tight.query = { limits: { maxExecutionTimeS: 30, maxMemoryBytes: 64 * 1024, maxThreads: 1 } };
    const limited = await buildApp({ config: tight, clickhouse: ch, now: () => NOW, logger: false });
    const res = await limited.inject({
      url: '/api/v1/top/path?range=400d&by=p99_ms',
      headers: { authorization: `Bearer ${'admin-token-123456'}` },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('ERR_QUERY_MEMORY');
    expect(res.json().error.message).toMatch(/GATESCOPE_QUERY_MAX_MEMORY_BYTES/);
    await limited.close();
    const after = await get(`/api/v1/summary?${RANGE}`, OPS);
    expect(after.body.requests).toBe(A + B);
  });
});

describe('alerting under a restriction', () => {
  it('refuses every alert endpoint to a restricted token (alerts span every host); others may read', async () => {
    for (const url of [
      '/api/v1/alerts',
      '/api/v1/alerts/rules',
      '/api/v1/alerts/receivers',
      '/api/v1/alerts/history',
    ]) {
      const refused = await get(url, TEAM_A);
      expect(refused.status, url).toBe(403);
      expect(refused.body.error.code).toBe('ERR_ALERTS_RESTRICTED');
      expect((await get(url, OPS)).status, url).toBe(200);
    }
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/alerts/receivers',
      headers: { authorization: `Bearer ${TEAM_GW}` },
      payload: { name: 'x', url: 'https://hooks.example.com/x' },
    });
    expect(res.statusCode).toBe(403);
  });
});
