import type { ClickHouse } from '@gatescope/clickhouse';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

/**
 * The collector's own small HTTP face when it runs alone (scale-out): `/healthz`, `/readyz` (ClickHouse
 * reachable) and `/metrics`. In the all-in-one process the API serves these for every component.
 */
export function buildCollectorHttp(deps: {
  clickhouse: ClickHouse;
  registry: Registry;
  logger?: FastifyBaseLogger;
}): FastifyInstance {
  const app = Fastify(deps.logger ? { loggerInstance: deps.logger } : {});
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const ok = await deps.clickhouse.ping().catch(() => false);
    if (!ok) {
      return reply.code(503).send({
        error: {
          code: 'ERR_CLICKHOUSE_UNAVAILABLE',
          message: 'ClickHouse does not answer; check CLICKHOUSE_URL and the server',
        },
      });
    }
    return { status: 'ready' };
  });
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', deps.registry.contentType);
    return deps.registry.metrics();
  });
  return app;
}
