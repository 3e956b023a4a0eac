import { labelSetString } from './fingerprint.js';
import type { MetricSourceName } from './metrics.js';

/**
 * Notifications, the way Alertmanager batches them, so a rule that fires for 30 routes sends one webhook:
 * - Alerts going to a receiver are grouped by the receiver's `group_by` labels (default `alertname`: one group
 *   per rule). A group is one conversation with the receiver: every webhook carries all its firing alerts.
 * - A new group waits `group_wait` before its first webhook, so alerts firing together arrive together.
 * - After that, a changed group (an alert fired or resolved) is sent again at most every `group_interval`;
 *   an unchanged group that still fires is sent again every `repeat_interval`.
 * - Alerts that resolve are sent once more as `resolved` (with `send_resolved`), then leave the group.
 * Timers advance with the evaluation cycle: a group is looked at once per evaluation.
 */
export interface AlertInstance {
  fingerprint: string;
  rule: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  status: 'firing' | 'resolved';
  startsAt: number;
  endsAt?: number;
  generatorURL: string;
  value: number | null;
}

export interface GroupState {
  key: string;
  receiver: string;
  labels: Record<string, string>;
  /** When the group got its first firing alert (the group_wait clock), ms. */
  createdAt: number;
  lastSentAt?: number;
  /** Fingerprints sent as firing in the group's last webhook. */
  sentFiring: string[];
}

export interface GroupTiming {
  groupWaitMs: number;
  groupIntervalMs: number;
  repeatIntervalMs: number;
  sendResolved: boolean;
}

export function groupLabelsOf(
  labels: Record<string, string>,
  groupBy: readonly string[],
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of groupBy) if (labels[name] !== undefined) out[name] = labels[name];
  return out;
}

/** Alertmanager's form: the route's key, then the group labels (`{}/{receiver="oncall"}:{alertname="x"}`). */
export function groupKey(receiver: string, groupLabels: Record<string, string>): string {
  return `{}/${labelSetString({ receiver })}:${labelSetString(groupLabels)}`;
}

export interface Due {
  /**
   * Alerts to put in the webhook: the group's firing ones and the resolved ones it had announced. Empty: no
   * webhook, only the group's state changes (it ended without anything to announce).
   */
  alerts: AlertInstance[];
  /** The group after the webhook is handed to delivery; undefined: the group is done (nothing fires). */
  after?: GroupState;
}

/**
 * Whether `group` sends a webhook now. `alerts` are the group's alerts at this evaluation: firing ones and
 * resolved ones (only those it announced firing are sent). Returns undefined when nothing changes, else the
 * webhook's alerts and the group's state after it.
 */
export function dueNotification(
  group: GroupState,
  alerts: readonly AlertInstance[],
  t: GroupTiming,
  now: number,
): Due | undefined {
  const firing = alerts
    .filter((a) => a.status === 'firing')
    .sort((a, b) => a.fingerprint.localeCompare(b.fingerprint));
  const announced = new Set(group.sentFiring);
  const resolved = alerts.filter((a) => a.status === 'resolved' && announced.has(a.fingerprint));
  const firingNow = firing.map((a) => a.fingerprint);
  const after = (): GroupState | undefined =>
    firingNow.length ? { ...group, lastSentAt: now, sentFiring: firingNow } : undefined;
  if (group.lastSentAt === undefined) {
    if (firing.length === 0) return { alerts: [], after: undefined };
    if (now < group.createdAt + t.groupWaitMs) return undefined;
    return { alerts: firing, after: after() };
  }
  const changed = firingNow.length !== announced.size || firingNow.some((f) => !announced.has(f));
  if (changed) {
    if (now < group.lastSentAt + t.groupIntervalMs) return undefined;
    if (firing.length === 0 && !t.sendResolved) return { alerts: [], after: undefined };
    return { alerts: [...firing, ...(t.sendResolved ? resolved : [])], after: after() };
  }
  if (firing.length > 0 && now >= group.lastSentAt + t.repeatIntervalMs)
    return { alerts: firing, after: after() };
  return undefined;
}

/** Alertmanager's webhook body, version 4. */
export interface WebhookPayload {
  version: '4';
  groupKey: string;
  truncatedAlerts: number;
  status: 'firing' | 'resolved';
  receiver: string;
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
  externalURL: string;
  alerts: {
    status: 'firing' | 'resolved';
    labels: Record<string, string>;
    annotations: Record<string, string>;
    startsAt: string;
    endsAt: string;
    generatorURL: string;
    fingerprint: string;
  }[];
}

/** Alertmanager's "not ended" time. */
export const ZERO_TIME = '0001-01-01T00:00:00Z';

function common(maps: Record<string, string>[]): Record<string, string> {
  if (maps.length === 0) return {};
  const out: Record<string, string> = { ...maps[0] };
  for (const m of maps.slice(1)) for (const k of Object.keys(out)) if (m[k] !== out[k]) delete out[k];
  return out;
}

export function buildPayload(o: {
  receiver: string;
  group: { key: string; labels: Record<string, string> };
  alerts: readonly AlertInstance[];
  externalURL: string;
  /** At most this many alerts go in the body; the rest are counted in truncatedAlerts. */
  maxAlerts?: number;
}): WebhookPayload {
  const max = o.maxAlerts ?? 0;
  const shown = max > 0 ? o.alerts.slice(0, max) : o.alerts;
  return {
    version: '4',
    groupKey: o.group.key,
    truncatedAlerts: o.alerts.length - shown.length,
    status: o.alerts.some((a) => a.status === 'firing') ? 'firing' : 'resolved',
    receiver: o.receiver,
    groupLabels: o.group.labels,
    commonLabels: common(o.alerts.map((a) => a.labels)),
    commonAnnotations: common(o.alerts.map((a) => a.annotations)),
    externalURL: o.externalURL,
    alerts: shown.map((a) => ({
      status: a.status,
      labels: a.labels,
      annotations: a.annotations,
      startsAt: new Date(a.startsAt).toISOString(),
      endsAt:
        a.status === 'resolved' && a.endsAt !== undefined ? new Date(a.endsAt).toISOString() : ZERO_TIME,
      generatorURL: a.generatorURL,
      fingerprint: a.fingerprint,
    })),
  };
}

/**
 * The UI page that shows what the alert measured, for the alert's time range (`from`/`to`, epoch ms, the UI's
 * absolute range): for a traffic metric the route's page when the alert is about one route, else the overview,
 * with the rule's filters; for an ingest metric (`ingest_silence_seconds`, `ingest_drop_rate`, `source: 'ingest'`)
 * the Ingest page, where the delivery ledger shows the node.
 */
export function alertLink(
  externalURL: string,
  o: {
    labels: Record<string, string>;
    filter: Record<string, string | string[]>;
    from: number;
    to: number;
    source?: MetricSourceName;
  },
): string {
  const base = externalURL.endsWith('/') ? externalURL : externalURL + '/';
  const params = new URLSearchParams();
  const range = () => {
    params.set('from', String(Math.floor(o.from)));
    params.set('to', String(Math.ceil(o.to)));
  };
  if (o.source === 'ingest') {
    range();
    return `${base}#/ingest?${params.toString()}`;
  }
  const routeFilter = o.filter.route;
  const route =
    o.labels.route ??
    (typeof routeFilter === 'string' ? routeFilter : routeFilter?.length === 1 ? routeFilter[0] : undefined);
  if (route !== undefined) params.set('name', route);
  for (const [k, v] of Object.entries(o.filter)) {
    if (k === 'route') continue;
    for (const x of Array.isArray(v) ? v : [v]) params.append(k, x);
  }
  for (const k of ['authority', 'upstream_cluster', 'method', 'status_class', 'gateway'])
    if (o.labels[k] !== undefined && !params.has(k)) params.set(k, o.labels[k]);
  range();
  return `${base}#/${route !== undefined ? 'route' : 'overview'}?${params.toString()}`;
}
