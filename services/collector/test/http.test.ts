import { Registry } from 'prom-client';
import { expect, it } from 'vitest';
import type { ClickHouse } from '@gatescope/clickhouse';
import { buildCollectorHttp } from '../src/index.js';

it('serves /healthz, /readyz and /metrics alone behind the same boundary as the API', async () => {
  const registry = new Registry();
  const app = await buildCollectorHttp({
    config: {
      auth: {
        tokens: [{ name: 'prom', token: 'metrics-secret-42', scopes: ['metrics'] }],
        allowUnauthenticated: false,
        rateLimitPerMinute: 100,
      },
      host: '127.0.0.1',
      http: { allowedHosts: [], metricsPublic: false },
    },
    clickhouse: { engine: 'server', ping: async () => true } as unknown as ClickHouse,
    registry,
  });
  expect((await app.inject('/healthz')).json()).toEqual({ status: 'ok' });
  expect((await app.inject('/readyz')).json()).toEqual({ status: 'ready', clickhouse: 'server' });
  const anonymous = await app.inject('/metrics');
  expect([anonymous.statusCode, anonymous.json().error.code]).toEqual([401, 'ERR_AUTH_REQUIRED']);
  expect(anonymous.headers['x-content-type-options']).toBe('nosniff');
  const scraped = await app.inject({
    url: '/metrics',
    headers: { authorization: 'Bearer metrics-secret-42' },
  });
  expect(scraped.statusCode).toBe(200);
  expect((await app.inject({ url: '/%6detrics' })).statusCode).toBe(401);
  await app.close();
});
