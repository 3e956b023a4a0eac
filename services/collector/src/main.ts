#!/usr/bin/env node
// The collector alone (scale-out): gRPC ALS on GATESCOPE_ALS_PORT, /metrics /healthz /readyz on GATESCOPE_HTTP_PORT.
import { openStorage, runService } from '@gatescope/runtime';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { buildCollector } from './collector.js';
import { buildCollectorHttp } from './http.js';

await runService('gatescope-collector', async (config, logger) => {
  const clickhouse = await openStorage(config, logger);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const collector = buildCollector({ config, clickhouse, registry, logger });
  const http = await buildCollectorHttp({ config, clickhouse, registry, logger });
  const alsPort = await collector.listen(config.host, config.alsPort);
  await http.listen({ host: config.host, port: config.httpPort });
  logger.info({ als: `${config.host}:${alsPort}`, engine: clickhouse.engine }, 'gatescope collector is up');
  return {
    async close() {
      await collector.close(25_000);
      await http.close();
      await clickhouse.close();
    },
  };
});
