import type { FastifyInstance, FastifySchema } from 'fastify';
import type { Registry } from 'prom-client';

export interface OpsOptions {
  /** The storage handle: `/readyz` is ready when it answers a ping. */
  storage: { engine: string; ping(): Promise<boolean> };
  /**
   * A standalone service on a ClickHouse server waits for `gatescope migrate`: not ready while the schema it needs
   * is missing (`problem` says why and what to run). Unset: the process migrated the schema itself.
   */
  schema?: { readonly ready: boolean; readonly problem?: string };
  registry: Registry;
  /** The process's shutdown state (@gatescope/runtime `runService`): not ready once shutdown has begun. */
  lifecycle?: { readonly stopping: boolean };
  /** `/metrics` without a token (`GATESCOPE_METRICS_PUBLIC`); else it needs the `metrics` scope. */
  metricsPublic: boolean;
}

/** Left out of the OpenAPI document (the `hide` keyword of @fastify/swagger). */
const hidden = { hide: true } as FastifySchema;

/** The body of every refusal and error: `{ error: { code, message } }` (the OpenAPI schema). */
export const errorSchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' } },
      required: ['code', 'message'],
    },
  },
  required: ['error'],
} as const;

/**
 * `/healthz` (process alive), `/readyz`, `/metrics` (prom-client): one home for every service. Ready means: not
 * shutting down (a load balancer stops sending before the listener closes), the schema in place, and ClickHouse
 * answering; each refusal is a 503 whose code says which (`ERR_SHUTTING_DOWN`, `ERR_SCHEMA_PENDING`,
 * `ERR_CLICKHOUSE_UNAVAILABLE`).
 */
export async function opsRoutes(app: FastifyInstance, opts: OpsOptions): Promise<void> {
  const { storage, registry } = opts;
  app.get('/healthz', { config: { access: 'public' }, schema: hidden }, async () => ({ status: 'ok' }));
  app.get(
    '/readyz',
    {
      config: { access: 'public' },
      schema: {
        summary: 'Ready when not shutting down, the schema is in place and ClickHouse answers',
        tags: ['ops'],
        security: [],
        response: {
          200: { type: 'object', properties: { status: { type: 'string' }, clickhouse: { type: 'string' } } },
          503: errorSchema,
        },
      },
    },
    async (_req, reply) => {
      if (opts.lifecycle?.stopping) {
        return reply.code(503).send({
          error: {
            code: 'ERR_SHUTTING_DOWN',
            message:
              'Not ready: shutting down (committing what was received); send traffic to another instance',
          },
        });
      }
      if (opts.schema && !opts.schema.ready) {
        return reply
          .code(503)
          .send({ error: { code: 'ERR_SCHEMA_PENDING', message: `Not ready: ${opts.schema.problem}` } });
      }
      let reason = 'it did not answer a ping';
      const ok = await storage.ping().catch((err: Error) => {
        reason = err.message;
        return false;
      });
      if (ok) return { status: 'ready', clickhouse: storage.engine };
      return reply.code(503).send({
        error: {
          code: 'ERR_CLICKHOUSE_UNAVAILABLE',
          message: `Not ready: ClickHouse (${storage.engine}) is not reachable: ${reason}. Check CLICKHOUSE_URL / the data directory`,
        },
      });
    },
  );
  app.get(
    '/metrics',
    { config: { access: opts.metricsPublic ? 'public' : 'metrics' }, schema: hidden },
    async (_req, reply) => {
      reply.type(registry.contentType);
      return registry.metrics();
    },
  );
}
