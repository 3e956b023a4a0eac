import { startAlerts, type Evaluator } from '@gatescope/alerts-service';
import { buildApp } from '@gatescope/api';
import type { ClickHouse } from '@gatescope/clickhouse';
import { buildCollector } from '@gatescope/collector';
import type { Config } from '@gatescope/config';
import { attachLive } from '@gatescope/live';
import { openStorage, type Lifecycle } from '@gatescope/runtime';
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

/**
 * The all-in-one process: collector (gRPC ALS) + query API + live server + web UI + alert evaluator over one
 * storage handle.
 * Each piece is the same builder its own service's main.ts uses alone in scale-out.
 */
export async function startGatescope(
  config: Config,
  logger: Logger,
  lifecycle?: Lifecycle,
): Promise<Gatescope> {
  const clickhouse = await openStorage(config, logger);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const collector = await buildCollector({
    config,
    clickhouse,
    registry,
    logger: logger.child({ component: 'collector' }),
  });
  const alsPort = await collector.listen(config.host, config.alsPort);
  const app = await buildApp({
    config,
    clickhouse,
    registry,
    lifecycle,
    webRoot,
    logger: logger.child({ component: 'api' }),
  });
  const live = attachLive({
    httpServer: app.server,
    config,
    clickhouse,
    alsPort,
    registry,
    liveWindow: collector.liveWindow,
    recentRows: collector.recentRows,
    logger: logger.child({ component: 'live' }),
  });
  await app.listen({ host: config.host, port: config.httpPort });
  const address = app.server.address();
  const httpPort = typeof address === 'object' && address ? address.port : config.httpPort;
  const selfUrl = `${config.http.tls ? 'https' : 'http'}://${config.host}:${httpPort}/`;
  let alerts: Evaluator | undefined;
  if (config.alerts.evaluator) {
    alerts = await startAlerts({
      config,
      clickhouse,
      registry,
      selfUrl,
      logger: logger.child({ component: 'alerts' }),
    });
  }
  logger.info(
    {
      http: selfUrl,
      als: `${config.host}:${alsPort}`,
      engine: clickhouse.engine,
    },
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
        await alerts?.close();
        await live.close();
        await app.close();
        await clickhouse.close();
      })();
      return closed;
    },
  };
}
