import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import type { ClickHouse } from '@gatescope/clickhouse';
import { buildApp } from '../src/index.js';
import { ADMIN, READ, testConfig } from './fixtures.js';

// These need no data: a stand-in ClickHouse whose ping can fail, and a query that must never be reached.
function fakeClickHouse(up: boolean): ClickHouse {
  const unreachable = {
    query: async () => {
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' });
    },
  } as never;
  return {
    engine: 'server',
    database: 'gatescope',
    client: unreachable,
    reader: unreachable,
    sql: unreachable,
    users: { main: 'default', reader: 'default', sql: 'default' },
    streamText: () => {
      throw new Error('not reached');
    },
    insertNative: async () => ({}),
    ping: async () => {
      if (!up) throw new Error('connect ECONNREFUSED 127.0.0.1:8123');
      return true;
    },
    close: async () => undefined,
  };
}

const webRoot = mkdtempSync(join(tmpdir(), 'gatescope-web-'));
writeFileSync(join(webRoot, 'index.html'), '<!doctype html><title>gatescope</title><div id="app"></div>');
mkdirSync(join(webRoot, 'assets'));
writeFileSync(join(webRoot, 'assets', 'app.js'), 'console.log("ui")');
afterAll(() => rmSync(webRoot, { recursive: true, force: true }));

describe('readiness', () => {
  it('answers 503 with a clear message when ClickHouse is unreachable, while /healthz stays up', async () => {
    const app = await buildApp({ config: testConfig(), clickhouse: fakeClickHouse(false), logger: false });
    const res = await app.inject('/readyz');
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('ERR_CLICKHOUSE_UNAVAILABLE');
    expect(res.json().error.message).toMatch(/ClickHouse .* not reachable.*ECONNREFUSED/);
    expect((await app.inject('/healthz')).statusCode).toBe(200);
    const api = await app.inject({ url: '/api/v1/summary', headers: { authorization: `Bearer ${READ}` } });
    expect(api.statusCode).toBe(503);
    expect(api.json().error.code).toBe('ERR_CLICKHOUSE_UNAVAILABLE');
    await app.close();
  });
});

describe('rate limiting', () => {
  it('limits per token, not globally, and says when to retry', async () => {
    const app = await buildApp({
      config: testConfig({ rateLimitPerMinute: 3 }),
      clickhouse: fakeClickHouse(true),
      logger: false,
    });
    // The stand-in ClickHouse is down, so allowed calls answer 503; the fourth is stopped before reaching it.
    const call = (token: string) =>
      app.inject({ url: '/api/v1/summary', headers: { authorization: `Bearer ${token}` } });
    for (let i = 0; i < 3; i++) expect((await call(READ)).statusCode).toBe(503);
    const limited = await call(READ);
    expect(limited.statusCode).toBe(429);
    expect(limited.json().error.code).toBe('ERR_RATE_LIMITED');
    expect(limited.json().error.message).toMatch(/3 requests per minute/);
    expect((await call(ADMIN)).statusCode).toBe(503); // another token has its own budget
    expect((await app.inject('/healthz')).statusCode).toBe(200); // ops endpoints are not limited
    await app.close();
  });
});

describe('web UI', () => {
  it('serves files, falls back to index.html for client routes, and keeps API 404s as JSON', async () => {
    const app = await buildApp({
      config: testConfig(),
      clickhouse: fakeClickHouse(true),
      logger: false,
      webRoot,
    });
    const root = await app.inject('/');
    expect(root.statusCode).toBe(200);
    expect(root.body).toContain('<div id="app">');
    expect((await app.inject('/assets/app.js')).body).toBe('console.log("ui")');
    const deep = await app.inject('/routes/checkout/split');
    expect(deep.statusCode).toBe(200);
    expect(deep.headers['content-type']).toMatch(/text\/html/);
    const api = await app.inject({ url: '/api/v1/nope', headers: { authorization: `Bearer ${READ}` } });
    expect(api.statusCode).toBe(404);
    expect(api.json().error.code).toBe('ERR_NOT_FOUND');
    await app.close();
  });
  it('shares a metrics registry with other services without registering twice', async () => {
    const registry = new Registry();
    const a = await buildApp({
      config: testConfig(),
      clickhouse: fakeClickHouse(true),
      logger: false,
      registry,
    });
    const b = await buildApp({
      config: testConfig(),
      clickhouse: fakeClickHouse(true),
      logger: false,
      registry,
    });
    await a.inject('/healthz');
    expect(await registry.metrics()).toContain(
      'gatescope_api_http_request_duration_seconds_count{method="GET",route="/healthz",status_code="200"} 1',
    );
    await a.close();
    await b.close();
  });
});
