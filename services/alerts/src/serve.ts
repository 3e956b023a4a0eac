// The alert evaluator alone (scale-out), next to a ClickHouse server: evaluates the rules every
// GATESCOPE_ALERTS_INTERVAL and delivers webhooks; /healthz, /readyz and /metrics on GATESCOPE_HTTP_PORT. Run
// several for availability: one holds the evaluator lease in ClickHouse and evaluates, the others stand by
// (gatescope_alerts_leader says which). The API (services/api) serves /api/v1/alerts*; set GATESCOPE_EXTERNAL_URL
// to the UI's address so webhook links point there.
import { createHttpApp, opsRoutes } from '@gatescope/http';
import { connectStorage, runService } from '@gatescope/runtime';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { startAlerts } from './index.js';

await runService('gatescope-alerts', async (config, logger) => {
  if (!config.clickhouse.url)
    logger.warn({}, 'CLICKHOUSE_URL is not set: using the embedded engine (single process only)');
  const { clickhouse, schema } = await connectStorage(config, logger);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const app = await createHttpApp({
    config,
    logger,
    notFoundHint:
      'this is the gatescope alert evaluator: the alerts API is served by the API (/api/v1/alerts)',
  });
  await app.register(opsRoutes, {
    storage: clickhouse,
    schema,
    registry,
    metricsPublic: config.http.metricsPublic,
  });
  await app.listen({ host: config.host, port: config.httpPort });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.httpPort;
  // The schema may still be on its way (`gatescope migrate`): evaluation cycles fail (and are counted) until it is.
  const evaluator = await startAlerts({
    config,
    clickhouse,
    registry,
    logger: logger.child({ component: 'alerts' }),
  });
  logger.info(
    { http: `${config.http.tls ? 'https' : 'http'}://${config.host}:${port}/`, engine: clickhouse.engine },
    'gatescope alerts is up',
  );
  return {
    async close() {
      await evaluator.close();
      schema.close();
      await app.close();
      await clickhouse.close();
    },
  };
});
