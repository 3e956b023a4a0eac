import { firstArray, get, type Query } from '../api.js';
import { errorBox, filterBar, REQUEST_COLUMNS } from '../common.js';
import { h } from '../dom.js';
import { fmtCell, fmtMs, fmtTime } from '../format.js';
import type { Route } from '../router.js';
import { rangePicker } from './route-detail.js';

const FILTERS = [
  'route',
  'authority',
  'gateway',
  'upstream_cluster',
  'method',
  'status_class',
  'response_flag',
  'path_template',
  'response_code',
  'min_duration_ms',
  'request_id',
];
const PASS = [...FILTERS, 'from', 'to', 'range'];

/** Requests explorer over /api/v1/requests: filters from the URL, newest first, cursor pagination. */
export function requests(root: HTMLElement, route: Route): () => void {
  const params: Query = {};
  for (const k of PASS) {
    const v = route.params.get(k);
    if (v) params[k] = v;
  }
  const from = route.params.get('from');
  const to = route.params.get('to');
  const span =
    from && to
      ? `${new Date(Number(from) || from).toLocaleString()} → ${new Date(Number(to) || to).toLocaleTimeString()}`
      : `last ${route.params.get('range') ?? '15m'}`;
  const body = h('tbody', { id: 'request-rows' });
  const more = h('button', { type: 'button', hidden: true }, 'Load more');
  const info = h('span', { class: 'muted' }, span);
  root.append(
    h(
      'div',
      { class: 'title' },
      h('h1', null, 'Requests'),
      info,
      rangePicker(route.params.get('range') ?? (from ? '' : '15m')),
    ),
    filterBar(route.params, FILTERS),
    h(
      'table',
      { class: 'data' },
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          REQUEST_COLUMNS.map((c) => h('th', null, c.replace(/_/g, ' '))),
        ),
      ),
      body,
    ),
    more,
  );
  let alive = true;
  let shown = 0;
  const load = async (cursor?: string) => {
    try {
      const res = await get<Record<string, unknown>>('/api/v1/requests', { ...params, cursor, limit: 100 });
      if (!alive) return;
      const rows = firstArray<Record<string, unknown>>(res, ['requests', 'rows', 'data']);
      for (const r of rows) {
        const detail = h(
          'tr',
          { class: 'detail', hidden: true },
          h('td', { colspan: REQUEST_COLUMNS.length }, h('pre', null, JSON.stringify(r, null, 2))),
        );
        body.append(
          h(
            'tr',
            {
              class: `status-${String(r.status_class ?? '')}`,
              onclick: () => (detail.hidden = !detail.hidden),
            },
            REQUEST_COLUMNS.map((c) =>
              h(
                'td',
                null,
                c === 'start_time'
                  ? fmtTime(String(r[c]))
                  : c === 'duration_ms'
                    ? fmtMs(Number(r[c]))
                    : fmtCell(r[c]),
              ),
            ),
          ),
          detail,
        );
      }
      shown += rows.length;
      if (shown === 0)
        body.append(
          h('tr', null, h('td', { colspan: REQUEST_COLUMNS.length, class: 'muted' }, 'No requests match.')),
        );
      const next = (res.next_cursor ?? res.cursor) as string | undefined | null;
      more.hidden = !next;
      more.onclick = () => void load(next ?? undefined);
      info.textContent = `${span} · ${shown} shown`;
    } catch (e) {
      if (alive) root.append(errorBox(e));
    }
  };
  void load();
  return () => {
    alive = false;
  };
}
