import { errorBox, filterBar, LIVE_FILTERS, liveFilters, markFirstData, tableWrap } from '../common.js';
import { h } from '../dom.js';
import { fmtMs, fmtNum, fmtPct } from '../format.js';
import { live, subscribeStats, type LiveAck } from '../live.js';
import { requestHead, requestRows, type Row } from '../request-rows.js';
import type { Route } from '../router.js';
import type { PageCtx } from '../view.js';
import { sampleEvenly } from './tail-sample.js';

/** Rows kept on screen. */
const MAX_ROWS = 300;
/** Rows shown per second at most, whatever the traffic: a person can read about this many. */
export const SHOW_CHOICES = [5, 10, 20, 50] as const;

/**
 * Live tail: requests as they are stored, newest on top. At high rates it shows a sample of each second and says
 * so, with the true totals of the stream (rate, 5xx, p99 from the live stats) above the table.
 */
export function tail(root: HTMLElement, route: Route, ctx: PageCtx): () => void {
  const filters = liveFilters(route.params);
  const s = live();
  const perSecond = Number(route.params.get('show')) || 20;
  const status = h('span', { class: 'muted', id: 'tail-status' }, 'waiting for requests…');
  const rate = h('div', { class: 'tail-rate', id: 'tail-rate' }, 'Reading the stream…');
  const body = h('tbody', { id: 'tail-rows' });
  const show = h(
    'label',
    { class: 'inline' },
    'Show at most ',
    h(
      'select',
      {
        id: 'tail-show',
        onchange: (e: Event) => {
          const url = new URL(location.href);
          const q = new URLSearchParams(url.hash.split('?')[1] ?? '');
          q.set('show', (e.target as HTMLSelectElement).value);
          location.hash = `#/tail?${q}`;
        },
      },
      SHOW_CHOICES.map((n) => h('option', { value: String(n), selected: n === perSecond }, String(n))),
    ),
    ' per second',
  );
  root.append(
    h('div', { class: 'title' }, h('h1', null, 'Live tail'), status),
    filterBar(route.params, LIVE_FILTERS, [show], { range: '15m' }),
    rate,
    tableWrap(h('table', { class: 'data tail requests' }, requestHead(), body)),
  );
  let shown = 0;
  let seen = 0;
  const start = () =>
    s.emit('tail', filters, (reply: LiveAck) => {
      if (!reply.ok) status.replaceChildren(errorBox(reply.error));
    });
  const describe = () =>
    (status.textContent = `${ctx.paused() ? 'paused' : 'streaming'} · ${shown} shown of ${seen} received`);
  ctx.onPause((p) => {
    if (p) s.emit('tail:stop');
    else start();
    describe();
  });
  const time = (ms: number) => ctx.time(ms, { date: false, millis: true });
  const onTail = (batch: { rows: Row[]; skipped: number }) => {
    if (ctx.paused()) return;
    const total = batch.rows.length + batch.skipped;
    seen += total;
    const picked = sampleEvenly(batch.rows, perSecond);
    const frag = document.createDocumentFragment();
    if (picked.length < total) {
      frag.append(
        h(
          'tr',
          { class: 'sampled' },
          h(
            'td',
            { colspan: 9 },
            `${total} requests arrived in this second; showing ${picked.length} spread across it (a sample). Pause to read, or open Requests for every one.`,
          ),
        ),
      );
    }
    for (const r of [...picked].reverse()) frag.append(...requestRows(r, time));
    body.prepend(frag);
    shown += picked.length;
    while (body.rows.length > MAX_ROWS * 2) body.deleteRow(-1);
    describe();
    markFirstData();
  };
  s.on('tail', onTail);
  s.on('connect', start);
  if (s.connected && !ctx.paused()) start();
  // The stream's true totals (every request, not the sample): the live stats of the same filters.
  const unsubscribe = subscribeStats(filters, (st) => {
    if (ctx.paused()) return;
    const t = st.totals;
    rate.textContent = `All matching traffic, last ${st.window_s} s: ${fmtNum(t.rps, 1)} requests / s · 5xx ${fmtPct(t.error_rate)} · p50 ${fmtMs(t.p50_ms)} · p99 ${fmtMs(t.p99_ms)}. The table shows at most ${perSecond} a second.`;
  });
  return () => {
    s.off('tail', onTail);
    s.off('connect', start);
    s.emit('tail:stop');
    unsubscribe();
  };
}
