import { get } from '../api.js';
import { sparkline } from '../charts.js';
import { errorBox, filterBar, liveFilters, markFirstData, tableWrap } from '../common.js';
import { clear, h } from '../dom.js';
import { fmtCount, fmtMs, fmtNum, fmtPct } from '../format.js';
import { subscribeStats } from '../live.js';
import { href, update, type Route } from '../router.js';
import type { PageCtx } from '../view.js';
import type { Timeseries } from './series.js';

/** One row of the table, from the live socket or from the API (stats + health + sparkline). */
export interface RouteRow {
  route: string;
  health: string;
  health_reason?: string;
  rps: number;
  error_rate: number;
  rate_4xx: number;
  p50_ms: number | null;
  p99_ms: number | null;
  requests: number;
  spark: number[];
}

/** `(no route)`: requests no route matched (Envoy NR). There is no page of its own: a name-less route page would show every route. */
export function routeCell(name: string, params: Record<string, string> = {}): HTMLElement {
  if (!name)
    return h(
      'span',
      {
        class: 'no-route',
        title:
          'Requests that matched no route (Envoy NR, answered 404 by the gateway): see Requests with response flag NR',
      },
      h('a', { href: href('requests', { response_flag: 'NR' }) }, '(no route)'),
    );
  return h('a', { href: href('route', { name, ...params }), title: name }, name);
}

const COLUMNS: {
  key: keyof RouteRow | 'spark';
  label: string;
  title?: string;
  fmt?: (r: RouteRow) => string | Node;
}[] = [
  { key: 'route', label: 'Route', fmt: (r) => routeCell(r.route) },
  {
    key: 'health',
    label: 'Health',
    fmt: (r) => h('span', { class: `badge health-${r.health}`, title: r.health_reason ?? '' }, r.health),
  },
  { key: 'rps', label: 'Requests / s', fmt: (r) => fmtNum(r.rps, 2) },
  { key: 'error_rate', label: '5xx', fmt: (r) => fmtPct(r.error_rate) },
  { key: 'rate_4xx', label: '4xx', fmt: (r) => fmtPct(r.rate_4xx) },
  { key: 'p50_ms', label: 'p50', fmt: (r) => fmtMs(r.p50_ms) },
  { key: 'p99_ms', label: 'p99', fmt: (r) => fmtMs(r.p99_ms) },
  { key: 'requests', label: 'Requests', fmt: (r) => fmtCount(r.requests) },
  { key: 'spark', label: 'Trend' },
];
const HEALTH_ORDER: Record<string, number> = { failing: 4, degraded: 3, unknown: 2, healthy: 1, idle: 0 };

/** Routes: every route of the live window or of a range, sortable, coloured by health. */
export function routes(root: HTMLElement, route: Route, ctx: PageCtx): () => void {
  const filters = liveFilters(route.params);
  const sort = (route.params.get('sort') ?? 'rps') as keyof RouteRow;
  const dir = route.params.get('dir') === 'asc' ? 1 : -1;
  const body = h('tbody');
  const head = h(
    'tr',
    null,
    COLUMNS.map((c) =>
      h(
        'th',
        {
          class: c.key === 'spark' ? '' : 'sortable',
          onclick: () =>
            c.key !== 'spark' &&
            update({ sort: c.key, dir: c.key === sort && dir === -1 ? 'asc' : 'desc' }, false),
        },
        c.label,
        c.key === sort ? (dir === -1 ? ' ▼' : ' ▲') : '',
      ),
    ),
  );
  const info = h('span', { class: 'muted', id: 'window' });
  root.append(
    h('div', { class: 'title' }, h('h1', null, 'Routes'), info),
    filterBar(route.params, ['authority', 'gateway', 'upstream_cluster'], [], ctx.api),
    tableWrap(h('table', { class: 'data routes', id: 'routes-table' }, h('thead', null, head), body)),
  );
  const value = (r: RouteRow) =>
    sort === 'health' ? HEALTH_ORDER[r.health] : (r[sort] as number | string | null);
  const show = (list: RouteRow[]) => {
    const rows = [...list].sort((a, b) => {
      const va = value(a) ?? -Infinity;
      const vb = value(b) ?? -Infinity;
      return (va < vb ? -1 : va > vb ? 1 : 0) * dir;
    });
    clear(body);
    if (rows.length === 0)
      body.append(
        h('tr', null, h('td', { colspan: COLUMNS.length, class: 'muted' }, 'No requests in this range.')),
      );
    for (const r of rows) {
      body.append(
        h(
          'tr',
          { class: `health-${r.health}`, dataset: { route: r.route, requests: String(r.requests) } },
          COLUMNS.map((c) =>
            h(
              'td',
              null,
              c.key === 'spark'
                ? sparkline(
                    r.spark,
                    r.health === 'failing' ? '#ef4444' : r.health === 'degraded' ? '#f59e0b' : '#3b82f6',
                  )
                : c.fmt!(r),
            ),
          ),
        ),
      );
    }
    markFirstData();
  };
  const fail = (e: unknown) =>
    body.replaceChildren(h('tr', null, h('td', { colspan: COLUMNS.length }, errorBox(e))));

  if (ctx.sel.kind === 'live') {
    return subscribeStats(
      filters,
      (s) => {
        if (ctx.paused()) return;
        info.textContent = `rolling ${s.window_s} s window, updated ${ctx.time(s.ts, { date: false })}`;
        show(
          s.routes.map((r) => ({
            ...r,
            rate_4xx: r.requests ? r.status_classes['4xx'] / r.requests : 0,
          })),
        );
      },
      fail,
    );
  }
  let alive = true;
  const load = async () => {
    const q = { ...ctx.api, ...filters };
    try {
      const [list, health, ts] = await Promise.all([
        get<{ routes: (RouteRow & { status_classes: Record<string, number> })[] }>('/api/v1/routes', {
          ...q,
          limit: 500,
        }),
        get<{ routes: { route: string; health: string; reason: string }[] }>('/api/v1/health', q),
        get<Timeseries>('/api/v1/timeseries', { ...q, metrics: 'rps', group_by: 'route', limit: 100 }),
      ]);
      if (!alive) return;
      const judged = new Map(health.routes.map((r) => [r.route, r]));
      const spark = new Map(ts.series.map((s) => [s.labels.route, s.points.map(([, v]) => v ?? 0)]));
      info.textContent = `${ctx.sel.kind === 'relative' ? `last ${ctx.sel.text}` : 'range'} · trend in ${ts.step_s} s buckets`;
      show(
        list.routes.map((r) => ({
          ...r,
          rate_4xx: r.requests ? (r.status_classes?.['4xx'] ?? 0) / r.requests : 0,
          health: judged.get(r.route)?.health ?? 'unknown',
          health_reason: judged.get(r.route)?.reason,
          spark: spark.get(r.route) ?? [],
        })),
      );
    } catch (e) {
      if (alive) fail(e);
    }
  };
  void load();
  ctx.onRefresh(() => void load());
  return () => {
    alive = false;
  };
}
