import { judgeHealth, type Health, type HealthMemory, type HealthThresholds } from './health.js';

export interface StatusClasses {
  '1xx': number;
  '2xx': number;
  '3xx': number;
  '4xx': number;
  '5xx': number;
  none: number;
}

/** One second of traffic. `ts` is the start of the second, epoch ms. */
export interface LivePoint {
  ts: number;
  requests: number;
  rps: number;
  errors: number;
  error_rate: number;
  p50_ms: number | null;
  p99_ms: number | null;
  status_classes: StatusClasses;
}

export interface LiveTotals {
  requests: number;
  rps: number;
  errors: number;
  error_rate: number;
  p50_ms: number | null;
  p99_ms: number | null;
  status_classes: StatusClasses;
  health: Health;
  /** Why the health is what it is, in words (shown on hover). */
  health_reason: string;
}

export interface LiveRoute extends LiveTotals {
  route: string;
  /** Requests per second over the window, oldest first, one value per second. */
  spark: number[];
}

/** The `stats` payload pushed to subscribers every tick. */
export interface LiveStats {
  /** When the tick was computed, epoch ms (end of the window). */
  ts: number;
  window_s: number;
  totals: LiveTotals;
  routes: LiveRoute[];
  /**
   * Per-second points, oldest first. The first `stats` a socket receives has the whole history
   * (`points_full: true`); later ones only the last seconds, which replace the same seconds client-side.
   */
  points: LivePoint[];
  points_full: boolean;
  /** Length of the full history in seconds (chart width). */
  history_s: number;
}

/** Rows as ClickHouse returns them for windowQuery / pointsQuery (JSON format, 64-bit ints unquoted). */
export interface StatusCountsRow {
  c1xx: number | string;
  c2xx: number | string;
  c3xx: number | string;
  c4xx: number | string;
  c5xx: number | string;
  cnone: number | string;
}
export interface WindowRow extends StatusCountsRow {
  route: string;
  /** 1 on the all-routes row of windowQuery. */
  is_total?: number | boolean;
  requests: number | string;
  errors: number | string;
  qs: (number | null)[];
  spark: [number | string, number | string][];
}
export interface PointRow extends StatusCountsRow {
  s: number | string;
  requests: number | string;
  errors: number | string;
  qs: (number | null)[];
}

const num = (v: unknown): number => {
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : 0;
};
/** Round to 3 decimals (µs for *_ms); keeps payloads small without losing anything a chart can show. */
export const round3 = (v: number): number => Math.round(v * 1000) / 1000;
const ms = (v: unknown): number | null =>
  v === null || v === undefined || !Number.isFinite(Number(v)) ? null : round3(Number(v));

export function statusClasses(row: StatusCountsRow | undefined): StatusClasses {
  return {
    '1xx': num(row?.c1xx),
    '2xx': num(row?.c2xx),
    '3xx': num(row?.c3xx),
    '4xx': num(row?.c4xx),
    '5xx': num(row?.c5xx),
    none: num(row?.cnone),
  };
}

export const emptyStatusClasses = (): StatusClasses => ({
  '1xx': 0,
  '2xx': 0,
  '3xx': 0,
  '4xx': 0,
  '5xx': 0,
  none: 0,
});

function totalsOf(
  row: WindowRow | undefined,
  windowS: number,
  thresholds: HealthThresholds,
  memory: HealthMemory | undefined,
  key: string,
): LiveTotals {
  const requests = num(row?.requests);
  const errors = num(row?.errors);
  const errorRate = requests > 0 ? errors / requests : 0;
  const classes = statusClasses(row);
  const counts = { requests, errors5xx: errors, errors4xx: classes['4xx'] };
  const judged = memory ? memory.judge(key, counts) : judgeHealth(counts, thresholds);
  return {
    requests,
    rps: round3(requests / windowS),
    errors,
    error_rate: errorRate,
    p50_ms: requests > 0 ? ms(row?.qs?.[0]) : null,
    p99_ms: requests > 0 ? ms(row?.qs?.[1]) : null,
    status_classes: classes,
    health: judged.health,
    health_reason: judged.reason,
  };
}

/** Per-second requests over [fromSec, fromSec + windowS), zero-filled, oldest first. */
export function sparkline(pairs: WindowRow['spark'] | undefined, fromSec: number, windowS: number): number[] {
  const out = new Array<number>(windowS).fill(0);
  for (const [s, n] of pairs ?? []) {
    const i = num(s) - fromSec;
    if (i >= 0 && i < windowS) out[i] += num(n);
  }
  return out;
}

export interface ShapeWindowOptions {
  /** windowQuery's rows: the all-routes row (`is_total`) and one per route. */
  rows: WindowRow[];
  windowS: number;
  /** Window start, epoch ms. */
  fromMs: number;
  thresholds: HealthThresholds;
  /** The filter set's memory of earlier ticks (hysteresis); without it each tick is judged on its own. */
  memory?: HealthMemory;
}

export function shapeWindow(o: ShapeWindowOptions): { totals: LiveTotals; routes: LiveRoute[] } {
  const fromSec = Math.floor(o.fromMs / 1000);
  const isTotal = (r: WindowRow) => r.is_total === true || Number(r.is_total) === 1;
  o.memory?.next();
  return {
    totals: totalsOf(o.rows.find(isTotal), o.windowS, o.thresholds, o.memory, '\u0000total'),
    routes: o.rows
      .filter((r) => !isTotal(r) && Number(r.requests) > 0)
      .map((r) => ({
        route: r.route,
        ...totalsOf(r, o.windowS, o.thresholds, o.memory, r.route),
        spark: sparkline(r.spark, fromSec, o.windowS),
      })),
  };
}

export function shapePoint(row: PointRow): LivePoint {
  const requests = num(row.requests);
  const errors = num(row.errors);
  return {
    ts: num(row.s) * 1000,
    requests,
    rps: requests,
    errors,
    error_rate: requests > 0 ? errors / requests : 0,
    p50_ms: requests > 0 ? ms(row.qs?.[0]) : null,
    p99_ms: requests > 0 ? ms(row.qs?.[1]) : null,
    status_classes: statusClasses(row),
  };
}

export const emptyPoint = (ts: number): LivePoint => ({
  ts,
  requests: 0,
  rps: 0,
  errors: 0,
  error_rate: 0,
  p50_ms: null,
  p99_ms: null,
  status_classes: emptyStatusClasses(),
});

/**
 * The per-second history of one filter set, kept between ticks so a tick only re-reads the last seconds
 * (rows still arriving) instead of the whole chart history.
 */
export class PointSeries {
  private readonly points = new Map<number, LivePoint>();
  constructor(readonly historySeconds: number) {}

  /** Replace every second in [fromMs, toMs) with `fresh` (seconds absent from `fresh` become empty) and prune. */
  apply(fresh: readonly LivePoint[], fromMs: number, toMs: number): void {
    const from = Math.floor(fromMs / 1000);
    const to = Math.ceil(toMs / 1000);
    for (let s = from; s < to; s++) this.points.set(s * 1000, emptyPoint(s * 1000));
    for (const p of fresh) if (p.ts >= from * 1000 && p.ts < to * 1000) this.points.set(p.ts, p);
    const oldest = (to - this.historySeconds) * 1000;
    for (const ts of this.points.keys()) if (ts < oldest) this.points.delete(ts);
  }

  /** Points with ts in [fromMs, toMs), zero-filled, oldest first. */
  list(fromMs: number, toMs: number): LivePoint[] {
    const out: LivePoint[] = [];
    for (let ts = Math.floor(fromMs / 1000) * 1000; ts < toMs; ts += 1000)
      out.push(this.points.get(ts) ?? emptyPoint(ts));
    return out;
  }

  get size(): number {
    return this.points.size;
  }
}
