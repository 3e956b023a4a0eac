import { ApiError } from '../api.js';
import { dataTable, errorBox, markFirstData, tableWrap } from '../common.js';
import { h } from '../dom.js';
import { fmtAge, fmtCount, fmtMs } from '../format.js';
import { type Route } from '../router.js';
import { describeSel } from '../time.js';
import type { PageCtx } from '../view.js';
import {
  alertHref,
  createRule,
  deleteRule,
  fmtCondition,
  fmtLabels,
  fmtMetric,
  loadAlerts,
  type ActiveAlert,
  type AlertRule,
  type AlertsView,
  type Part,
  type Delivery,
  type HistoryEntry,
  type Receiver,
} from './alerts-api.js';

/** Metrics a rule can watch (issue 8 and the ledger's), suggested in the new-rule form. */
const METRICS = [
  'error_rate',
  'p50_ms',
  'p90_ms',
  'p99_ms',
  'rps',
  'requests',
  'class:5xx',
  'class:4xx',
  'flag:UH',
  'flag:UF',
  'flag:NR',
  'ingest_silence_seconds',
  'ingest_drop_rate',
];

const badge = (state: string) => h('span', { class: `badge alert-${state}` }, state);
const ms = (iso: string | null) => (iso ? Date.parse(iso) : NaN);

/**
 * Alerts: what is firing now (value, how long, a link to the route for the alert's span), the rules (from the
 * provisioning file or the API; an admin token can add and delete API rules), what happened in the range (state
 * changes) and every webhook delivery attempt. Re-read on the page's refresh interval.
 */
export function alerts(root: HTMLElement, _route: Route, ctx: PageCtx): () => void {
  const info = h('span', { class: 'muted', id: 'alerts-info' });
  const cards = h('div', { class: 'cards', id: 'alert-cards' });
  const notice = h('div', { id: 'alerts-notice' });
  const section = (id: string, title: string, note?: string) => {
    const body = h('div', { class: 'section-body' }, h('p', { class: 'muted' }, 'Loading…'));
    return {
      body,
      el: h(
        'section',
        { class: 'panel', id },
        h('h3', null, title),
        note ? h('p', { class: 'muted note' }, note) : null,
        body,
      ),
    };
  };
  const active = section('alerts-active', 'Firing and pending');
  const rules = section('alerts-rules', 'Rules');
  const history = section('alerts-history', 'History: state changes in the range, newest first');
  const deliveries = section(
    'alerts-deliveries',
    'Webhook deliveries: every attempt in the range, newest first',
  );
  const receivers = section('alerts-receivers', 'Receivers');
  const ruleNotice = h('div', { id: 'rule-notice' });
  root.append(
    h('div', { class: 'title' }, h('h1', null, 'Alerts'), info),
    notice,
    cards,
    active.el,
    rules.el,
    history.el,
    deliveries.el,
    receivers.el,
  );
  rules.el.append(
    ruleNotice,
    newRuleForm(() => void load(), ruleNotice),
  );

  let alive = true;
  let rulesNow: AlertRule[] = [];
  const load = async () => {
    const v = await loadAlerts(ctx.api);
    if (!alive) return;
    const parts = [v.rules, v.alerts, v.history, v.deliveries, v.receivers];
    const failed = parts.filter((p) => !p.ok);
    if (failed.length === parts.length) {
      // One reason for all (a 403 for a restricted token, a server without alerting): said once.
      notice.replaceChildren(errorBox((failed[0] as { error: unknown }).error));
      for (const s of [active, rules, history, deliveries, receivers]) s.body.replaceChildren();
      cards.replaceChildren();
      return;
    }
    notice.replaceChildren();
    draw(v);
  };
  const list = <T>(p: Part<T[]>): T[] => (p.ok ? p.value : []);
  /** A section's table, or the error its endpoint answered. */
  const fill = <T>(el: HTMLElement, p: Part<T[]>, table: (list: T[]) => HTMLElement) =>
    el.replaceChildren(p.ok ? table(p.value) : errorBox(p.error));
  const draw = (v: AlertsView) => {
    const now = Date.now();
    rulesNow = list(v.rules);
    const metricOf = new Map(rulesNow.map((r) => [r.name, r.metric]));
    const alertList = list(v.alerts);
    const deliveryList = list(v.deliveries);
    const firing = alertList.filter((a) => a.state === 'firing');
    const pending = alertList.filter((a) => a.state === 'pending');
    const failed = deliveryList.filter((d) => d.outcome && !/^(delivered|ok|success)/i.test(d.outcome));
    const card = (id: string, label: string, value: string, cls = '') =>
      h(
        'div',
        { class: `card ${cls}`, id },
        h('div', { class: 'label' }, label),
        h('div', { class: 'value' }, value),
      );
    const count = (p: Part<unknown[]>, n: number) => (p.ok ? fmtCount(n) : '–');
    cards.replaceChildren(
      card('card-firing', 'Firing', count(v.alerts, firing.length), firing.length ? 'health-failing' : ''),
      card(
        'card-pending',
        'Pending',
        count(v.alerts, pending.length),
        pending.length ? 'health-degraded' : '',
      ),
      card(
        'card-rules',
        'Rules',
        v.rules.ok ? `${rulesNow.filter((r) => r.enabled).length} / ${rulesNow.length} on` : '–',
      ),
      card(
        'card-deliveries',
        `Deliveries (${describeSel(ctx.sel, ctx.utc)})`,
        count(v.deliveries, deliveryList.length),
      ),
      card(
        'card-failed',
        'Failed attempts',
        count(v.deliveries, failed.length),
        failed.length ? 'health-degraded' : '',
      ),
    );
    info.textContent = `history and deliveries: ${describeSel(ctx.sel, ctx.utc)} · updated ${ctx.time(now, { date: false })}`;
    fill(active.body, v.alerts, (l) => activeTable(l, metricOf, now));
    fill(rules.body, v.rules, rulesTable);
    fill(history.body, v.history, (l) => historyTable(l, metricOf));
    fill(deliveries.body, v.deliveries, deliveriesTable);
    fill(receivers.body, v.receivers, receiversTable);
    markFirstData();
  };

  const activeTable = (list: ActiveAlert[], metricOf: Map<string, string>, now: number): HTMLElement => {
    if (list.length === 0) return h('p', { class: 'muted', id: 'no-active' }, 'Nothing firing or pending.');
    const sorted = [...list].sort(
      (a, b) =>
        (a.state === b.state ? 0 : a.state === 'firing' ? -1 : 1) || ms(a.active_at) - ms(b.active_at),
    );
    const cols = ['state', 'rule', 'series', 'value', 'requests', 'since', 'summary', 'open'];
    const head: Record<string, string> = {
      state: 'State',
      rule: 'Rule',
      series: 'Series',
      value: 'Value',
      requests: 'Requests',
      since: 'Since',
      summary: 'Summary',
      open: '',
    };
    const table = dataTable(
      cols,
      sorted as unknown as Record<string, unknown>[],
      (col, row) => {
        const a = row as unknown as ActiveAlert;
        const start = ms(a.state === 'firing' ? (a.fired_at ?? a.active_at) : a.active_at);
        switch (col) {
          case 'state':
            return badge(a.state);
          case 'rule':
            return a.rule;
          case 'series':
            return h(
              'span',
              { title: fmtLabels(a.labels, []) },
              fmtLabels(a.labels, ['alertname', ...ruleLabels(a.rule)]),
            );
          case 'value':
            return h('strong', { class: 'alert-value' }, fmtMetric(metricOf.get(a.rule) ?? '', a.value));
          case 'requests':
            return fmtCount(a.requests);
          case 'since':
            return h(
              'span',
              { title: Number.isFinite(start) ? ctx.time(start, { zone: true }) : '' },
              Number.isFinite(start) ? `${fmtAge(now - start)} (${ctx.time(start, { date: false })})` : '–',
            );
          case 'summary':
            return h('span', { title: a.annotations.description ?? '' }, a.annotations.summary ?? '');
          default:
            return h(
              'a',
              {
                href: alertHref(a, now),
                class: 'alert-link',
                title: 'The traffic behind this alert, for its span',
              },
              a.labels.route !== undefined ? 'Route →' : 'Traffic →',
            );
        }
      },
      (c) => head[c] ?? c,
    );
    sorted.forEach((a, i) => {
      const tr = table.tBodies[0].rows[i];
      tr.dataset.rule = a.rule;
      tr.dataset.state = a.state;
      tr.dataset.value = a.value === null ? '' : String(a.value);
      tr.className = a.state === 'firing' ? 'health-failing' : 'health-degraded';
    });
    return tableWrap(table, 'active-table');
  };

  /** Labels every series of the rule shares (severity…) are said once, in the rules table. */
  const ruleLabels = (rule: string): string[] => {
    const r = rulesNow.find((x) => x.name === rule);
    return r ? Object.keys(r.labels) : [];
  };

  const rulesTable = (list: AlertRule[]): HTMLElement => {
    if (list.length === 0)
      return h(
        'p',
        { class: 'muted', id: 'no-rules' },
        'No rules yet. Provision them from a YAML file (GATESCOPE_ALERTS_FILE, see the README) or add one below.',
      );
    const cols = ['name', 'condition', 'scope', 'window', 'labels', 'receivers', 'origin', 'actions'];
    const head: Record<string, string> = {
      name: 'Rule',
      condition: 'Condition',
      scope: 'Scope',
      window: 'Window / for / min requests',
      labels: 'Labels',
      receivers: 'Receivers',
      origin: 'Origin',
      actions: '',
    };
    const table = dataTable(
      cols,
      list as unknown as Record<string, unknown>[],
      (col, row) => {
        const r = row as unknown as AlertRule;
        switch (col) {
          case 'name':
            return h('span', { title: r.annotations.summary ?? '' }, r.name, r.enabled ? '' : ' (off)');
          case 'condition':
            return h('code', null, fmtCondition(r));
          case 'scope': {
            const f = Object.entries(r.filter).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('|') : v}`);
            return [
              f.length ? f.join(', ') : 'all traffic',
              r.group_by.length ? ` · per ${r.group_by.join(', ')}` : '',
            ].join('');
          }
          case 'window':
            return `${r.window} / ${r.for} / ${fmtCount(r.min_requests)}`;
          case 'labels':
            return fmtLabels(r.labels, []);
          case 'receivers':
            return r.receivers.join(', ') || '–';
          case 'origin':
            return h(
              'span',
              {
                class: `badge origin-${r.origin}`,
                title:
                  r.origin === 'file'
                    ? 'From GATESCOPE_ALERTS_FILE: change it in the file (it wins at every start)'
                    : 'Made through the API',
              },
              r.origin,
            );
          default:
            return r.origin === 'file'
              ? ''
              : h(
                  'button',
                  {
                    type: 'button',
                    class: 'ghost delete-rule',
                    title: `Delete rule ${r.name} (admin scope)`,
                    onclick: async () => {
                      if (!confirm(`Delete rule "${r.name}"?`)) return;
                      try {
                        await deleteRule(r.name);
                        ruleNotice.replaceChildren(h('p', { class: 'ok-note' }, `Rule "${r.name}" deleted.`));
                        void load();
                      } catch (e) {
                        ruleNotice.replaceChildren(errorBox(e));
                      }
                    },
                  },
                  'Delete',
                );
        }
      },
      (c) => head[c] ?? c,
    );
    list.forEach((r, i) => (table.tBodies[0].rows[i].dataset.rule = r.name));
    return tableWrap(table, 'rules-table');
  };

  const historyTable = (list: HistoryEntry[], metricOf: Map<string, string>): HTMLElement => {
    if (list.length === 0)
      return h(
        'p',
        { class: 'muted', id: 'no-history' },
        `No state changes in ${describeSel(ctx.sel, ctx.utc)}.`,
      );
    const cols = ['at', 'rule', 'series', 'change', 'value', 'requests'];
    const head: Record<string, string> = {
      at: 'Time',
      rule: 'Rule',
      series: 'Series',
      change: 'Change',
      value: 'Value',
      requests: 'Requests',
    };
    const table = dataTable(
      cols,
      list as unknown as Record<string, unknown>[],
      (col, row) => {
        const e = row as unknown as HistoryEntry;
        switch (col) {
          case 'at':
            return ctx.time(Date.parse(e.at));
          case 'rule':
            return e.rule;
          case 'series':
            return fmtLabels(e.labels, ['alertname', ...ruleLabels(e.rule)]);
          case 'change':
            return h('span', null, e.from ? badge(e.from) : '', e.from ? ' → ' : '', badge(e.to));
          case 'value':
            return fmtMetric(metricOf.get(e.rule) ?? '', e.value);
          default:
            return fmtCount(e.requests);
        }
      },
      (c) => head[c] ?? c,
    );
    list.forEach((e, i) => {
      const tr = table.tBodies[0].rows[i];
      tr.dataset.rule = e.rule;
      tr.dataset.to = e.to;
    });
    return tableWrap(table, 'history-table');
  };

  const deliveriesTable = (list: Delivery[]): HTMLElement => {
    if (list.length === 0)
      return h(
        'p',
        { class: 'muted', id: 'no-deliveries' },
        `No webhook sent in ${describeSel(ctx.sel, ctx.utc)}.`,
      );
    const cols = ['at', 'receiver', 'status', 'alerts', 'attempt', 'outcome', 'http', 'latency', 'error'];
    const head: Record<string, string> = {
      at: 'Time',
      receiver: 'Receiver',
      status: 'Notification',
      alerts: 'Alerts',
      attempt: 'Attempt',
      outcome: 'Outcome',
      http: 'HTTP status',
      latency: 'Latency',
      error: 'Error',
    };
    const table = dataTable(
      cols,
      list as unknown as Record<string, unknown>[],
      (col, row) => {
        const d = row as unknown as Delivery;
        switch (col) {
          case 'at':
            return ctx.time(Date.parse(d.at));
          case 'receiver':
            return d.receiver;
          case 'status':
            return badge(d.status);
          case 'alerts':
            return fmtCount(d.alerts);
          case 'attempt':
            return fmtCount(d.attempt);
          case 'outcome':
            return h('span', { class: `outcome outcome-${d.outcome}` }, d.outcome);
          case 'http':
            return d.http_status === null ? '–' : String(d.http_status);
          case 'latency':
            return fmtMs(d.latency_ms);
          default:
            return h('span', { title: d.error }, d.error);
        }
      },
      (c) => head[c] ?? c,
    );
    list.forEach((d, i) => {
      const tr = table.tBodies[0].rows[i];
      tr.dataset.receiver = d.receiver;
      tr.dataset.status = d.status;
      tr.dataset.outcome = d.outcome;
    });
    return tableWrap(table, 'deliveries-table');
  };

  const receiversTable = (list: Receiver[]): HTMLElement => {
    if (list.length === 0)
      return h('p', { class: 'muted' }, 'No receivers: rules fire without notifying anyone.');
    const cols = ['name', 'url', 'signed', 'grouping', 'resolved', 'origin'];
    const head: Record<string, string> = {
      name: 'Receiver',
      url: 'Sends to',
      signed: 'Signed',
      grouping: 'Group by / wait / interval / repeat',
      resolved: 'Resolved notices',
      origin: 'Origin',
    };
    return tableWrap(
      dataTable(
        cols,
        list as unknown as Record<string, unknown>[],
        (col, row) => {
          const r = row as unknown as Receiver;
          switch (col) {
            case 'name':
              return r.name;
            case 'url':
              return h('span', { title: 'The path and secret are never shown' }, `${r.url_origin}/…`);
            case 'signed':
              return r.has_secret ? 'yes (Standard Webhooks)' : 'no';
            case 'grouping':
              return `${r.group_by.join(', ') || '–'} / ${r.group_wait} / ${r.group_interval} / ${r.repeat_interval}`;
            case 'resolved':
              return r.send_resolved ? 'yes' : 'no';
            default:
              return h('span', { class: `badge origin-${r.origin}` }, r.origin);
          }
        },
        (c) => head[c] ?? c,
      ),
      'receivers-table',
    );
  };

  void load();
  ctx.onRefresh(() => void load());
  return () => {
    alive = false;
  };
}

/** "New rule": the provisioning file's fields, posted as JSON (admin scope; a read token gets a clear 403). */
function newRuleForm(onSaved: () => void, notice: HTMLElement): HTMLElement {
  const input = (name: string, placeholder: string, size = 12, value = '') =>
    h('input', { name, placeholder, size, value, autocomplete: 'off' });
  const metrics = h(
    'datalist',
    { id: 'rule-metrics' },
    METRICS.map((m) => h('option', { value: m })),
  );
  const metric = h('input', { name: 'metric', list: 'rule-metrics', value: 'error_rate', size: 14 });
  const op = h(
    'select',
    { name: 'op' },
    ['>', '>=', '<', '<='].map((o) => h('option', { value: o }, o)),
  );
  const fields = {
    name: input('name', 'route-5xx', 14),
    filter: input('filter', 'route=frontend', 18),
    group_by: input('group_by', 'route', 10),
    threshold: input('threshold', '0.05 = 5 %', 9),
    window: input('window', '5m', 5, '5m'),
    for: input('for', '1m', 5, '1m'),
    min_requests: input('min_requests', '20', 5, '20'),
    severity: input('severity', 'page', 7),
    receivers: input('receivers', 'oncall', 10),
  };
  const list = (s: string) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
  const form = h(
    'form',
    {
      class: 'filters rule-form',
      id: 'rule-form',
      onsubmit: async (e: Event) => {
        e.preventDefault();
        const filter: Record<string, string> = {};
        for (const pair of list(fields.filter.value)) {
          const [k, ...v] = pair.split('=');
          if (k && v.length) filter[k.trim()] = v.join('=').trim();
        }
        const threshold = Number(fields.threshold.value);
        const body: Record<string, unknown> = {
          name: fields.name.value.trim(),
          metric: metric.value.trim(),
          op: op.value,
          threshold:
            fields.threshold.value.trim() === '' || !Number.isFinite(threshold)
              ? fields.threshold.value
              : threshold,
          window: fields.window.value.trim() || undefined,
          for: fields.for.value.trim() || undefined,
          min_requests:
            fields.min_requests.value.trim() === '' ? undefined : Number(fields.min_requests.value),
          filter,
          group_by: list(fields.group_by.value),
          receivers: list(fields.receivers.value),
          labels: fields.severity.value.trim() ? { severity: fields.severity.value.trim() } : {},
        };
        try {
          await createRule(body);
          notice.replaceChildren(h('p', { class: 'ok-note' }, `Rule "${String(body.name)}" created.`));
          fields.name.value = '';
          onSaved();
        } catch (err) {
          notice.replaceChildren(errorBox(err));
          if (err instanceof ApiError && err.status === 403)
            notice.append(
              h('p', { class: 'muted' }, 'Reading alerts needs the read scope; changing rules needs admin.'),
            );
        }
      },
    },
    h('strong', { class: 'form-title' }, 'New rule'),
    h('label', null, 'Name', fields.name),
    h('label', null, 'Metric', metric, metrics),
    h('label', null, 'Scope', fields.filter),
    h('label', null, 'Per', fields.group_by),
    h('label', null, 'When', op),
    h('label', null, 'Threshold', fields.threshold),
    h('label', null, 'Window', fields.window),
    h('label', null, 'For', fields.for),
    h('label', null, 'Min requests', fields.min_requests),
    h('label', null, 'Severity', fields.severity),
    h('label', null, 'Receivers', fields.receivers),
    h('button', { type: 'submit', id: 'rule-create' }, 'Create'),
  );
  return h('details', { class: 'rule-new', id: 'rule-new' }, h('summary', null, 'Add a rule (admin)'), form);
}
