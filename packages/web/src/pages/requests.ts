import { get, type Query } from '../api.js';
import { errorBox, filterBar, markFirstData, tableWrap } from '../common.js';
import { h } from '../dom.js';
import { requestHead, requestRows, type Row } from '../request-rows.js';
import type { Route } from '../router.js';
import { describeSel } from '../time.js';
import type { PageCtx } from '../view.js';

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

/** Requests explorer over /api/v1/requests: filters and range from the URL, newest first, cursor pagination. */
export function requests(root: HTMLElement, route: Route, ctx: PageCtx): () => void {
  const params: Query = { ...ctx.api };
  for (const k of FILTERS) {
    const v = route.params.get(k);
    if (v) params[k] = v;
  }
  const span = describeSel(ctx.sel, ctx.utc);
  const body = h('tbody', { id: 'request-rows' });
  const more = h('button', { type: 'button', hidden: true, class: 'ghost' }, 'Load more');
  const info = h('span', { class: 'muted' }, span);
  const errors = h('div');
  root.append(
    h('div', { class: 'title' }, h('h1', null, 'Requests'), info),
    filterBar(route.params, FILTERS, [], ctx.api),
    errors,
    tableWrap(h('table', { class: 'data requests' }, requestHead(), body)),
    more,
  );
  let alive = true;
  let shown = 0;
  const time = (ms: number) => ctx.time(ms, { millis: true });
  const load = async (cursor?: string) => {
    try {
      const res = await get<{ rows: Row[]; next_cursor: string | null }>('/api/v1/requests', {
        ...params,
        cursor,
        limit: 100,
      });
      if (!alive) return;
      errors.replaceChildren();
      for (const r of res.rows) body.append(...requestRows(r, time));
      shown += res.rows.length;
      if (shown === 0)
        body.append(h('tr', null, h('td', { colspan: 9, class: 'muted' }, `No requests match in ${span}.`)));
      more.hidden = !res.next_cursor;
      more.onclick = () => void load(res.next_cursor ?? undefined);
      info.textContent = `${span} · ${shown} shown${res.next_cursor ? ', more below' : ''}`;
      markFirstData();
    } catch (e) {
      if (alive) errors.replaceChildren(errorBox(e));
    }
  };
  void load();
  // Re-read on the refresh interval while only the first page is shown (never under a reader's "Load more").
  ctx.onRefresh(() => {
    if (shown > 100) return;
    body.replaceChildren();
    shown = 0;
    void load();
  });
  return () => {
    alive = false;
  };
}
