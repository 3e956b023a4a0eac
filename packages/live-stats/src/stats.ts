import { toStats, type Stats, type StatsRow } from '@gatescope/query';
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
  /** Latency quantiles: @gatescope/query's definition (quantilesDD, 0.5 %), as the API and Grafana report them. */
  p50_ms: number | null;
  p90_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  status_classes: StatusClasses;
}

export interface LiveTotals {
  requests: number;
  rps: number;
  errors: number;
  error_rate: number;
  /** Latency quantiles: @gatescope/query's definition (quantilesDD, 0.5 %), as the API and Grafana report them. */
  p50_ms: number | null;
  p90_ms: number | null;
  p95_ms: number | null;
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

/** Rows as ClickHouse returns them for liveWindowQuery / livePointsQuery (@gatescope/query): stats columns. */
export interface WindowRow extends StatsRow {
  route: string;
  /** 1 on the all-routes row of liveWindowQuery. */
  is_total?: number | boolean;
  spark: [number | string, number | string][];
}
export interface PointRow extends StatsRow {
  s: number | string;
}

const num = (v: unknown): number => {
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : 0;
};
/** Round to 3 decimals (µs for *_ms); keeps payloads small without losing anything a chart can show. */
export const round3 = (v: number): number => Math.round(v * 1000) / 1000;

export function statusClasses(row: StatsRow | undefined): StatusClasses {
  return toStats(row, 1).status_classes;
}

export const emptyStatusClasses = (): StatusClasses => ({
  '1xx': 0,
  '2xx': 0,
  '3xx': 0,
  '4xx': 0,
  '5xx': 0,
  none: 0,
});

/** The fields a live total and a live point share, from the API's stats of the same rows. */
function livePart(st: Stats) {
  return {
    requests: st.requests,
    errors: st.status_classes['5xx'],
    error_rate: st.error_rate,
    p50_ms: st.p50_ms,
    p90_ms: st.p90_ms,
    p95_ms: st.p95_ms,
    p99_ms: st.p99_ms,
    status_classes: st.status_classes,
  };
}

function totalsOf(
  row: WindowRow | undefined,
  windowS: number,
  thresholds: HealthThresholds,
  memory: HealthMemory | undefined,
  key: string,
): LiveTotals {
  const st = toStats(row, windowS);
  const counts = {
    requests: st.requests,
    errors5xx: st.status_classes['5xx'],
    errors4xx: st.status_classes['4xx'],
  };
  const judged = memory ? memory.judge(key, counts) : judgeHealth(counts, thresholds);
  return {
    ...livePart(st),
    rps: round3(st.rps),
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
  const st = toStats(row, 1);
  return { ts: num(row.s) * 1000, ...livePart(st), rps: st.requests };
}

export const emptyPoint = (ts: number): LivePoint => ({
  ts,
  requests: 0,
  rps: 0,
  errors: 0,
  error_rate: 0,
  p50_ms: null,
  p90_ms: null,
  p95_ms: null,
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
