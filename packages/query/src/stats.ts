import { STATUS_CLASSES } from './params.js';

/** One row of `statsColumns` as ClickHouse returns it in JSON. */
export interface StatsRow {
  requests: number | string;
  requests_1xx: number | string;
  requests_2xx: number | string;
  requests_3xx: number | string;
  requests_4xx: number | string;
  requests_5xx: number | string;
  requests_none: number | string;
  bytes_sent: number | string;
  bytes_received: number | string;
  max_ms: number | string | null;
  q?: (number | string | null)[];
}

export interface Stats {
  requests: number;
  rps: number;
  /** Share of requests answered 5xx. */
  error_rate: number;
  p50_ms: number | null;
  p90_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
  bytes_sent: number;
  bytes_received: number;
  status_classes: Record<(typeof STATUS_CLASSES)[number], number>;
}

const num = (v: unknown): number => {
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : 0;
};
const latency = (v: unknown, requests: number): number | null => {
  if (requests === 0 || v === null || v === undefined) return null;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? Math.round(n * 1000) / 1000 : null;
};

const CLASS_COLUMNS = STATUS_CLASSES.map((c) => [c, `requests_${c}` as keyof StatsRow] as const);

/** Turn a stats row into the API's fields; `seconds` is the span the rate is computed over. */
export function toStats(row: StatsRow | undefined, seconds: number): Stats {
  const requests = num(row?.requests);
  const q = row?.q ?? [];
  const classes = {} as Stats['status_classes'];
  for (const [c, column] of CLASS_COLUMNS) classes[c] = num(row?.[column]);
  return {
    requests,
    rps: seconds > 0 ? requests / seconds : 0,
    error_rate: requests > 0 ? classes['5xx'] / requests : 0,
    p50_ms: latency(q[0], requests),
    p90_ms: latency(q[1], requests),
    p95_ms: latency(q[2], requests),
    p99_ms: latency(q[3], requests),
    max_ms: latency(row?.max_ms, requests),
    bytes_sent: num(row?.bytes_sent),
    bytes_received: num(row?.bytes_received),
    status_classes: classes,
  };
}
