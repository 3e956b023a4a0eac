import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import fastifyStatic from '@fastify/static';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import { authenticate, bearerToken, type Principal } from '@gatescope/auth';
import type { ClickHouse } from '@gatescope/clickhouse';
import type { Config } from '@gatescope/config';
import { analyticsRoutes } from './analytics.js';
import { ApiError, errorHandler, errorSchema } from './errors.js';
import { DEFAULT_SQL_LIMITS, sqlRoutes, type SqlLimits } from './sql.js';

export interface ApiDeps {
  config: Readonly<Config>;
  clickhouse: ClickHouse;
  /** Shared with the collector in the all-in-one process; a fresh one otherwise. */
  registry?: Registry;
  /** The built web UI; served at `/` with an index.html fallback for client-side routes. */
  webRoot?: string;
  logger?: FastifyServerOptions['logger'] | FastifyServerOptions['loggerInstance'];
  /** Scope needed for POST /api/v1/sql. Default `admin`: it can read every raw column (client IPs, user agents). */
  sqlScope?: 'read' | 'admin';
  sqlLimits?: Partial<SqlLimits>;
  /** Clock for "now" in time ranges (tests). */
  now?: () => number;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook before any handler runs. */
    auth?: Principal;
  }
}

function isLoggerInstance(l: unknown): l is NonNullable<FastifyServerOptions['loggerInstance']> {
  return (
    !!l &&
    typeof l === 'object' &&
    typeof (l as { child?: unknown }).child === 'function' &&
    typeof (l as { info?: unknown }).info === 'function'
  );
}

export async function buildApp(deps: ApiDeps): Promise<FastifyInstance> {
  const { config, clickhouse } = deps;
  const logger = deps.logger ?? { level: config.logLevel, redact: ['req.headers.authorization'] };
  const app = Fastify({
    ...(isLoggerInstance(logger)
      ? { loggerInstance: logger }
      : { logger: logger as FastifyServerOptions['logger'] }),
    requestIdHeader: 'x-request-id',
    bodyLimit: 1024 * 1024,
    ajv: { customOptions: { coerceTypes: 'array', removeAdditional: false } },
  }) as unknown as FastifyInstance;
  const now = deps.now ?? Date.now;
  const sqlScope = deps.sqlScope ?? 'admin';

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
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { url: '/openapi.json' } as never });

  // Per-token (or per-address) rate limiting on the API.
  await app.register(rateLimit, {
    max: config.auth.rateLimitPerMinute,
    timeWindow: 60_000,
    allowList: (req) => !req.url.startsWith('/api/'),
    keyGenerator: (req) => {
      const outcome = authenticate(config.auth, bearerToken(req.headers.authorization), 'read');
      return outcome.ok && outcome.principal !== 'anonymous' ? `token:${outcome.principal}` : `ip:${req.ip}`;
    },
    errorResponseBuilder: (_req, ctx) => ({
      statusCode: 429,
      code: 'ERR_RATE_LIMITED',
      message: `Rate limit of ${ctx.max} requests per minute exceeded: retry in ${Math.ceil(ctx.ttl / 1000)} s`,
    }),
  });

  // Auth: every /api route needs a token with `read`; the SQL endpoint needs `sqlScope`.
  app.addHook('onRequest', async (req) => {
    if (!req.url.startsWith('/api/')) return;
    const needed = req.url.startsWith('/api/v1/sql') ? sqlScope : 'read';
    const outcome = authenticate(config.auth, bearerToken(req.headers.authorization), needed);
    if (!outcome.ok) throw new ApiError(outcome.status, outcome.code, outcome.message);
    req.auth = { principal: outcome.principal, scopes: outcome.scopes, restriction: outcome.restriction };
  });

  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Ready when ClickHouse answers',
        tags: ['ops'],
        security: [],
        response: {
          200: { type: 'object', properties: { status: { type: 'string' }, clickhouse: { type: 'string' } } },
          503: errorSchema,
        },
      },
    },
    async () => {
      let ok = false;
      let reason = 'it did not answer a ping';
      try {
        ok = await clickhouse.ping();
      } catch (err) {
        reason = (err as Error).message;
      }
      if (!ok) {
        throw new ApiError(
          503,
          'ERR_CLICKHOUSE_UNAVAILABLE',
          `Not ready: ClickHouse (${clickhouse.engine}) is not reachable: ${reason}. Check CLICKHOUSE_URL / the data directory`,
        );
      }
      return { status: 'ready', clickhouse: clickhouse.engine };
    },
  );
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    reply.type(registry.contentType);
    return registry.metrics();
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  await app.register(analyticsRoutes, { clickhouse, now });
  await app.register(sqlRoutes, { clickhouse, limits: { ...DEFAULT_SQL_LIMITS, ...deps.sqlLimits } });

  const webRoot = deps.webRoot ? resolve(deps.webRoot) : undefined;
  const hasIndex = !!webRoot && existsSync(join(webRoot, 'index.html'));
  if (webRoot) await app.register(fastifyStatic, { root: webRoot, index: ['index.html'], wildcard: true });
  app.setNotFoundHandler((req, reply) => {
    const apiPath = /^\/(api|metrics|healthz|readyz|openapi\.json|docs)(\/|$|\?)/.test(req.url);
    if (req.method === 'GET' && hasIndex && !apiPath) return reply.type('text/html').sendFile('index.html');
    return reply.status(404).send({
      error: {
        code: 'ERR_NOT_FOUND',
        message: `No route ${req.method} ${req.url.split('?')[0]}: see /docs for the API`,
      },
    });
  });
  return app;
}
