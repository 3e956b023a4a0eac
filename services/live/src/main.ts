#!/usr/bin/env node
// The live server alone (scale-out), next to a ClickHouse server: socket.io `/live` plus /healthz, /readyz and
// /metrics on GATESCOPE_HTTP_PORT. Several of these behind a load balancer push the same numbers: each reads
// ClickHouse and keeps nothing of its own that matters.
import { createServer } from 'node:http';
import { openStorage, runService } from '@gatescope/runtime';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { attachLive } from './live.js';

await runService('gatescope-live', async (config, logger) => {
  if (!config.clickhouse.url)
    logger.warn({}, 'CLICKHOUSE_URL is not set: reading the embedded engine (single process only)');
  const clickhouse = await openStorage(config, logger);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const json = (res: import('node:http').ServerResponse, status: number, body: unknown) =>
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  const server = createServer((req, res) => {
    if (req.url === '/healthz') return json(res, 200, { status: 'ok' });
    if (req.url === '/readyz') {
      return void clickhouse.ping().then(
        (up) =>
          up
            ? json(res, 200, { status: 'ready' })
            : json(res, 503, {
                error: {
                  code: 'ERR_CLICKHOUSE_UNAVAILABLE',
                  message: 'ClickHouse does not answer; check CLICKHOUSE_URL and the server',
                },
              }),
        () =>
          json(res, 503, {
            error: {
              code: 'ERR_CLICKHOUSE_UNAVAILABLE',
              message: 'ClickHouse does not answer; check CLICKHOUSE_URL and the server',
            },
          }),
      );
    }
    if (req.url === '/metrics') {
      return void registry
        .metrics()
        .then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text));
    }
    json(res, 404, {
      error: {
        code: 'ERR_NOT_FOUND',
        message: 'This is the gatescope live server: connect socket.io to namespace /live',
      },
    });
  });
  const live = attachLive({
    httpServer: server,
    config,
    clickhouse,
    logger: logger.child({ component: 'live' }),
  });
  for (const [name, help, key] of [
    [
      'gatescope_live_stats_computations',
      'Live stats computations (one per tick per distinct filter set)',
      'statsComputations',
    ],
    ['gatescope_live_tail_polls', 'Live tail polls (one per tick per distinct filter set)', 'tailPolls'],
    ['gatescope_live_query_errors', 'Live queries that failed', 'queryErrors'],
  ] as const) {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(live.counters[key]);
      },
    });
  }
  new Gauge({
    name: 'gatescope_live_sockets',
    help: 'Open /live sockets',
    registers: [registry],
    collect() {
      this.set(live.namespace.sockets.size);
    },
  });
  await new Promise<void>((resolve) => server.listen(config.httpPort, config.host, resolve));
  logger.info(
    { url: `http://${config.host}:${config.httpPort}/live`, engine: clickhouse.engine },
    'gatescope live server is up',
  );
  return {
    async close() {
      await live.close();
      await new Promise<void>((r) => server.close(() => r()));
      await clickhouse.close();
    },
  };
});
