// The collector alone (scale-out): gRPC ALS on GATESCOPE_ALS_PORT, /metrics /healthz /readyz on GATESCOPE_HTTP_PORT.
// Against a server it runs no DDL: the health endpoints come up at once, and the ALS port opens once
// `gatescope migrate` has applied the schema this build needs (until then /readyz says so).
import { connectStorage, runService } from '@gatescope/runtime';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { buildCollector } from './collector.js';
import { buildCollectorHttp } from './http.js';

await runService('gatescope-collector', async (config, logger, lifecycle) => {
  const { clickhouse, schema } = await connectStorage(config, logger);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const collector = await buildCollector({ config, clickhouse, registry, logger });
  const http = await buildCollectorHttp({ config, clickhouse, schema, lifecycle, registry, logger });
  await http.listen({ host: config.host, port: config.httpPort });
  const address = http.server.address();
  const httpPort = typeof address === 'object' && address ? address.port : config.httpPort;
  const httpUrl = `${config.http.tls ? 'https' : 'http'}://${config.host}:${httpPort}/`;
  logger.info({ http: httpUrl }, 'gatescope collector health endpoints are up');
  const als = schema.untilReady().then(async () => {
    const alsPort = await collector.listen(config.host, config.alsPort);
    logger.info(
      { als: `${config.host}:${alsPort}`, http: httpUrl, engine: clickhouse.engine },
      'gatescope collector is up',
    );
  });
  als.catch((err: Error) => logger.info({ err }, 'ALS not started'));
  return {
    async close() {
      schema.close();
      await als.catch(() => {});
      await collector.close(25_000);
      await http.close();
      await clickhouse.close();
    },
  };
});
