import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import type { ClickHouse } from '@gatescope/clickhouse';
import type { Config } from '@gatescope/config';
import { createHttpApp, DOCS_CSP, opsRoutes, withAccess } from '@gatescope/http';
import { createLogger, type Lifecycle, type SchemaWatch } from '@gatescope/runtime';
import { alertRoutes } from './alerts.js';
import { analyticsRoutes } from './analytics.js';
import { errorHandler } from './errors.js';
import { exploreRoutes } from './explore.js';
import { ingestRoutes } from './ingest.js';
import { sqlRoutes } from './sql.js';

export interface ApiDeps {
  config: Readonly<Config>;
  clickhouse: ClickHouse;
  /** Shared with the collector in the all-in-one process; a fresh one otherwise. */
  registry?: Registry;
  /** The built web UI; served at `/` with an index.html fallback for client-side routes. */
  webRoot?: string;
  /** A pino logger (the process's, from @gatescope/runtime); default: a new one from `config`; false: none. */
  logger?: FastifyBaseLogger | false;
  /** Overrides of `config.sql.limits` (tests). */
  sqlLimits?: Partial<Config['sql']['limits']>;
  /** Clock for "now" in time ranges (tests). */
  now?: () => number;
  /** A service waiting for `gatescope migrate` (scale-out): `/readyz` fails until the schema is in place. */
  schema?: SchemaWatch;
  /** The process's shutdown state: `/readyz` fails once shutdown began. */
  lifecycle?: Lifecycle;
}

/**
 * The query API on the shared HTTP boundary (@gatescope/http: route access, Host/Origin, headers, TLS, the UI).
 * Every route says who may call it: `/healthz`, `/readyz`, the UI: public; `/metrics`: the `metrics` scope
 * (or public with GATESCOPE_METRICS_PUBLIC); `/api/v1/*`, `/openapi.json`, `/docs`: `read`; `POST /api/v1/sql`:
 * `admin` (it reads every raw column: client addresses, user agents).
 */
export async function buildApp(deps: ApiDeps): Promise<FastifyInstance> {
  const { config, clickhouse } = deps;
  const app = await createHttpApp({
    config,
    logger: deps.logger ?? createLogger(config, 'gatescope-api'),
    webRoot: deps.webRoot,
    bodyLimit: 1024 * 1024,
    ajv: { customOptions: { coerceTypes: 'array', removeAdditional: false } },
  });
  const now = deps.now ?? Date.now;

  // Metrics
  const registry = deps.registry ?? new Registry();
  if (!registry.getSingleMetric('process_cpu_user_seconds_total'))
    collectDefaultMetrics({ register: registry });
  const histogramName = 'gatescope_api_http_request_duration_seconds';
  const httpDuration =
    (registry.getSingleMetric(histogramName) as Histogram<'method' | 'route' | 'status_code'> | undefined) ??
    new Histogram({
      name: histogramName,
      help: 'Duration of HTTP requests served by the gatescope API, by route template',
      labelNames: ['method', 'route', 'status_code'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? (reply.statusCode === 404 ? 'not_found' : 'unknown');
    httpDuration.observe(
      { method: req.method, route, status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  app.setErrorHandler(errorHandler);

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'gatescope API',
        version: '1',
        description: 'Per-route analytics of Envoy / Istio ingress traffic stored in ClickHouse',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(withAccess('read', swaggerUi), {
    routePrefix: '/docs',
    uiConfig: { url: '/openapi.json' } as never,
    staticCSP: DOCS_CSP,
  });
  await app.register(opsRoutes, {
    storage: clickhouse,
    schema: deps.schema,
    lifecycle: deps.lifecycle,
    registry,
    metricsPublic: config.http.metricsPublic,
  });
  app.get('/openapi.json', { config: { access: 'read' }, schema: { hide: true } }, async () => app.swagger());

  await app.register(analyticsRoutes, { clickhouse, now, limits: config.query.limits, registry });
  await app.register(exploreRoutes, { clickhouse, now, limits: config.query.limits, health: config.health });
  await app.register(alertRoutes, {
    clickhouse,
    now,
    allowPrivateNetwork: config.alerts.allowPrivateNetwork,
  });
  await app.register(ingestRoutes, {
    clickhouse,
    now,
    limits: config.query.limits,
    staleAfterMs: config.ledger.staleAfterMs,
  });
  await app.register(sqlRoutes, {
    clickhouse,
    registry,
    sql: { ...config.sql, limits: { ...config.sql.limits, ...deps.sqlLimits } },
  });

  return app;
}
