import { ingestDropRate, ingestSilenceSeconds, type LedgerNode } from '@gatescope/ledger';
import { STATUS_CLASSES, type Stats, type StatusClass } from '@gatescope/query';
import type { Observation } from './state.js';

/**
 * What a rule can watch. Every metric names the *source* that measures it; the evaluator asks each source for
 * the values of all rules using it in one go (one statement per cycle for `traffic`). A new family of metrics
 * (the ingest ledger's `ingest_silence_seconds`, `ingest_drop_rate`) adds a source and its entries here and a
 * `MetricSource` in the evaluator; rules, states, grouping and payloads need no change.
 */
export type MetricSourceName = 'traffic' | 'ingest';

/** One series' traffic over a rule's window: the API's stats for it, and how many requests carried `matchFlag`. */
export interface TrafficObservation {
  stats: Stats;
  /** Requests with the rule's response flag (`flag:UH`); 0 for other metrics. */
  flagged: number;
}

export interface TrafficMetricDef {
  /** As written in rules: `error_rate`, `p99_ms`, `flag:UH`, `class:5xx` … */
  name: string;
  source: 'traffic';
  /** Unit for people (annotations, the UI): `ratio`, `ms`, `requests/s`, `requests`. */
  unit: 'ratio' | 'ms' | 'requests/s' | 'requests';
  /** The response flag whose requests this metric counts (`flag:UH`), for the query. */
  responseFlag?: string;
  /** Whether its value is a latency quantile: only then does the query read the rollups' DDSketch states. */
  quantiles?: boolean;
  /** The value from one observation; null when there is nothing to judge (a quantile of no requests). */
  value(o: TrafficObservation): number | null;
}

/** One gateway node of the delivery ledger (`/api/v1/ingest/nodes`'s shape) over a rule's window, at `atMs`. */
export interface IngestObservation {
  node: LedgerNode;
  atMs: number;
}

/**
 * The delivery ledger's metrics, one series per gateway node (`node_id`, `node_cluster`, `log_name`).
 * `min_requests` counts the entries the node sent in the window and applies to `ingest_drop_rate` only (a rate
 * over three entries is noise); `ingest_silence_seconds` is judged whatever it says, since a silent node sends
 * nothing and must still page.
 */
export interface IngestMetricDef {
  name: 'ingest_silence_seconds' | 'ingest_drop_rate';
  source: 'ingest';
  unit: 'seconds' | 'ratio';
  /** Whether the rule's `min_requests` (entries received in the window) gates the judgement. */
  minRequestsApplies: boolean;
  value(o: IngestObservation): number | null;
}

export type MetricDef = TrafficMetricDef | IngestMetricDef;

const QUANTILE_METRICS = ['p50_ms', 'p90_ms', 'p95_ms', 'p99_ms'] as const;
/** Envoy's short response flag codes (`%RESPONSE_FLAGS%`), as stored in `response_flags`. */
const FLAG_CODE = /^[A-Z]{2,4}$/;

export const METRIC_NAMES_HELP =
  'error_rate, p50_ms, p90_ms, p95_ms, p99_ms, rps, requests, flag:<Envoy flag> (flag:UH, flag:UF, flag:NR …), class:<status class> (class:5xx …), ingest_silence_seconds or ingest_drop_rate';

/** The metric of a rule, or why the name is not one. */
export function resolveMetric(name: string): MetricDef | { error: string } {
  if (name === 'ingest_silence_seconds')
    return {
      name,
      source: 'ingest',
      unit: 'seconds',
      minRequestsApplies: false,
      value: (o) => ingestSilenceSeconds(o.node, o.atMs) ?? null,
    };
  if (name === 'ingest_drop_rate')
    return {
      name,
      source: 'ingest',
      unit: 'ratio',
      minRequestsApplies: true,
      value: (o) => ingestDropRate(o.node),
    };
  if (name === 'error_rate')
    return { name, source: 'traffic', unit: 'ratio', value: (o) => o.stats.error_rate };
  if (name === 'rps') return { name, source: 'traffic', unit: 'requests/s', value: (o) => o.stats.rps };
  if (name === 'requests')
    return { name, source: 'traffic', unit: 'requests', value: (o) => o.stats.requests };
  if ((QUANTILE_METRICS as readonly string[]).includes(name)) {
    const key = name as (typeof QUANTILE_METRICS)[number];
    return { name, source: 'traffic', unit: 'ms', quantiles: true, value: (o) => o.stats[key] };
  }
  const flag = /^flag:(.*)$/.exec(name);
  if (flag) {
    if (!FLAG_CODE.test(flag[1]))
      return {
        error: `"${name}": a response flag is Envoy's short code in capitals (flag:UH, flag:UF, flag:NR)`,
      };
    return { name, source: 'traffic', unit: 'requests', responseFlag: flag[1], value: (o) => o.flagged };
  }
  const cls = /^class:(.*)$/.exec(name);
  if (cls) {
    if (!(STATUS_CLASSES as readonly string[]).includes(cls[1]))
      return { error: `"${name}": the status class must be one of ${STATUS_CLASSES.join(', ')}` };
    const c = cls[1] as StatusClass;
    return { name, source: 'traffic', unit: 'requests', value: (o) => o.stats.status_classes[c] };
  }
  return { error: `"${name}" is not a metric: use ${METRIC_NAMES_HELP}` };
}

/**
 * An ingest rule's series from the ledger's nodes (`shapeLedgerNodes`, over the rule's window, at `atMs`): one per
 * node, keyed `[node_id, node_cluster, log_name]`, `requests` the entries it sent in the window. A node that sent
 * nothing is kept (its silence is the point); a `gone` node (stale for a day) is left out, so the alert of a
 * decommissioned gateway resolves.
 */
export function ingestSeries(
  metric: IngestMetricDef,
  nodes: readonly LedgerNode[],
  atMs: number,
): Map<string, { groupValues: string[]; obs: Observation }> {
  const series = new Map<string, { groupValues: string[]; obs: Observation }>();
  for (const node of nodes) {
    if (node.status === 'gone') continue;
    const groupValues = [node.node_id, node.node_cluster, node.log_name];
    series.set(JSON.stringify(groupValues), {
      groupValues,
      obs: { value: metric.value({ node, atMs }), requests: node.entries_received },
    });
  }
  return series;
}
