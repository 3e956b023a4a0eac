import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ClickHouse, QueryLimits } from '@gatescope/clickhouse';
import {
  clusterStats,
  decodeCursor,
  encodeCursor,
  parseEnumParam,
  parseFilters,
  parseIntParam,
  parseMetrics,
  parseNumberParam,
  parseStep,
  parseTimeRange,
  planSource,
  QueryParamError,
  QueryReader,
  requestsQuery,
  ROUTE_SORTS,
  routeStats,
  SOURCE_MODES,
  singleParam,
  sourceInfo,
  splitDeltas,
  statusQuery,
  deadLettersQuery,
  TIMESERIES_GROUPS,
  TIMESERIES_METRICS,
  DEFAULT_TIMESERIES_METRICS,
  timeseries,
  TOP_DIMENSIONS,
  TOP_SORTS,
  topQuery,
  windowStats,
  type RawParams,
} from '@gatescope/query';
import { errorSchema } from './errors.js';
import { querystring, rangeProperties, statsProperties } from './schemas.js';

export interface AnalyticsOptions {
  clickhouse: ClickHouse;
  now: () => number;
  /** Time, memory and threads of every query, in its own SETTINGS clause (GATESCOPE_QUERY_MAX_*). */
  limits: QueryLimits;
  registry: Registry;
}

/** The window cache's metrics (`QueryReader.windowSeries`), read from the reader at scrape time. */
function windowCacheMetrics(registry: Registry, reader: QueryReader): void {
  if (registry.getSingleMetric('gatescope_api_window_cache_answers_total')) return;
  new Counter({
    name: 'gatescope_api_window_cache_answers_total',
    help: 'Windows the window cache could answer, by how they were answered: cache, or statement (not yet filled, over its bound)',
    labelNames: ['source'] as const,
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ source: 'cache' }, reader.windowCounts.cache);
      this.inc({ source: 'statement' }, reader.windowCounts.statement);
    },
  });
  new Counter({
    name: 'gatescope_api_window_cache_fills_total',
    help: 'Windows filled into the window cache in the background (on their second ask)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(reader.windowCounts.fills);
    },
  });
  new Gauge({
    name: 'gatescope_api_window_cache_windows',
    help: 'Windows the window cache holds',
    registers: [registry],
    collect() {
      this.set(reader.windowCacheSize().groups);
    },
  });
  new Gauge({
    name: 'gatescope_api_window_cache_partials',
    help: 'Partials (bucket x series, with a decoded latency state) the window cache holds: its memory, about 3.4 KB each',
    registers: [registry],
    collect() {
      this.set(reader.windowCacheSize().partials);
    },
  });
}

/** The caller's token restriction: part of the filters of every question it asks. */
const restrictionOf = (req: FastifyRequest) => req.auth?.restriction;

const iso = (ms: number) => new Date(ms).toISOString();
const errors = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 429: errorSchema, 503: errorSchema };

export async function analyticsRoutes(app: FastifyInstance, opts: AnalyticsOptions): Promise<void> {
  const { now } = opts;
  const reader = new QueryReader({ clickhouse: opts.clickhouse, limits: opts.limits, now });
  windowCacheMetrics(opts.registry, reader);
  const db = reader.database;
  /** The window and filters every analytics question starts from. */
  const question = (req: FastifyRequest, params: RawParams) => ({
    range: parseTimeRange(params, now()),
    filters: parseFilters(params, restrictionOf(req)),
    mode: parseEnumParam(params, 'source', SOURCE_MODES, 'auto'),
  });
  const window = (s: { from: number; to: number }) => ({ from: iso(s.from), to: iso(s.to) });

  app.get(
    '/api/v1/summary',
    {
      config: { access: 'read' },
      schema: {
        summary: 'Totals for the range',
        tags: ['analytics'],
        querystring: querystring(),
        response: {
          200: { type: 'object', properties: { ...rangeProperties, ...statsProperties } },
          ...errors,
        },
      },
    },
    async (req) => {
      const { source, stats } = await windowStats(reader, question(req, req.query as RawParams));
      return { ...window(source), source: sourceInfo(source), ...stats };
    },
  );

  app.get(
    '/api/v1/routes',
    {
      config: { access: 'read' },
      schema: {
        summary: 'Per-route statistics (one item per route_name)',
        tags: ['analytics'],
        querystring: querystring({
          sort: { type: 'string', enum: [...ROUTE_SORTS], description: 'Default requests' },
          order: { type: 'string', enum: ['asc', 'desc'] },
          limit: { type: 'string', description: '1..1000, default 100' },
        }),
        response: {
          200: {
            type: 'object',
            properties: {
              ...rangeProperties,
              routes: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: { route: { type: 'string' }, share: { type: 'number' }, ...statsProperties },
                },
              },
            },
          },
          ...errors,
        },
      },
    },
    async (req) => {
      const params = req.query as RawParams;
      const sort = parseEnumParam(params, 'sort', ROUTE_SORTS, 'requests');
      const order = parseEnumParam(
        params,
        'order',
        ['asc', 'desc'] as const,
        sort === 'route' ? 'asc' : 'desc',
      );
      const limit = parseIntParam(params, 'limit', 100, 1, 1000);
      const { source, routes } = await routeStats(reader, { ...question(req, params), sort, order, limit });
      return { ...window(source), source: sourceInfo(source), routes };
    },
  );

  app.get(
    '/api/v1/timeseries',
    {
      config: { access: 'read' },
      schema: {
        summary: 'Metrics per time bucket, optionally one series per group',
        tags: ['analytics'],
        querystring: querystring({
          metrics: {
            type: 'string',
            description: `Comma-separated: ${TIMESERIES_METRICS.join(', ')}. Default ${DEFAULT_TIMESERIES_METRICS}`,
          },
          step: {
            type: 'string',
            description: 'Bucket width (10s, 1m, 1h …); default chosen for the range (≤ 100 points)',
          },
          group_by: { type: 'string', enum: [...TIMESERIES_GROUPS] },
          limit: {
            type: 'string',
            description: 'With group_by: the N biggest groups (by requests), default 20',
          },
        }),
        response: {
          200: {
            type: 'object',
            properties: {
              ...rangeProperties,
              step_s: { type: 'integer' },
              series: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    labels: { type: 'object', additionalProperties: { type: 'string' } },
                    points: { type: 'array', items: { type: 'array', items: { type: ['number', 'null'] } } },
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
      const params = req.query as RawParams;
      const metrics = parseMetrics(singleParam(params, 'metrics'));
      const groupBy =
        parseEnumParam(params, 'group_by', [...TIMESERIES_GROUPS, ''] as const, '') || undefined;
      const limit = parseIntParam(params, 'limit', 20, 1, 500);
      const q = question(req, params);
      const step_s = parseStep(params, q.range, q.mode);
      const { source, series } = await timeseries(reader, { ...q, step_s, metrics, groupBy, limit });
      return { ...window(source), source: sourceInfo(source), step_s, series };
    },
  );

  app.get(
    '/api/v1/routes/:route/split',
    {
      config: { access: 'read' },
      schema: {
        summary:
          'Canary view: one route per upstream cluster, compared to the largest cluster (the baseline)',
        tags: ['analytics'],
        params: { type: 'object', properties: { route: { type: 'string' } }, required: ['route'] },
        querystring: querystring(),
        response: {
          200: {
            type: 'object',
            properties: {
              ...rangeProperties,
              route: { type: 'string' },
              requests: { type: 'integer' },
              baseline: { type: ['string', 'null'] },
              clusters: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    upstream_cluster: { type: 'string' },
                    baseline: { type: 'boolean' },
                    share: { type: 'number' },
                    ...statsProperties,
                    share_diff: { type: 'number' },
                    error_rate_diff: { type: 'number' },
                    p50_ms_diff: { type: ['number', 'null'] },
                    p99_ms_diff: { type: ['number', 'null'] },
                    p50_ratio: { type: ['number', 'null'] },
                    p99_ratio: { type: ['number', 'null'] },
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
      const { source, clusters } = await clusterStats(
        reader,
        question(req, { ...(req.query as RawParams), route }),
      );
      return { ...window(source), source: sourceInfo(source), route, ...splitDeltas(clusters) };
    },
  );

  app.get(
    '/api/v1/status',
    {
      config: { access: 'read' },
      schema: {
        summary:
          'Counts by response code, response flags and route, non-2xx first; and the dead letters waiting for replay',
        tags: ['analytics'],
        querystring: querystring({ limit: { type: 'string', description: '1..5000, default 500' } }),
        response: {
          200: {
            type: 'object',
            properties: {
              ...rangeProperties,
              rows: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    response_code: { type: 'integer' },
                    status_class: { type: 'string' },
                    response_flags: { type: 'array', items: { type: 'string' } },
                    route: { type: 'string' },
                    requests: { type: 'integer' },
                    share: { type: 'number' },
                  },
                },
              },
              ingest: {
                type: 'object',
                nullable: true,
                description:
                  'Ingest health, whatever the range and filters (null for a token restricted to some hosts). ' +
                  'dead_letters: entries ClickHouse refused or outside the start_time window, kept on the collectors ' +
                  'until `gatescope dead-letters replay`.',
                properties: {
                  dead_letters: {
                    type: 'object',
                    properties: {
                      files: { type: 'integer' },
                      entries: { type: 'integer' },
                      by: {
                        type: 'array',
                        items: {
                          type: 'object',
                          properties: {
                            table: { type: 'string' },
                            reason: { type: 'string' },
                            error_name: { type: 'string' },
                            files: { type: 'integer' },
                            entries: { type: 'integer' },
                            oldest: { type: 'string' },
                            newest: { type: 'string' },
                          },
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
    async (req) => {
      const params = req.query as RawParams;
      const { range, filters, mode } = question(req, params);
      const source = await reader.plan({ range, filters, mode, groupBy: ['response_code', 'response_flag'] });
      const limit = parseIntParam(params, 'limit', 500, 1, 5000);
      const list = await reader.rows<{
        response_code: number;
        status_class: string;
        response_flags: string[];
        route: string;
        requests: number;
        share: number;
      }>(statusQuery(db, source, filters, limit));
      const restricted = req.auth?.restriction !== undefined;
      const letters = restricted
        ? []
        : await reader.rows<{
            table: string;
            reason: string;
            error_name: string;
            files: number;
            entries: number;
          }>(deadLettersQuery(db));
      return {
        ...window(source),
        source: sourceInfo(source),
        rows: list.map((r) => ({ ...r, requests: Number(r.requests), share: Number(r.share) })),
        ingest: restricted
          ? null
          : {
              dead_letters: {
                files: letters.reduce((n, l) => n + Number(l.files), 0),
                entries: letters.reduce((n, l) => n + Number(l.entries), 0),
                by: letters.map((l) => ({ ...l, files: Number(l.files), entries: Number(l.entries) })),
              },
            },
      };
    },
  );

  app.get(
    '/api/v1/top/:dimension',
    {
      config: { access: 'read' },
      schema: {
        summary: 'Top values of a high-cardinality dimension (from raw rows)',
        tags: ['analytics'],
        params: {
          type: 'object',
          properties: { dimension: { type: 'string', enum: [...TOP_DIMENSIONS] } },
          required: ['dimension'],
        },
        querystring: querystring({
          by: { type: 'string', enum: [...TOP_SORTS], description: 'Default requests' },
          limit: { type: 'string', description: '1..1000, default 20' },
        }),
        response: {
          200: {
            type: 'object',
            properties: {
              ...rangeProperties,
              dimension: { type: 'string' },
              by: { type: 'string' },
              items: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    value: { type: 'string' },
                    requests: { type: 'integer' },
                    errors: { type: 'integer' },
                    error_rate: { type: 'number' },
                    share: { type: 'number' },
                    p50_ms: { type: ['number', 'null'] },
                    p99_ms: { type: ['number', 'null'] },
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
      const dimension = (req.params as { dimension: (typeof TOP_DIMENSIONS)[number] }).dimension;
      const params = req.query as RawParams;
      const range = parseTimeRange(params, now());
      const filters = parseFilters(params, restrictionOf(req));
      const by = parseEnumParam(params, 'by', TOP_SORTS, 'requests');
      const limit = parseIntParam(params, 'limit', 20, 1, 1000);
      const source = planSource({ range, filters, mode: 'raw' });
      const list = await reader.rows<Record<string, unknown>>(
        topQuery(db, source, filters, { dimension, by, limit }),
      );
      return {
        ...window(source),
        source: sourceInfo(source),
        dimension,
        by,
        items: list,
      };
    },
  );

  app.get(
    '/api/v1/requests',
    {
      config: { access: 'read' },
      schema: {
        summary: 'Raw request explorer, newest first, cursor-paginated; every stored column',
        tags: ['analytics'],
        querystring: querystring({
          request_id: { type: 'string' },
          min_duration_ms: { type: 'string' },
          response_code: { type: 'string' },
          limit: { type: 'string', description: '1..1000, default 100' },
          cursor: { type: 'string', description: 'next_cursor of the previous page' },
        }),
        response: {
          200: {
            type: 'object',
            properties: {
              ...rangeProperties,
              rows: { type: 'array', items: { type: 'object', additionalProperties: true } },
              next_cursor: { type: ['string', 'null'] },
            },
          },
          ...errors,
        },
      },
    },
    async (req) => {
      const params = req.query as RawParams;
      const range = parseTimeRange(params, now());
      const filters = parseFilters(params, restrictionOf(req));
      const limit = parseIntParam(params, 'limit', 100, 1, 1000);
      const cursorText = singleParam(params, 'cursor');
      const cursor = cursorText !== undefined ? decodeCursor(cursorText) : undefined;
      if (cursorText !== undefined && !cursor) {
        throw new QueryParamError(
          'ERR_QUERY_BAD_CURSOR',
          'cursor',
          'cursor is not one this API returned: pass next_cursor from the previous page unchanged',
        );
      }
      const code =
        singleParam(params, 'response_code') !== undefined
          ? parseIntParam(params, 'response_code', 0, 0, 999)
          : undefined;
      const source = planSource({ range, filters, mode: 'raw' });
      const list = await reader.rows<Record<string, unknown> & { cursor_time: string; request_id: string }>(
        requestsQuery(db, source, filters, {
          limit,
          cursor,
          request_id: singleParam(params, 'request_id'),
          min_duration_ms: parseNumberParam(params, 'min_duration_ms'),
          response_code: code,
        }),
      );
      const more = list.length > limit;
      const page = more ? list.slice(0, limit) : list;
      const last = page[page.length - 1];
      return {
        ...window(source),
        source: sourceInfo(source),
        rows: page.map(({ cursor_time: _c, ...r }) => r),
        next_cursor: more && last ? encodeCursor({ t: last.cursor_time, id: last.request_id }) : null,
      };
    },
  );
}
