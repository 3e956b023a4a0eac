import { label, REQUEST_COLUMNS } from './common.js';
import { h } from './dom.js';
import { fmtBytes, fmtCell, fmtMs, shortCluster } from './format.js';
import { href } from './router.js';
import { parseServerTime } from './time.js';

/** How the explorer and the tail show one request: the same cells, the same expanded view. */
export type Row = Record<string, unknown>;

export function requestHead(): HTMLTableSectionElement {
  return h(
    'thead',
    null,
    h(
      'tr',
      null,
      REQUEST_COLUMNS.map((c) => h('th', { class: `c-${c}` }, label(c))),
    ),
  );
}

function cell(c: string, r: Row, time: (ms: number) => string): Node | string {
  const v = r[c];
  switch (c) {
    case 'start_time':
      return time(parseServerTime(String(v)));
    case 'duration_ms':
      return fmtMs(Number(v));
    case 'upstream_cluster':
      return v ? h('span', { title: String(v) }, shortCluster(String(v))) : '–';
    case 'route_name':
      return v
        ? h(
            'a',
            { href: href('route', { name: String(v) }), onclick: (e: Event) => e.stopPropagation() },
            String(v),
          )
        : h('span', { class: 'muted' }, '(no route)');
    case 'response_code':
      return v === 0 || v === '0' ? '—' : fmtCell(v);
    case 'response_flags':
      return fmtCell(v) || '–';
    case 'path':
      return h('span', { title: String(v ?? '') }, fmtCell(v));
    default:
      return fmtCell(v);
  }
}

/** Field order of the expanded row: the shown columns first, then every other stored column by name. */
function detailFields(r: Row): string[] {
  const rest = Object.keys(r).filter(
    (k) => !REQUEST_COLUMNS.includes(k) && !k.startsWith('cursor') && k !== 'start_time_us',
  );
  return [...REQUEST_COLUMNS, ...rest.sort()];
}

/** A request as a table row plus its hidden detail row (a field list, not a JSON dump); click toggles. */
export function requestRows(
  r: Row,
  time: (ms: number) => string,
): [HTMLTableRowElement, HTMLTableRowElement] {
  const detail = h(
    'tr',
    { class: 'detail', hidden: true },
    h(
      'td',
      { colspan: REQUEST_COLUMNS.length },
      h(
        'dl',
        { class: 'fields' },
        detailFields(r).flatMap((k) => [
          h('dt', { title: k }, label(k)),
          h(
            'dd',
            null,
            k === 'start_time'
              ? `${time(parseServerTime(String(r[k])))} (${fmtCell(r[k])} UTC)`
              : k.startsWith('bytes_')
                ? `${fmtBytes(Number(r[k]))} (${fmtCell(r[k])})`
                : fmtCell(r[k]) || '–',
          ),
        ]),
      ),
    ),
  );
  const row = h(
    'tr',
    {
      class: `req status-${String(r.status_class ?? '')}`,
      tabindex: 0,
      onclick: () => (detail.hidden = !detail.hidden),
      onkeydown: (e: KeyboardEvent) => e.key === 'Enter' && (detail.hidden = !detail.hidden),
    },
    REQUEST_COLUMNS.map((c) => h('td', { class: `c-${c}` }, cell(c, r, time))),
  );
  return [row, detail];
}
