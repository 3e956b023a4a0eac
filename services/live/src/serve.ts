// The live server alone (scale-out), next to a ClickHouse server: socket.io `/live` plus /healthz, /readyz and
// /metrics on GATESCOPE_HTTP_PORT, behind the same HTTP boundary as the API (tokens, Host/Origin, headers, TLS).
// Several of these behind a load balancer push the same numbers: each reads ClickHouse and keeps nothing of its
// own that matters. Against a server it runs no DDL: /readyz fails until `gatescope migrate` applied the schema.
import { createHttpApp, opsRoutes } from '@gatescope/http';
import { connectStorage, runService } from '@gatescope/runtime';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { attachLive } from './live.js';

await runService('gatescope-live', async (config, logger, lifecycle) => {
  if (!config.clickhouse.url)
    logger.warn({}, 'CLICKHOUSE_URL is not set: reading the embedded engine (single process only)');
  const { clickhouse, schema } = await connectStorage(config, logger);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const app = await createHttpApp({
    config,
    logger,
    notFoundHint: 'this is the gatescope live server: connect socket.io to namespace /live',
  });
  await app.register(opsRoutes, {
    storage: clickhouse,
    schema,
    lifecycle,
    registry,
    metricsPublic: config.http.metricsPublic,
  });
  const live = attachLive({
    httpServer: app.server,
    config,
    clickhouse,
    registry,
    logger: logger.child({ component: 'live' }),
  });
  await app.listen({ host: config.host, port: config.httpPort });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.httpPort;
  logger.info(
    { http: `${config.http.tls ? 'https' : 'http'}://${config.host}:${port}/`, engine: clickhouse.engine },
    'gatescope live server is up: socket.io namespace /live',
  );
  return {
    async close() {
      schema.close();
      await live.close();
      await app.close();
      await clickhouse.close();
    },
  };
});
