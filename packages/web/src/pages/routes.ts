import { sparkline } from '../charts.js';
import { errorBox, filterBar, liveFilters } from '../common.js';
import { clear, h } from '../dom.js';
import { fmtMs, fmtNum, fmtPct } from '../format.js';
import { subscribeStats, type LiveStats } from '../live.js';
import { href, update, type Route } from '../router.js';

type Row = LiveStats['routes'][number];
const COLUMNS: { key: keyof Row | 'spark'; label: string; fmt?: (r: Row) => string | Node }[] = [
  {
    key: 'route',
    label: 'Route',
    fmt: (r) => h('a', { href: href('route', { name: r.route }) }, r.route || '(no route)'),
  },
  { key: 'health', label: 'Health', fmt: (r) => h('span', { class: `badge health-${r.health}` }, r.health) },
  { key: 'rps', label: 'rps', fmt: (r) => fmtNum(r.rps, 2) },
  { key: 'error_rate', label: '5xx', fmt: (r) => fmtPct(r.error_rate) },
  { key: 'p50_ms', label: 'p50', fmt: (r) => fmtMs(r.p50_ms) },
  { key: 'p99_ms', label: 'p99', fmt: (r) => fmtMs(r.p99_ms) },
  { key: 'requests', label: 'Requests', fmt: (r) => fmtNum(r.requests) },
  { key: 'spark', label: 'Last minute' },
];
const HEALTH_ORDER = { failing: 3, degraded: 2, healthy: 1, idle: 0 } as const;

/** Routes: every route of the rolling window, sortable, updating live, coloured by health. */
export function routes(root: HTMLElement, route: Route): () => void {
  const filters = liveFilters(route.params);
  const sort = (route.params.get('sort') ?? 'rps') as keyof Row;
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
  root.append(
    h('div', { class: 'title' }, h('h1', null, 'Routes'), h('span', { class: 'muted', id: 'window' })),
    filterBar(route.params, ['authority', 'gateway', 'upstream_cluster']),
    h('table', { class: 'data routes', id: 'routes-table' }, h('thead', null, head), body),
  );
  const value = (r: Row) =>
    sort === 'health' ? HEALTH_ORDER[r.health] : (r[sort] as number | string | null);
  const unsubscribe = subscribeStats(
    filters,
    (s) => {
      (root.querySelector('#window') as HTMLElement).textContent =
        `rolling ${s.window_s} s window, updated ${new Date(s.ts).toLocaleTimeString()}`;
      const rows = [...s.routes].sort((a, b) => {
        const va = value(a) ?? -Infinity;
        const vb = value(b) ?? -Infinity;
        return (va < vb ? -1 : va > vb ? 1 : 0) * dir;
      });
      clear(body);
      if (rows.length === 0)
        body.append(
          h('tr', null, h('td', { colspan: COLUMNS.length, class: 'muted' }, 'No requests in the window.')),
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
    },
    (e) => body.replaceChildren(h('tr', null, h('td', { colspan: COLUMNS.length }, errorBox(e)))),
  );
  return unsubscribe;
}
