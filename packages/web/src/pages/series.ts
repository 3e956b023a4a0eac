/** The API's timeseries answer and how pages read it: one column per metric, aligned on the buckets. */
export interface Timeseries {
  step_s: number;
  source?: { kind: string; table: string; granularity_s: number };
  series: { labels: Record<string, string>; points: [number, number | null][] }[];
}

export const metricOf = (labels: Record<string, string>): string => labels.metric ?? '';

/** Columns of an ungrouped answer: `x` (bucket starts, epoch ms) and `get(metric)`. */
export function metricColumns(ts: Timeseries): { x: number[]; get: (metric: string) => (number | null)[] } {
  const byMetric = new Map(ts.series.map((s) => [metricOf(s.labels), s.points]));
  const x = (ts.series[0]?.points ?? []).map(([t]) => t);
  return { x, get: (m) => (byMetric.get(m) ?? x.map(() => null)).map((p) => (Array.isArray(p) ? p[1] : p)) };
}
