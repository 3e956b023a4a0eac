/** Route health as Kiali colours it: by the share of 5xx responses. */
export type Health = 'healthy' | 'degraded' | 'failing' | 'idle';

export interface HealthThresholds {
  /** Share of 5xx (0..1) from which a route is degraded; Kiali's default 0.001 (0.1 %). */
  degradedErrorRate: number;
  /** Share of 5xx (0..1) from which a route is failing; Kiali's default 0.1 (10 %). */
  failingErrorRate: number;
}

export const KIALI_DEFAULT_THRESHOLDS: Readonly<HealthThresholds> = Object.freeze({
  degradedErrorRate: 0.001,
  failingErrorRate: 0.1,
});

export function healthOf(
  requests: number,
  errorRate: number,
  t: HealthThresholds = KIALI_DEFAULT_THRESHOLDS,
): Health {
  if (requests <= 0) return 'idle';
  if (errorRate >= t.failingErrorRate) return 'failing';
  if (errorRate >= t.degradedErrorRate) return 'degraded';
  return 'healthy';
}
