import { errorBox, filterBar, liveFilters, REQUEST_COLUMNS } from '../common.js';
import { h } from '../dom.js';
import { fmtCell, fmtMs, fmtTime } from '../format.js';
import { live, type LiveAck } from '../live.js';
import type { Route } from '../router.js';

const MAX_ROWS = 500;

/** Live tail: requests as they are stored, newest on top; pause keeps what is on screen. */
export function tail(root: HTMLElement, route: Route): () => void {
  const filters = liveFilters(route.params);
  const s = live();
  let paused = false;
  const status = h('span', { class: 'muted', id: 'tail-status' }, 'waiting for requests…');
  const pause = h('button', { type: 'button', id: 'tail-pause', onclick: () => toggle() }, 'Pause');
  const body = h('tbody', { id: 'tail-rows' });
  root.append(
    h('div', { class: 'title' }, h('h1', null, 'Live tail'), status),
    filterBar(route.params, ['route', 'authority', 'gateway', 'upstream_cluster'], [pause]),
    h(
      'table',
      { class: 'data tail' },
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
  );
  let count = 0;
  const start = () =>
    s.emit('tail', filters, (reply: LiveAck) => {
      if (!reply.ok) status.replaceChildren(errorBox(reply.error));
    });
  const toggle = () => {
    paused = !paused;
    pause.textContent = paused ? 'Resume' : 'Pause';
    if (paused) s.emit('tail:stop');
    else start();
    status.textContent = paused ? `paused · ${count} shown` : `streaming · ${count} shown`;
  };
  const onTail = (batch: { rows: Record<string, unknown>[]; skipped: number }) => {
    if (paused) return;
    const frag = document.createDocumentFragment();
    for (const r of [...batch.rows].reverse()) {
      const detail = h(
        'tr',
        { class: 'detail', hidden: true },
        h('td', { colspan: REQUEST_COLUMNS.length }, h('pre', null, JSON.stringify(r, null, 2))),
      );
      const row = h(
        'tr',
        { class: `status-${String(r.status_class ?? '')}`, onclick: () => (detail.hidden = !detail.hidden) },
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
      );
      frag.append(row, detail);
    }
    if (batch.skipped > 0)
      frag.prepend(
        h(
          'tr',
          { class: 'skipped' },
          h(
            'td',
            { colspan: REQUEST_COLUMNS.length },
            `… ${batch.skipped} skipped (more than this browser is sent per second)`,
          ),
        ),
      );
    body.prepend(frag);
    count += batch.rows.length;
    while (body.rows.length > MAX_ROWS * 2) body.deleteRow(-1);
    status.textContent = `streaming · ${count} shown`;
  };
  s.on('tail', onTail);
  s.on('connect', start);
  if (s.connected) start();
  return () => {
    s.off('tail', onTail);
    s.off('connect', start);
    s.emit('tail:stop');
  };
}
