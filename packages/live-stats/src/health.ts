/**
 * Route health as Kiali judges request traffic, one definition for the live socket, the API and the UI:
 * - 5xx (application errors): degraded from 0.1 %, failing from 10 %;
 * - 4xx (client errors, configurable): degraded from 10 %, failing from 20 % — so a route that only answers
 *   404 NR (no route configured) is failing, not healthy;
 * - fewer than `minRequests` requests: `unknown` (one error in a handful of requests says nothing);
 * - no requests: `idle`.
 * Hysteresis keeps it from flapping: a route that was judged worse returns to a better state only once its rate
 * is below the threshold it crossed by `hysteresis` (20 %: a route degraded at 0.1 % is healthy again under 0.08 %).
 */
export type Health = 'healthy' | 'degraded' | 'failing' | 'unknown' | 'idle';

export interface HealthThresholds {
  /** Share of 5xx (0..1) from which a route is degraded; Kiali's default 0.001 (0.1 %). */
  degradedErrorRate: number;
  /** Share of 5xx (0..1) from which a route is failing; Kiali's default 0.1 (10 %). */
  failingErrorRate: number;
  /** Share of 4xx from which a route is degraded; Kiali's default 0.1. 1 turns 4xx off. */
  degraded4xxRate?: number;
  /** Share of 4xx from which a route is failing; Kiali's default 0.2. */
  failing4xxRate?: number;
  /** Fewer requests than this in the judged window: `unknown`. */
  minRequests?: number;
  /** Relative margin below a crossed threshold before the state improves (0..1). */
  hysteresis?: number;
}

export const KIALI_DEFAULT_THRESHOLDS: Readonly<Required<HealthThresholds>> = Object.freeze({
  degradedErrorRate: 0.001,
  failingErrorRate: 0.1,
  degraded4xxRate: 0.1,
  failing4xxRate: 0.2,
  minRequests: 20,
  hysteresis: 0.2,
});

export interface HealthCounts {
  requests: number;
  /** Requests answered 5xx. */
  errors5xx: number;
  /** Requests answered 4xx. */
  errors4xx: number;
}

export interface HealthJudgement {
  health: Health;
  /** Why, in words: "5xx 0.42 % ≥ 0.1 %", "n = 7 < 20 requests". */
  reason: string;
}

const RANK: Record<Health, number> = { idle: 0, unknown: 0, healthy: 1, degraded: 2, failing: 3 };
const pct = (r: number) => `${(r * 100).toFixed(r < 0.01 ? 2 : 1)} %`;

function level(rate: number, degraded: number, failing: number, margin: number): Health {
  if (rate >= failing * margin) return 'failing';
  if (rate >= degraded * margin && degraded > 0) return 'degraded';
  if (degraded === 0 && rate > 0) return 'degraded';
  return 'healthy';
}

/**
 * Judge one route (or the totals). `previous`: the state of the last judgement of the same route, for hysteresis;
 * without it (a range from the API), the rates are compared with the thresholds as they are.
 */
export function judgeHealth(
  c: HealthCounts,
  thresholds: HealthThresholds = KIALI_DEFAULT_THRESHOLDS,
  previous?: Health,
): HealthJudgement {
  const t = { ...KIALI_DEFAULT_THRESHOLDS, ...thresholds };
  if (c.requests <= 0) return { health: 'idle', reason: 'no requests' };
  if (c.requests < t.minRequests)
    return { health: 'unknown', reason: `n = ${c.requests} < ${t.minRequests} requests: too few to judge` };
  const r5 = c.errors5xx / c.requests;
  const r4 = c.errors4xx / c.requests;
  const judge = (margin: number): Health => {
    const a = level(r5, t.degradedErrorRate, t.failingErrorRate, margin);
    const b = t.degraded4xxRate >= 1 ? 'healthy' : level(r4, t.degraded4xxRate, t.failing4xxRate, margin);
    return RANK[a] >= RANK[b] ? a : b;
  };
  let health = judge(1);
  if (previous && RANK[previous] > RANK[health] && RANK[previous] >= 2) {
    // Improve only once clear of the crossed threshold by the hysteresis margin.
    const held = judge(1 - t.hysteresis);
    if (RANK[held] > RANK[health]) health = RANK[held] >= RANK[previous] ? previous : held;
  }
  const parts: string[] = [];
  if (r5 >= t.degradedErrorRate && c.errors5xx > 0)
    parts.push(
      `5xx ${pct(r5)} ≥ ${pct(r5 >= t.failingErrorRate ? t.failingErrorRate : t.degradedErrorRate)}`,
    );
  if (t.degraded4xxRate < 1 && r4 >= t.degraded4xxRate)
    parts.push(`4xx ${pct(r4)} ≥ ${pct(r4 >= t.failing4xxRate ? t.failing4xxRate : t.degraded4xxRate)}`);
  const reason =
    health === 'healthy'
      ? `5xx ${pct(r5)}, 4xx ${pct(r4)}, n = ${c.requests}`
      : parts.length
        ? `${parts.join(', ')} (n = ${c.requests})`
        : `held ${health} until the rates drop ${Math.round(t.hysteresis * 100)} % below the threshold (5xx ${pct(r5)}, 4xx ${pct(r4)})`;
  return { health, reason };
}

/** The 5xx-only judgement without a minimum or memory (kept for callers that only have a rate). */
export function healthOf(
  requests: number,
  errorRate: number,
  t: HealthThresholds = KIALI_DEFAULT_THRESHOLDS,
): Health {
  return judgeHealth(
    { requests, errors5xx: errorRate * requests, errors4xx: 0 },
    { ...t, minRequests: 1, degraded4xxRate: 1 },
  ).health;
}

/**
 * Remembers each route's last state between live ticks (per filter set), so the judgement has hysteresis.
 * Routes not seen for `forgetAfter` ticks are dropped.
 */
export class HealthMemory {
  private readonly states = new Map<string, { health: Health; tick: number }>();
  private tick = 0;
  constructor(
    readonly thresholds: HealthThresholds,
    private readonly forgetAfter = 120,
  ) {}

  /** Start a tick: call once before judging the tick's routes. */
  next(): void {
    this.tick++;
    for (const [k, v] of this.states) if (this.tick - v.tick > this.forgetAfter) this.states.delete(k);
  }

  judge(key: string, c: HealthCounts): HealthJudgement {
    const j = judgeHealth(c, this.thresholds, this.states.get(key)?.health);
    this.states.set(key, { health: j.health, tick: this.tick });
    return j;
  }
}
