/**
 * What the Alerts page reads and writes (`/api/v1/alerts*`, issue 8), typed, and read tolerantly: a missing
 * field becomes an empty value, never a crash, so a small change in the API's shape shows as a blank cell.
 * The pure helpers (value formatting by metric, the route link) are unit-tested in logic.test.ts.
 */
import { del, firstArray, get, post, type Query } from '../api.js';
import { fmtCount, fmtMs, fmtNum, fmtPct } from '../format.js';

export type AlertState = 'inactive' | 'pending' | 'firing' | 'resolved';

/** A rule as the API lists it: the provisioning file's names, plus where it came from. */
export interface AlertRule {
  name: string;
  metric: string;
  filter: Record<string, string | string[]>;
  group_by: string[];
  op: string;
  threshold: number;
  window: string;
  for: string;
  min_requests: number;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  receivers: string[];
  enabled: boolean;
  /** `file` (GATESCOPE_ALERTS_FILE: changed there only) or `api`. */
  origin: string;
  updated_at: string | null;
}

/** A pending or firing series of a rule. */
export interface ActiveAlert {
  rule: string;
  fingerprint: string;
  state: AlertState;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  value: number | null;
  requests: number;
  active_at: string | null;
  fired_at: string | null;
  resolved_at: string | null;
  evaluated_at: string | null;
  /** The route's page (or the overview) for the alert's time range, from the API. */
  link: string;
}

/** A state change of one series. */
export interface HistoryEntry {
  at: string;
  rule: string;
  fingerprint: string;
  labels: Record<string, string>;
  from: string;
  to: string;
  value: number | null;
  requests: number;
}

/** One webhook delivery attempt. */
export interface Delivery {
  at: string;
  notification_id: string;
  receiver: string;
  group_key: string;
  status: string;
  alerts: number;
  attempt: number;
  outcome: string;
  http_status: number | null;
  latency_ms: number | null;
  error: string;
}

/** A webhook receiver (the API never returns its path or secret). */
export interface Receiver {
  name: string;
  url_origin: string;
  has_secret: boolean;
  allow_private_network: boolean;
  timeout: string;
  group_by: string[];
  group_wait: string;
  group_interval: string;
  repeat_interval: string;
  send_resolved: boolean;
  origin: string;
}

type Raw = Record<string, unknown>;
const str = (v: unknown): string =>
  typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const strs = (v: unknown): string[] =>
  Array.isArray(v) ? v.map(str) : typeof v === 'string' && v ? [v] : [];
const strMap = (v: unknown): Record<string, string> =>
  v && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.entries(v as Raw).map(([k, x]) => [k, str(x)]))
    : {};

export function readRule(r: Raw): AlertRule {
  const filter: Record<string, string | string[]> = {};
  if (r.filter && typeof r.filter === 'object')
    for (const [k, v] of Object.entries(r.filter as Raw)) filter[k] = Array.isArray(v) ? strs(v) : str(v);
  return {
    name: str(r.name),
    metric: str(r.metric),
    filter,
    group_by: strs(r.group_by),
    op: str(r.op),
    threshold: num(r.threshold) ?? NaN,
    window: str(r.window),
    for: str(r.for),
    min_requests: num(r.min_requests) ?? 0,
    labels: strMap(r.labels),
    annotations: strMap(r.annotations),
    receivers: strs(r.receivers),
    enabled: r.enabled !== false,
    origin: str(r.origin) || 'api',
    updated_at: typeof r.updated_at === 'string' ? r.updated_at : null,
  };
}

const orNull = (v: unknown) => (typeof v === 'string' && v ? v : null);

export function readAlert(a: Raw): ActiveAlert {
  const labels = strMap(a.labels);
  return {
    rule: str(a.rule ?? labels.alertname),
    fingerprint: str(a.fingerprint),
    state: (str(a.state) || 'firing') as AlertState,
    labels,
    annotations: strMap(a.annotations),
    value: num(a.value),
    requests: num(a.requests) ?? 0,
    active_at: orNull(a.active_at),
    fired_at: orNull(a.fired_at),
    resolved_at: orNull(a.resolved_at),
    evaluated_at: orNull(a.evaluated_at),
    link: str(a.link ?? a.generatorURL),
  };
}

export const readHistory = (e: Raw): HistoryEntry => ({
  at: str(e.at),
  rule: str(e.rule),
  fingerprint: str(e.fingerprint),
  labels: strMap(e.labels),
  from: str(e.from),
  to: str(e.to ?? e.state),
  value: num(e.value),
  requests: num(e.requests) ?? 0,
});

export const readDelivery = (d: Raw): Delivery => ({
  at: str(d.at),
  notification_id: str(d.notification_id),
  receiver: str(d.receiver),
  group_key: str(d.group_key),
  status: str(d.status),
  alerts: num(d.alerts) ?? 0,
  attempt: num(d.attempt) ?? 1,
  outcome: str(d.outcome),
  http_status: num(d.http_status) || null,
  latency_ms: num(d.latency_ms),
  error: str(d.error),
});

export const readReceiver = (r: Raw): Receiver => ({
  name: str(r.name),
  url_origin: str(r.url_origin ?? r.url),
  has_secret: r.has_secret === true,
  allow_private_network: r.allow_private_network === true,
  timeout: str(r.timeout),
  group_by: strs(r.group_by),
  group_wait: str(r.group_wait),
  group_interval: str(r.group_interval),
  repeat_interval: str(r.repeat_interval),
  send_resolved: r.send_resolved !== false,
  origin: str(r.origin) || 'api',
});

/** One part of the page's data: its value, or why it could not be read. */
export type Part<T> = { ok: true; value: T } | { ok: false; error: unknown };

export interface AlertsView {
  rules: Part<AlertRule[]>;
  alerts: Part<ActiveAlert[]>;
  history: Part<HistoryEntry[]>;
  deliveries: Part<Delivery[]>;
  receivers: Part<Receiver[]>;
}

async function part<T>(path: string, key: string, read: (r: Raw) => T, q: Query = {}): Promise<Part<T[]>> {
  try {
    return { ok: true, value: firstArray<Raw>(await get<unknown>(path, q), [key]).map(read) };
  } catch (error) {
    return { ok: false, error };
  }
}

/**
 * Everything the page shows, in one round of parallel requests; `range` applies to history and deliveries. Each
 * part stands alone: one endpoint failing (an older server, a cap) leaves the others on screen.
 */
export async function loadAlerts(range: Query): Promise<AlertsView> {
  const [rules, alerts, history, deliveries, receivers] = await Promise.all([
    part('/api/v1/alerts/rules', 'rules', readRule),
    part('/api/v1/alerts', 'alerts', readAlert),
    part('/api/v1/alerts/history', 'history', readHistory, { ...range, limit: 500 }),
    part('/api/v1/alerts/deliveries', 'deliveries', readDelivery, { ...range, limit: 500 }),
    part('/api/v1/alerts/receivers', 'receivers', readReceiver),
  ]);
  return { rules, alerts, history, deliveries, receivers };
}

/** Create a rule (admin scope): the provisioning file's format as JSON. */
export const createRule = (rule: Raw): Promise<unknown> => post('/api/v1/alerts/rules', rule);
/** Delete a rule made through the API (admin scope). */
export const deleteRule = (name: string): Promise<void> =>
  del(`/api/v1/alerts/rules/${encodeURIComponent(name)}`);

/**
 * A metric's value as people read it: rates in %, latencies in ms/s, silence in seconds, rps with decimals,
 * counts (`requests`, `flag:UH`, `class:5xx`) whole.
 */
export function fmtMetric(metric: string, v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (metric === 'error_rate' || metric.endsWith('_rate')) return fmtPct(v);
  if (metric.endsWith('_ms')) return fmtMs(v);
  if (metric.endsWith('_seconds')) return `${fmtNum(v, 1)} s`;
  if (metric === 'rps') return `${fmtNum(v, 2)} /s`;
  return fmtCount(v);
}

/** `error_rate > 5 %` */
export const fmtCondition = (r: Pick<AlertRule, 'metric' | 'op' | 'threshold'>): string =>
  `${r.metric} ${r.op} ${fmtMetric(r.metric, r.threshold)}`;

/** `{authority="shop.example.com"}`-style, the labels of a series without the rule's name. */
export function fmtLabels(labels: Record<string, string>, skip: readonly string[] = ['alertname']): string {
  const parts = Object.entries(labels)
    .filter(([k]) => !skip.includes(k))
    .map(([k, v]) => `${k}=${v}`);
  return parts.length ? parts.join(', ') : '–';
}

/**
 * The page behind an alert: the API's link (kept to this origin: only its `#/…` part is used), else the route
 * page (or the overview) for the alert's span.
 */
export function alertHref(
  a: Pick<ActiveAlert, 'link' | 'labels' | 'active_at' | 'evaluated_at'>,
  now: number,
): string {
  const hash = a.link.indexOf('#/');
  if (hash >= 0) return a.link.slice(hash);
  const from = Date.parse(a.active_at ?? a.evaluated_at ?? '') || now - 3_600_000;
  const q = new URLSearchParams();
  if (a.labels.route !== undefined) q.set('name', a.labels.route);
  for (const k of ['authority', 'upstream_cluster', 'gateway'])
    if (a.labels[k] !== undefined) q.set(k, a.labels[k]);
  q.set('from', String(Math.floor(from - 5 * 60_000)));
  q.set('to', String(Math.ceil(now)));
  return `#/${a.labels.route !== undefined ? 'route' : 'overview'}?${q.toString()}`;
}
