import type { ClickHouse } from '@gatescope/clickhouse';
import type { Config } from '@gatescope/config';
import { createHttpApp, opsRoutes } from '@gatescope/http';
import type { Lifecycle, SchemaWatch } from '@gatescope/runtime';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

/**
 * The collector's own small HTTP face when it runs alone (scale-out): `/healthz`, `/readyz` (the schema in place
 * and ClickHouse reachable) and `/metrics`, on the same HTTP boundary as every gatescope port (tokens,
 * Host/Origin, security headers, TLS). In the all-in-one process the API serves these for every component.
 */
export async function buildCollectorHttp(deps: {
  config: Pick<Config, 'auth' | 'http' | 'host'>;
  clickhouse: ClickHouse;
  registry: Registry;
  /** Waiting for `gatescope migrate` (scale-out): not ready until the schema is in place. */
  schema?: SchemaWatch;
  /** Not ready once shutdown began (while the collector still commits what it received). */
  lifecycle?: Lifecycle;
  logger?: FastifyBaseLogger;
}): Promise<FastifyInstance> {
  const app = await createHttpApp({
    config: deps.config,
    logger: deps.logger ?? false,
    notFoundHint: 'this is the gatescope collector: Envoy streams access logs to its gRPC port',
  });
  await app.register(opsRoutes, {
    storage: deps.clickhouse,
    schema: deps.schema,
    lifecycle: deps.lifecycle,
    registry: deps.registry,
    metricsPublic: deps.config.http.metricsPublic,
  });
  return app;
}
