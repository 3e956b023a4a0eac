// The query API (and the web UI) alone, against a ClickHouse server (scale-out) or the embedded engine.
// Against a server it runs no DDL: /readyz fails until `gatescope migrate` has applied the schema it needs.
import { connectStorage, runService } from '@gatescope/runtime';
import { webRoot } from '@gatescope/web';
import { buildApp } from './app.js';

await runService('gatescope-api', async (config, logger, lifecycle) => {
  const { clickhouse, schema } = await connectStorage(config, logger);
  const app = await buildApp({ config, clickhouse, webRoot, logger, schema, lifecycle });
  await app.listen({ host: config.host, port: config.httpPort });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.httpPort;
  logger.info(
    { http: `${config.http.tls ? 'https' : 'http'}://${config.host}:${port}/`, engine: clickhouse.engine },
    'gatescope api is up',
  );
  return {
    async close() {
      schema.close();
      await app.close();
      await clickhouse.close();
    },
  };
});
