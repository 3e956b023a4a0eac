import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ClickHouse, QueryLimits } from '@gatescope/clickhouse';
import { judgeHealth, type HealthThresholds } from '@gatescope/live-stats';
import {
  compareCanary,
  flowsQuery,
  parseEnumParam,
  parseFilters,
  parseIntParam,
  parseTimeRange,
  QueryReader,
  routesQuery,
  schemaQuery,
  singleParam,
  sourceInfo,
  SOURCE_MODES,
  spanLabel,
  splitQuery,
  toStats,
  valuesQuery,
  VALUE_DIMENSIONS,
  type BuiltQuery,
  type Dimension,
  type RawParams,
  type Source,
  type StatsRow,
  type ValueDimension,
} from '@gatescope/query';
import { errorSchema } from './errors.js';
import { querystring, rangeProperties } from './schemas.js';

/**
 * The routes the UI finds its way with (all `read`): values of a dimension (autocomplete, "did you mean"), the
 * routing map's flows, the canary comparison against an explicit baseline with its verdict, health per route over
 * any range (the live socket's definition, packages/live-stats), and the schema the SQL console browses. Planning
 * and SQL live in @gatescope/query; this file routes, authorizes and serialises.
 */
export interface ExploreOptions {
  clickhouse: ClickHouse;
  now: () => number;
  limits: QueryLimits;
  health: HealthThresholds;
}

const iso = (ms: number) => new Date(ms).toISOString();
const errors = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 429: errorSchema, 503: errorSchema };
const nullableNumber = { type: ['number', 'null'] } as const;

const PLAN_DIMENSION: Record<ValueDimension, Dimension> = {
  route: 'route',
  authority: 'authority',
  upstream_cluster: 'upstream_cluster',
  gateway: 'gateway',
  method: 'method',
  response_flag: 'response_flag',
  path_template: 'path_template',
};

const healthItem = {
  type: 'object',
  properties: {
    route: { type: 'string' },
    requests: { type: 'integer' },
    error_rate: { type: 'number' },
    rate_4xx: { type: 'number' },
    health: { type: 'string', enum: ['healthy', 'degraded', 'failing', 'unknown', 'idle'] },
    reason: { type: 'string' },
  },
} as const;

const flowItem = {
  type: 'object',
  properties: {
    gateway: { type: 'string', description: 'Envoy node cluster, else node id' },
    route: { type: 'string' },
    upstream_cluster: {
      type: 'string',
      description: "'' on the gateway -> route rows, or when no upstream answered",
    },
    requests: { type: 'integer' },
    rps: { type: 'number' },
    error_rate: { type: 'number' },
    p50_ms: nullableNumber,
    p99_ms: nullableNumber,
    health: { type: 'string' },
  },
} as const;

export async function exploreRoutes(app: FastifyInstance, opts: ExploreOptions): Promise<void> {
  const { now, health } = opts;
  const reader = new QueryReader({ clickhouse: opts.clickhouse, limits: opts.limits, now });
  const db = reader.database;
  const rows = <T>(q: BuiltQuery) => reader.rows<T>(q);
  const restriction = (req: FastifyRequest) => req.auth?.restriction;
  const plan = async (req: FastifyRequest, params: RawParams, groupBy: Dimension[] = []) => {
    const range = parseTimeRange(params, now());
    const filters = parseFilters(params, restriction(req));
    const mode = parseEnumParam(params, 'source', SOURCE_MODES, 'auto');
    return { range, filters, source: await reader.plan({ range, filters, mode, groupBy }) };
  };
  const seconds = (s: Source) => reader.seconds(s);
  const judged = (st: { requests: number; status_classes: Record<string, number> }) =>
    judgeHealth(
      { requests: st.requests, errors5xx: st.status_classes['5xx'], errors4xx: st.status_classes['4xx'] },
      health,
    );

  app.get(
    '/api/v1/values/:dimension',
    {
      config: { access: 'read' },
      schema: {
        summary: 'Values a dimension takes in the range, busiest first (autocomplete, suggestions)',
        tags: ['explore'],
        params: {
          type: 'object',
          properties: { dimension: { type: 'string', enum: Object.keys(VALUE_DIMENSIONS) } },
          required: ['dimension'],
        },
        querystring: querystring({
          prefix: {
            type: 'string',
            maxLength: 200,
            description: 'Only values containing this text (any case)',
          },
          limit: { type: 'string', description: '1..1000, default 100' },
        }),
        response: {
          200: {
            type: 'object',
            properties: {
              ...rangeProperties,
              dimension: { type: 'string' },
              values: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: { value: { type: 'string' }, requests: { type: 'integer' } },
                },
              },
            },
          },
          ...errors,
        },
      },
    },
    async (req) => {
      const dimension = (req.params as { dimension: ValueDimension }).dimension;
      const params = req.query as RawParams;
      const { source, filters } = await plan(req, params, [PLAN_DIMENSION[dimension]]);
      const limit = parseIntParam(params, 'limit', 100, 1, 1000);
      const list = await rows<{ value: string; requests: number | string }>(
        valuesQuery(db, source, filters, { dimension, prefix: singleParam(params, 'prefix'), limit }),
      );
      return {
        from: iso(source.from),
        to: iso(source.to),
        source: sourceInfo(source),
        dimension,
        values: list.map((v) => ({ value: v.value, requests: Number(v.requests) })),
      };
    },
  );

  app.get(
    '/api/v1/flows',
    {
      config: { access: 'read' },
      schema: {
        summary:
          'Where requests go: gateway -> route -> upstream cluster, with rate, 5xx, p99 and health (the routing map)',
        tags: ['explore'],
        querystring: querystring(),
        response: {
          200: {
            type: 'object',
            properties: {
              ...rangeProperties,
              routes: { type: 'array', items: flowItem, description: 'gateway -> route totals' },
              clusters: {
                type: 'array',
                items: flowItem,
                description: 'gateway -> route -> upstream cluster',
              },
            },
          },
          ...errors,
        },
      },
    },
    async (req) => {
      const { source, filters } = await plan(req, req.query as RawParams, [
        'gateway',
        'route',
        'upstream_cluster',
      ]);
      const list = await rows<
        StatsRow & { gateway: string; route: string; upstream_cluster: string; is_route_total: number }
      >(flowsQuery(db, source, filters));
      const secs = seconds(source);
      const shaped = list.map((r) => {
        const st = toStats(r, secs);
        const j = judged(st);
        return {
          total: Number(r.is_route_total) === 1,
          row: {
            gateway: r.gateway,
            route: r.route,
            upstream_cluster: Number(r.is_route_total) === 1 ? '' : r.upstream_cluster,
            requests: st.requests,
            rps: st.rps,
            error_rate: st.error_rate,
            p50_ms: st.p50_ms,
            p99_ms: st.p99_ms,
            health: j.health,
          },
        };
      });
      return {
        from: iso(source.from),
        to: iso(source.to),
        source: sourceInfo(source),
        routes: shaped.filter((s) => s.total).map((s) => s.row),
        clusters: shaped.filter((s) => !s.total).map((s) => s.row),
      };
    },
  );

  app.get(
    '/api/v1/routes/:route/canary',
    {
      config: { access: 'read' },
      schema: {
        summary: 'Canary view: each upstream cluster of a route against a baseline cluster, with a verdict',
        description:
          'baseline: the stable cluster (full name, short name or service name); default: by name (the cluster others ' +
          'extend with a version, e.g. frontend for frontendv2), else the busiest. The no-upstream row is never compared.',
        tags: ['explore'],
        params: { type: 'object', properties: { route: { type: 'string' } }, required: ['route'] },
        querystring: querystring({ baseline: { type: 'string', maxLength: 2048 } }),
        response: {
          200: {
            type: 'object',
            properties: {
              ...rangeProperties,
              route: { type: 'string' },
              requests: { type: 'integer' },
              baseline: { type: ['string', 'null'] },
              baseline_chosen_by: { type: 'string', enum: ['user', 'name', 'largest', 'none'] },
              verdict: { type: 'string' },
              slower: { type: ['string', 'null'] },
              clusters: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    upstream_cluster: { type: 'string' },
                    baseline: { type: 'boolean' },
                    requests: { type: 'integer' },
                    share: { type: 'number' },
                    error_rate: { type: 'number' },
                    p50_ms: nullableNumber,
                    p90_ms: nullableNumber,
                    p99_ms: nullableNumber,
                    vs_baseline: {
                      type: ['object', 'null'],
                      properties: Object.fromEntries(
                        [
                          'share_diff',
                          'share_ratio',
                          'error_rate_diff',
                          'error_rate_ratio',
                          'p50_ms_diff',
                          'p50_ratio',
                          'p90_ms_diff',
                          'p90_ratio',
                          'p99_ms_diff',
                          'p99_ratio',
                        ].map((k) => [k, nullableNumber]),
                      ),
                    },
                  },
                },
              },
            },
          },
          ...errors,
        },
      },
    },
    async (req) => {
      const route = (req.params as { route: string }).route;
      const query = req.query as RawParams;
      const params = { ...query, route, baseline: undefined };
      const { source, filters } = await plan(req, params, ['route', 'upstream_cluster']);
      const list = await rows<StatsRow & { upstream_cluster: string }>(splitQuery(db, source, filters));
      const secs = seconds(source);
      const stats = list.map((r) => ({ upstream_cluster: r.upstream_cluster, ...toStats(r, secs) }));
      const span = spanLabel(source.from, source.to, singleParam(query, 'range'));
      const result = compareCanary(stats, span, singleParam(query, 'baseline'));
      return {
        from: iso(source.from),
        to: iso(source.to),
        source: sourceInfo(source),
        route,
        requests: stats.reduce((s, c) => s + c.requests, 0),
        ...result,
        clusters: result.clusters.map((c) => ({
          upstream_cluster: c.upstream_cluster,
          baseline: c.baseline,
          requests: c.requests,
          share: c.share,
          error_rate: c.error_rate,
          p50_ms: c.p50_ms,
          p90_ms: c.p90_ms,
          p99_ms: c.p99_ms,
          vs_baseline: c.vs_baseline,
        })),
      };
    },
  );

  app.get(
    '/api/v1/health',
    {
      config: { access: 'read' },
      schema: {
        summary:
          "Health per route over the range, judged as the live socket judges it (Kiali's 5xx and 4xx thresholds, a minimum request count)",
        tags: ['explore'],
        querystring: querystring(),
        response: {
          200: {
            type: 'object',
            properties: {
              ...rangeProperties,
              thresholds: {
                type: 'object',
                properties: Object.fromEntries(
                  [
                    'degradedErrorRate',
                    'failingErrorRate',
                    'degraded4xxRate',
                    'failing4xxRate',
                    'minRequests',
                    'hysteresis',
                  ].map((k) => [k, { type: 'number' }]),
                ),
              },
              routes: { type: 'array', items: healthItem },
            },
          },
          ...errors,
        },
      },
    },
    async (req) => {
      const { source, filters } = await plan(req, req.query as RawParams, ['route']);
      const list = await rows<StatsRow & { route: string }>(
        routesQuery(db, source, filters, { sort: 'requests', order: 'desc', limit: 1000 }),
      );
      const secs = seconds(source);
      return {
        from: iso(source.from),
        to: iso(source.to),
        source: sourceInfo(source),
        thresholds: health,
        routes: list.map((r) => {
          const st = toStats(r, secs);
          const j = judged(st);
          return {
            route: r.route,
            requests: st.requests,
            error_rate: st.error_rate,
            rate_4xx: st.requests ? st.status_classes['4xx'] / st.requests : 0,
            health: j.health,
            reason: j.reason,
          };
        }),
      };
    },
  );

  app.get(
    '/api/v1/schema',
    {
      config: { access: 'read' },
      schema: {
        summary:
          'Tables and columns of the gatescope database with types and comments (the SQL console’s schema browser)',
        tags: ['explore'],
        response: {
          200: {
            type: 'object',
            properties: {
              database: { type: 'string' },
              tables: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    name: { type: 'string' },
                    engine: { type: 'string' },
                    comment: { type: 'string' },
                    rows: { type: ['integer', 'null'] },
                    columns: {
                      type: 'array',
                      items: {
                        type: 'object',
                        properties: {
                          name: { type: 'string' },
                          type: { type: 'string' },
                          comment: { type: 'string' },
                        },
                      },
                    },
                  },
                },
              },
            },
          },
          ...errors,
        },
      },
    },
    async () => {
      const q = schemaQuery();
      const list = await rows<{
        table: string;
        engine: string;
        table_comment: string;
        total_rows: number | string | null;
        columns: [string, string, string][];
      }>({ query: q.query, params: { database: db } });
      return {
        database: db,
        tables: list.map((t) => ({
          name: t.table,
          engine: t.engine,
          comment: t.table_comment ?? '',
          rows: t.total_rows === null || t.total_rows === undefined ? null : Number(t.total_rows),
          columns: t.columns.map(([name, type, comment]) => ({ name, type, comment: comment ?? '' })),
        })),
      };
    },
  );
}
