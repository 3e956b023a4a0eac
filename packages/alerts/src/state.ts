import type { Comparison } from './rule.js';

/**
 * One series of one rule (a route, when the rule groups by route) moves through
 *
 *   inactive ──breach──▶ pending ──breach held for `for`──▶ firing ──no breach──▶ resolved
 *       ▲                   │ no breach / not judged                                  │ breach: pending again
 *       └───────────────────┘                                                           ▼
 *
 * `for: 0s` goes from inactive straight to firing. A series is judged only when its window holds at least
 * `min_requests` requests and the metric has a value; otherwise a pending series goes back to inactive and a
 * firing one stays firing (too little traffic is no proof of recovery), except when the series had no traffic
 * at all in the window: then it resolves (a route nobody calls is not failing).
 */
export type AlertStateName = 'inactive' | 'pending' | 'firing' | 'resolved';

export interface SeriesState {
  rule: string;
  fingerprint: string;
  /** The alert's labels: alertname, the rule's labels and the group_by dimensions of this series. */
  labels: Record<string, string>;
  state: AlertStateName;
  /** Latest value (null: not judged), and the requests in its window. */
  value: number | null;
  requests: number;
  /** When the current episode began (pending, or firing straight away), ms. */
  activeAt?: number;
  firedAt?: number;
  resolvedAt?: number;
  /** The evaluation that last saw this series, ms. */
  evaluatedAt: number;
}

export interface Observation {
  value: number | null;
  requests: number;
}

export interface Judgement {
  op: Comparison;
  threshold: number;
  forMs: number;
  minRequests: number;
}

export interface Transition {
  from: AlertStateName;
  to: AlertStateName;
  at: number;
}

export function breaches(value: number, op: Comparison, threshold: number): boolean {
  switch (op) {
    case '>':
      return value > threshold;
    case '>=':
      return value >= threshold;
    case '<':
      return value < threshold;
    case '<=':
      return value <= threshold;
  }
}

/**
 * The next state of a series after one evaluation. `obs` is undefined when the series had no traffic in the
 * window. Returns the new state and the transition, if any (for the history).
 */
export function advance(
  prev: SeriesState,
  obs: Observation | undefined,
  j: Judgement,
  now: number,
): { next: SeriesState; transition?: Transition } {
  const from = prev.state;
  const next: SeriesState = {
    ...prev,
    value: obs?.value ?? null,
    requests: obs?.requests ?? 0,
    evaluatedAt: now,
  };
  const judged = obs !== undefined && obs.requests >= j.minRequests && obs.value !== null;
  const breach = judged && breaches(obs.value as number, j.op, j.threshold);
  const move = (to: AlertStateName) => {
    next.state = to;
    return { next, transition: { from, to, at: now } };
  };
  if (breach) {
    if (from === 'inactive' || from === 'resolved') {
      next.activeAt = now;
      next.firedAt = undefined;
      next.resolvedAt = undefined;
      if (j.forMs === 0) {
        next.firedAt = now;
        return move('firing');
      }
      return move('pending');
    }
    if (from === 'pending' && now - (prev.activeAt ?? now) >= j.forMs) {
      next.firedAt = now;
      return move('firing');
    }
    return { next };
  }
  if (from === 'pending') return move('inactive');
  if (from === 'firing' && (judged || obs === undefined)) {
    next.resolvedAt = now;
    return move('resolved');
  }
  // firing but too little traffic to judge: held. inactive/resolved: unchanged.
  return { next };
}
