import type { FastifyInstance, FastifyRequest } from 'fastify';
import { readJson, type ClickHouse, type QueryLimits } from '@gatescope/clickhouse';
import {
  ledgerNodesQuery,
  ledgerReadable,
  ledgerSeriesQuery,
  shapeLedgerNodes,
  shapeLedgerSeries,
  type LedgerNodeRow,
  type LedgerQuery,
  type LedgerSeriesRow,
} from '@gatescope/ledger';
import { parseTimeRange, withLimits, type RawParams } from '@gatescope/query';
import { ApiError, errorSchema } from './errors.js';

/**
 * The delivery ledger (issue 14): per gateway node, messages and entries received, stored, dropped by reason,
 * in flight, rejected messages by reason, open streams, first / last message and live / stale / gone. The SQL and
 * the shape live in @gatescope/ledger; this file routes, authorizes and serialises. Read scope; a token restricted
 * to gateways sees only those, one restricted to authorities none (the ledger counts whole gateways).
 */
export interface IngestOptions {
  clickhouse: ClickHouse;
  now: () => number;
  limits: QueryLimits;
  staleAfterMs: number;
}

const errors = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 429: errorSchema, 503: errorSchema };
const counts = { type: 'object', additionalProperties: { type: 'integer' } } as const;

const nodeProperties = {
  node_id: { type: 'string' },
  node_cluster: { type: 'string' },
  log_name: { type: 'string' },
  messages: { type: 'integer' },
  entries_received: { type: 'integer' },
  entries_stored: { type: 'integer', description: 'Committed in ClickHouse' },
  entries_dropped: { ...counts, description: 'Dead-lettered or lost, by reason' },
  messages_rejected: { ...counts, description: 'Refused messages, by reason' },
  entries_in_flight: {
    type: 'integer',
    description:
      'Received and not yet stored or dropped, at the end of the range. received = stored + dropped + in_flight - in_flight_at_start',
  },
  entries_in_flight_at_start: { type: 'integer', description: 'The same at the start of the range' },
  streams_open: { type: 'integer' },
  first_seen: { type: ['string', 'null'], format: 'date-time' },
  last_seen: { type: ['string', 'null'], format: 'date-time' },
  status: { type: 'string', enum: ['live', 'stale', 'gone'] },
} as const;

const pointProperties = {
  minute: { type: 'string', format: 'date-time' },
  messages: { type: 'integer' },
  entries_received: { type: 'integer' },
  entries_stored: { type: 'integer' },
  entries_dropped: counts,
  messages_rejected: counts,
  entries_in_flight_change: { type: 'integer' },
} as const;

const rangeQuery = {
  type: 'object',
  properties: {
    from: { type: 'string', description: 'Start (inclusive, from its minute): RFC 3339 or epoch ms' },
    to: { type: 'string', description: 'End (exclusive): RFC 3339 or epoch ms; default now' },
    range: { type: 'string', description: 'Length ending at `to`: 30s, 5m, 1h, 7d. Default 15m' },
  },
  additionalProperties: false,
} as const;

export async function ingestRoutes(app: FastifyInstance, opts: IngestOptions): Promise<void> {
  const { clickhouse: ch, now, limits, staleAfterMs } = opts;
  const db = ch.database;
  const rows = async <T>(q: LedgerQuery): Promise<T[]> => {
    const l = withLimits(q, limits);
    return (await readJson<T>(ch.reader, { query: l.query, params: l.params })).data;
  };
  const restriction = (req: FastifyRequest) => {
    const r = req.auth?.restriction;
    if (!ledgerReadable(r))
      throw new ApiError(
        403,
        'ERR_FORBIDDEN_RESTRICTED',
        'This token is restricted to some authorities; the delivery ledger counts whole gateways. Use a token restricted by gateway (or unrestricted).',
      );
    return r;
  };

  app.get(
    '/api/v1/ingest/nodes',
    {
      config: { access: 'read' },
      schema: {
        summary:
          'The delivery ledger: every gateway node, what it sent and what became of it, and its status',
        tags: ['ingest'],
        querystring: rangeQuery,
        response: {
          200: {
            type: 'object',
            properties: {
              from: { type: 'string', format: 'date-time' },
              to: { type: 'string', format: 'date-time' },
              stale_after_s: { type: 'number' },
              nodes: { type: 'array', items: { type: 'object', properties: nodeProperties } },
            },
          },
          ...errors,
        },
      },
    },
    async (req) => {
      const r = restriction(req);
      const at = now();
      const range = parseTimeRange(req.query as RawParams, at);
      const list = await rows<LedgerNodeRow>(ledgerNodesQuery(db, range, { restriction: r, staleAfterMs }));
      return {
        from: new Date(range.from).toISOString(),
        to: new Date(range.to).toISOString(),
        stale_after_s: staleAfterMs / 1000,
        nodes: shapeLedgerNodes(list, Math.min(at, range.to), staleAfterMs),
      };
    },
  );

  app.get(
    '/api/v1/ingest/nodes/:node_id',
    {
      config: { access: 'read' },
      schema: {
        summary: 'One gateway node (each node cluster and log name it used) with its per-minute series',
        tags: ['ingest'],
        params: {
          type: 'object',
          properties: { node_id: { type: 'string', maxLength: 2048 } },
          required: ['node_id'],
        },
        querystring: rangeQuery,
        response: {
          200: {
            type: 'object',
            properties: {
              from: { type: 'string', format: 'date-time' },
              to: { type: 'string', format: 'date-time' },
              stale_after_s: { type: 'number' },
              nodes: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    ...nodeProperties,
                    series: { type: 'array', items: { type: 'object', properties: pointProperties } },
                  },
                },
              },
            },
          },
          404: errorSchema,
          ...errors,
        },
      },
    },
    async (req) => {
      const r = restriction(req);
      const nodeId = (req.params as { node_id: string }).node_id;
      const at = now();
      const range = parseTimeRange(req.query as RawParams, at);
      const [list, points] = await Promise.all([
        rows<LedgerNodeRow>(ledgerNodesQuery(db, range, { restriction: r, staleAfterMs, nodeId })),
        rows<LedgerSeriesRow>(ledgerSeriesQuery(db, range, nodeId, r)),
      ]);
      if (list.length === 0)
        throw new ApiError(
          404,
          'ERR_NOT_FOUND',
          `No gateway node "${nodeId}" in the delivery ledger before ${new Date(range.to).toISOString()} (or this token may not see it); GET /api/v1/ingest/nodes lists them`,
        );
      const series = shapeLedgerSeries(points);
      return {
        from: new Date(range.from).toISOString(),
        to: new Date(range.to).toISOString(),
        stale_after_s: staleAfterMs / 1000,
        nodes: shapeLedgerNodes(list, Math.min(at, range.to), staleAfterMs).map((n) => ({
          ...n,
          series: series.get(JSON.stringify([n.node_cluster, n.log_name])) ?? [],
        })),
      };
    },
  );
}
