import type { LivePoint } from '@gatescope/live-stats';

/**
 * Merge one `stats` push into the chart history: a full push replaces it; a delta replaces the seconds it
 * covers (they may have grown with late rows) and the history is trimmed to `historyS` seconds.
 */
export function mergePoints(
  prev: readonly LivePoint[],
  next: { points: LivePoint[]; points_full: boolean; history_s: number },
): LivePoint[] {
  if (next.points_full) return next.points;
  if (next.points.length === 0) return [...prev];
  const first = next.points[0].ts;
  const newest = next.points[next.points.length - 1].ts;
  const oldest = newest - (next.history_s - 1) * 1000;
  return prev.filter((p) => p.ts < first && p.ts >= oldest).concat(next.points);
}
