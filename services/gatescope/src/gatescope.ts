import { buildApp } from '@gatescope/api';
import { createClickHouse, migrate, type ClickHouse } from '@gatescope/clickhouse';
import { buildCollector } from '@gatescope/collector';
import type { Config } from '@gatescope/config';
import { attachLive } from '@gatescope/live';
import { webRoot } from '@gatescope/web';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';

export interface Gatescope {
  httpPort: number;
  alsPort: number;
  clickhouse: ClickHouse;
  /** Commit everything received so far (tests, benchmarks). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** Open ClickHouse and apply migrations, retrying while a server is still starting (scale-out). */
export async function openStorage(config: Config, logger: Logger): Promise<ClickHouse> {
  const { clickhouse } = config;
  const where = clickhouse.url ? `ClickHouse at ${clickhouse.url}` : `the embedded ClickHouse in ${config.dataDir}`;
  const deadline = Date.now() + (clickhouse.url ? 60_000 : 0);
  for (let attempt = 1; ; attempt++) {
    const ch = await createClickHouse({ ...clickhouse, dataDir: config.dataDir });
    try {
      const { applied } = await migrate(ch, {
        retentionDays: config.retentionDays,
        rollupRetentionDays: config.rollupRetentionDays,
        cluster: clickhouse.cluster,
      });
      logger.info({ engine: ch.engine, database: ch.database, applied }, `storage ready: ${where}`);
      return ch;
    } catch (err) {
      await ch.close().catch(() => {});
      if (Date.now() >= deadline) {
        throw new Error(
          `Could not prepare ${where}: ${(err as Error).message}. ` +
            (clickhouse.url
              ? 'Check that the server is up and CLICKHOUSE_URL, CLICKHOUSE_USER and CLICKHOUSE_PASSWORD are right.'
              : 'Check that GATESCOPE_DATA_DIR is writable and not used by another gatescope process.'),
          { cause: err },
        );
      }
      logger.warn({ err, attempt }, `${where} not ready yet; retrying`);
      await new Promise((r) => setTimeout(r, Math.min(5_000, 500 * attempt)));
    }
  }
}

/**
 * The all-in-one process: collector (gRPC ALS) + query API + live server + web UI over one storage handle.
 * Each piece is the same builder its own service's main.ts uses alone in scale-out.
 */
export async function startGatescope(config: Config, logger: Logger): Promise<Gatescope> {
  const clickhouse = await openStorage(config, logger);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const collector = buildCollector({ config, clickhouse, registry, logger: logger.child({ component: 'collector' }) });
  const app = await buildApp({ config, clickhouse, registry, webRoot, logger: logger.child({ component: 'api' }) });
  const live = attachLive({ httpServer: app.server, config, clickhouse, logger: logger.child({ component: 'live' }) });

  const alsPort = await collector.listen(config.host, config.alsPort);
  await app.listen({ host: config.host, port: config.httpPort });
  const address = app.server.address();
  const httpPort = typeof address === 'object' && address ? address.port : config.httpPort;
  logger.info(
    { http: `http://${config.host}:${httpPort}/`, als: `${config.host}:${alsPort}`, engine: clickhouse.engine },
    'gatescope is up',
  );

  let closed: Promise<void> | undefined;
  return {
    httpPort,
    alsPort,
    clickhouse,
    flush: () => collector.flush(),
    close() {
      closed ??= (async () => {
        await collector.close(25_000); // stop ALS, commit everything received
        await live.close();
        await app.close();
        await clickhouse.close();
      })();
      return closed;
    },
  };
}
