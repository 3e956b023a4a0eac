import type { FastifyInstance, FastifyRequest } from 'fastify';
import { readJson, type ClickHouse, type QueryLimits } from '@gatescope/clickhouse';
import {
  autoStep,
  decodeCursor,
  encodeCursor,
  MAX_POINTS_HARD,
  parseDuration,
  parseEnumParam,
  parseFilters,
  parseIntParam,
  parseNumberParam,
  parseTimeRange,
  planSource,
  estimateQuery,
  rawIsCheaper,
  rawSource,
  QueryParamError,
  requestsQuery,
  ROUTE_SORTS,
  routesQuery,
  SOURCE_MODES,
  singleParam,
  splitQuery,
  statusQuery,
  deadLettersQuery,
  summaryQuery,
  timeseriesQuery,
  toStats,
  TOP_DIMENSIONS,
  TOP_SORTS,
  topQuery,
  withLimits,
  type BuiltQuery,
  type Dimension,
  type RawParams,
  type Source,
  type SourceMode,
  type TimeRange,
  type Stats,
  type StatsRow,
} from '@gatescope/query';
import { ApiError, errorSchema } from './errors.js';
import { querystring, rangeProperties, statsProperties } from './schemas.js';

export interface AnalyticsOptions {
  clickhouse: ClickHouse;
  now: () => number;
  /** Time, memory and threads of every query, in its own SETTINGS clause (GATESCOPE_QUERY_MAX_*). */
  limits: QueryLimits;
}

/** The caller's token restriction: part of the filters of every question it asks. */
const restrictionOf = (req: FastifyRequest) => req.auth?.restriction;

/** A query stopped by its limits: say which and what to change. */
function limitError(err: unknown, limits: QueryLimits): ApiError | undefined {
  const e = err as { type?: string; message?: string };
  if (e?.type === 'TIMEOUT_EXCEEDED') {
    return new ApiError(
      400,
      'ERR_QUERY_TIMEOUT',
      `The query ran longer than allowed (${limits.maxExecutionTimeS} s, GATESCOPE_QUERY_MAX_EXECUTION_TIME_S) and was stopped: narrow the time range or add filters`,
    );
  }
  if (e?.type === 'MEMORY_LIMIT_EXCEEDED') {
    return /\(total\)/.test(String(e.message))
      ? new ApiError(503, 'ERR_ENGINE_BUSY', 'The engine is short of memory right now; retry shortly')
      : new ApiError(
          400,
          'ERR_QUERY_MEMORY',
          `The query needs more memory than allowed (${limits.maxMemoryBytes} bytes, GATESCOPE_QUERY_MAX_MEMORY_BYTES): narrow the time range or add filters`,
        );
  }
  if ((err as { code?: string })?.code === 'ERR_ENGINE_FOREIGN_RESULT') {
    return new ApiError(503, 'ERR_ENGINE_FOREIGN_RESULT', (err as Error).message + ': retry');
  }
  return undefined;
}

const iso = (ms: number) => new Date(ms).toISOString();
const errors = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 429: errorSchema, 503: errorSchema };

export async function analyticsRoutes(app: FastifyInstance, opts: AnalyticsOptions): Promise<void> {
  const { clickhouse: ch, now, limits } = opts;
  const db = ch.database;

  /** Every read: the reader role, the configured limits, a framed (whole-document JSON) answer. */
  async function rows<T>(q: BuiltQuery): Promise<T[]> {
    const limited = withLimits(q, limits);
    try {
      return (await readJson<T>(ch.reader, { query: limited.query, params: limited.params })).data;
    } catch (err) {
      throw limitError(err, limits) ?? err;
    }
  }

  /**
   * Auto mode keeps a per-minute rollup only where it is cheaper than the raw rows it stands for. The answer
   * depends on the traffic's density (raw rows per rollup state), not on the range's length, so one small
   * query on the rollup measures it and the result serves every request for a minute.
   */
  const densityChecked = new Map<string, { rawIsCheaper: boolean; at: number }>();
  async function costChecked(source: Source, range: TimeRange, mode: SourceMode): Promise<Source> {
    if (mode !== 'auto' || source.granularity_s !== 60) return source;
    let known = densityChecked.get(source.table);
    if (!known || now() - known.at > 60_000) {
      const [estimate] = await rows<{ raw_rows: number; states: number }>(estimateQuery(db, source));
      known = {
        rawIsCheaper: rawIsCheaper({
          rawRows: Number(estimate?.raw_rows ?? 0),
          states: Number(estimate?.states ?? 0),
        }),
        at: now(),
      };
      densityChecked.set(source.table, known);
    }
    return known.rawIsCheaper ? rawSource(range) : source;
  }

  async function plan(
    req: FastifyRequest,
    params: RawParams,
    extra: { groupBy?: Dimension[]; step_s?: number } = {},
  ) {
    const range = parseTimeRange(params, now());
    const filters = parseFilters(params, restrictionOf(req));
    const mode = parseEnumParam(params, 'source', SOURCE_MODES, 'auto');
    const source = await costChecked(planSource({ range, filters, mode, ...extra }), range, mode);
    return { range, filters, mode, source };
  }
  /** Seconds the rate is computed over: the covered range, not counting the future. */
  const seconds = (s: Source) =>
    Math.max(1, (Math.min(s.to, Math.max(now(), s.from + 1000)) - s.from) / 1000);
  const sourceInfo = (s: Source) => ({ kind: s.kind, table: s.table, granularity_s: s.granularity_s });

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
      const { source, filters } = await plan(req, req.query as RawParams);
      const [row] = await rows<StatsRow>(summaryQuery(db, source, filters));
      return {
        from: iso(source.from),
        to: iso(source.to),
        source: sourceInfo(source),
        ...toStats(row, seconds(source)),
      };
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
      const { source, filters } = await plan(req, params);
      const sort = parseEnumParam(params, 'sort', ROUTE_SORTS, 'requests');
      const order = parseEnumParam(
        params,
        'order',
        ['asc', 'desc'] as const,
        sort === 'route' ? 'asc' : 'desc',
      );
      const limit = parseIntParam(params, 'limit', 100, 1, 1000);
      const list = await rows<StatsRow & { route: string; share: number }>(
        routesQuery(db, source, filters, { sort, order, limit }),
      );
      const secs = seconds(source);
      return {
        from: iso(source.from),
        to: iso(source.to),
        source: sourceInfo(source),
        routes: list.map((r) => ({ route: r.route, share: Number(r.share) || 0, ...toStats(r, secs) })),
      };
    },
  );

  const METRICS = [
    'requests',
    'rps',
    'error_rate',
    'p50_ms',
    'p90_ms',
    'p95_ms',
    'p99_ms',
    'max_ms',
    'bytes_sent',
    'bytes_received',
    '1xx',
    '2xx',
    '3xx',
    '4xx',
    '5xx',
    'none',
  ] as const;
  type Metric = (typeof METRICS)[number];
  const GROUPS = ['route', 'upstream_cluster', 'status_class', 'authority', 'method', 'gateway'] as const;

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
            description: `Comma-separated: ${METRICS.join(', ')}. Default rps,error_rate,p50_ms,p99_ms`,
          },
          step: {
            type: 'string',
            description: 'Bucket width (10s, 1m, 1h …); default chosen for the range (≤ 100 points)',
          },
          group_by: { type: 'string', enum: [...GROUPS] },
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
      const metricsText = singleParam(params, 'metrics') ?? 'rps,error_rate,p50_ms,p99_ms';
      const metrics = metricsText
        .split(',')
        .map((m) => m.trim())
        .filter(Boolean) as Metric[];
      const badMetric = metrics.find((m) => !(METRICS as readonly string[]).includes(m));
      if (badMetric || metrics.length === 0) {
        throw new QueryParamError(
          'ERR_QUERY_BAD_PARAM',
          'metrics',
          `metrics: "${badMetric ?? ''}" is not one of ${METRICS.join(', ')}`,
        );
      }
      const groupBy = parseEnumParam(params, 'group_by', [...GROUPS, ''] as const, '') || undefined;
      const limit = parseIntParam(params, 'limit', 20, 1, 500);
      const range = parseTimeRange(params, now());
      const mode = parseEnumParam(params, 'source', SOURCE_MODES, 'auto');
      const stepText = singleParam(params, 'step');
      let step_s: number;
      if (stepText !== undefined) {
        const ms = parseDuration(stepText);
        if (ms === undefined || ms % 1000 !== 0) {
          throw new QueryParamError(
            'ERR_QUERY_BAD_STEP',
            'step',
            `step="${stepText}" is not a duration in whole seconds (10s, 1m, 1h)`,
          );
        }
        step_s = ms / 1000;
        if ((range.to - range.from) / ms > MAX_POINTS_HARD) {
          throw new QueryParamError(
            'ERR_QUERY_BAD_STEP',
            'step',
            `step=${stepText} gives more than ${MAX_POINTS_HARD} points for this range: use a larger step`,
          );
        }
      } else {
        step_s = autoStep(range, mode === 'rollup' ? 60 : 0);
      }
      const filters = parseFilters(params, restrictionOf(req));
      const source = await costChecked(
        planSource({ range, filters, mode, step_s, groupBy: groupBy ? [groupBy] : [] }),
        range,
        mode,
      );
      const withQuantiles = metrics.some((m) => m.startsWith('p') || m === 'max_ms');
      const data = await rows<StatsRow & { t: number; g?: string }>(
        timeseriesQuery(db, source, filters, { step_s, groupBy, withQuantiles }),
      );
      // Buckets covering the range, aligned to the step.
      const first = Math.floor(source.from / 1000 / step_s) * step_s;
      const buckets: number[] = [];
      for (let t = first; t * 1000 < source.to; t += step_s) buckets.push(t);
      const groups = new Map<string, Map<number, Stats>>();
      const totals = new Map<string, number>();
      for (const r of data) {
        const key = r.g ?? '';
        if (!groups.has(key)) groups.set(key, new Map());
        const st = toStats(r, step_s);
        groups.get(key)!.set(Number(r.t), st);
        totals.set(key, (totals.get(key) ?? 0) + st.requests);
      }
      if (!groupBy && groups.size === 0) groups.set('', new Map());
      const keys = [...groups.keys()]
        .sort((a, b) => (totals.get(b) ?? 0) - (totals.get(a) ?? 0) || a.localeCompare(b))
        .slice(0, limit);
      const series = [];
      for (const key of keys) {
        const byT = groups.get(key)!;
        for (const metric of metrics) {
          const labels: Record<string, string> = { metric };
          if (groupBy) labels[groupBy] = key;
          const points = buckets.map((t) => {
            const st = byT.get(t);
            let v: number | null;
            if (['1xx', '2xx', '3xx', '4xx', '5xx', 'none'].includes(metric))
              v = st ? st.status_classes[metric as '2xx'] : 0;
            else if (
              metric === 'requests' ||
              metric === 'rps' ||
              metric === 'bytes_sent' ||
              metric === 'bytes_received'
            )
              v = st ? st[metric] : 0;
            else if (metric === 'error_rate') v = st && st.requests > 0 ? st.error_rate : null;
            else v = st ? st[metric as 'p50_ms'] : null;
            return [t * 1000, v];
          });
          series.push({ labels, points });
        }
      }
      return { from: iso(source.from), to: iso(source.to), source: sourceInfo(source), step_s, series };
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
      const params = { ...(req.query as RawParams), route };
      const { source, filters } = await plan(req, params);
      const list = await rows<StatsRow & { upstream_cluster: string }>(splitQuery(db, source, filters));
      const secs = seconds(source);
      const stats = list.map((r) => ({ upstream_cluster: r.upstream_cluster, ...toStats(r, secs) }));
      const total = stats.reduce((s, c) => s + c.requests, 0);
      const base = stats[0];
      const diff = (a: number | null, b: number | null) =>
        a === null || b === null ? null : Math.round((a - b) * 1000) / 1000;
      const ratio = (a: number | null, b: number | null) =>
        a === null || b === null || b === 0 ? null : a / b;
      const baseShare = base && total ? base.requests / total : 0;
      return {
        from: iso(source.from),
        to: iso(source.to),
        source: sourceInfo(source),
        route,
        requests: total,
        baseline: base?.upstream_cluster ?? null,
        clusters: stats.map((c) => {
          const share = total ? c.requests / total : 0;
          return {
            ...c,
            baseline: c === base,
            share,
            share_diff: share - baseShare,
            error_rate_diff: c.error_rate - base.error_rate,
            p50_ms_diff: diff(c.p50_ms, base.p50_ms),
            p99_ms_diff: diff(c.p99_ms, base.p99_ms),
            p50_ratio: ratio(c.p50_ms, base.p50_ms),
            p99_ratio: ratio(c.p99_ms, base.p99_ms),
          };
        }),
      };
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
      const { source, filters } = await plan(req, params, { groupBy: ['response_code', 'response_flag'] });
      const limit = parseIntParam(params, 'limit', 500, 1, 5000);
      const list = await rows<{
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
        : await rows<{ table: string; reason: string; error_name: string; files: number; entries: number }>(
            deadLettersQuery(db),
          );
      return {
        from: iso(source.from),
        to: iso(source.to),
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
      const list = await rows<Record<string, unknown>>(
        topQuery(db, source, filters, { dimension, by, limit }),
      );
      return {
        from: iso(source.from),
        to: iso(source.to),
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
      const list = await rows<Record<string, unknown> & { cursor_time: string; request_id: string }>(
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
        from: iso(source.from),
        to: iso(source.to),
        source: sourceInfo(source),
        rows: page.map(({ cursor_time: _c, ...r }) => r),
        next_cursor: more && last ? encodeCursor({ t: last.cursor_time, id: last.request_id }) : null,
      };
    },
  );
}
