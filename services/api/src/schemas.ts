import { FILTER_NAMES } from '@gatescope/query';

const stringOrList = { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] } as const;

/** Query-string parameters shared by every analytics endpoint (validated by @gatescope/query). */
export const commonQuery = {
  from: { type: 'string', description: 'Start (inclusive): RFC 3339 with a zone or epoch milliseconds' },
  to: {
    type: 'string',
    description: 'End (exclusive): RFC 3339 with a zone or epoch milliseconds; default now',
  },
  range: { type: 'string', description: 'Length ending at `to`: 30s, 5m, 1h, 7d, 2w. Default 15m' },
  source: {
    type: 'string',
    enum: ['auto', 'raw', 'rollup'],
    description: 'auto (default) picks raw rows or rollups by range and filters',
  },
  ...Object.fromEntries(
    FILTER_NAMES.map((f) => [
      f,
      {
        ...stringOrList,
        description:
          f === 'gateway'
            ? 'Envoy node id or node cluster; repeat to match any'
            : f === 'status_class'
              ? '1xx, 2xx, 3xx, 4xx, 5xx or none (no response); repeat to match any'
              : `${f}; repeat to match any`,
      },
    ]),
  ),
} as const;

export const querystring = (extra: Record<string, unknown> = {}) => ({
  type: 'object',
  properties: { ...commonQuery, ...extra },
  additionalProperties: false,
});

const nullableNumber = { type: ['number', 'null'] } as const;

export const statsProperties = {
  requests: { type: 'integer' },
  rps: { type: 'number' },
  error_rate: { type: 'number', description: 'Share of requests answered 5xx' },
  p50_ms: nullableNumber,
  p90_ms: nullableNumber,
  p95_ms: nullableNumber,
  p99_ms: nullableNumber,
  max_ms: nullableNumber,
  bytes_sent: { type: 'integer' },
  bytes_received: { type: 'integer' },
  status_classes: {
    type: 'object',
    properties: Object.fromEntries(
      ['1xx', '2xx', '3xx', '4xx', '5xx', 'none'].map((c) => [c, { type: 'integer' }]),
    ),
  },
} as const;

/** Where an answer came from: the table, its bucket width, and the range it really covers. */
export const sourceProperty = {
  type: 'object',
  properties: {
    kind: { type: 'string', enum: ['raw', 'routes', 'requests', 'totals'] },
    table: { type: 'string' },
    granularity_s: { type: 'integer' },
    tables: { type: 'array', items: { type: 'string' } },
  },
} as const;

export const rangeProperties = {
  from: { type: 'string', format: 'date-time' },
  to: { type: 'string', format: 'date-time' },
  source: sourceProperty,
} as const;
