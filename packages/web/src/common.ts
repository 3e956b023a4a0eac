import type { LiveFilters } from './live.js';
import { h } from './dom.js';
import { update } from './router.js';

export const LIVE_FILTERS = ['route', 'authority', 'gateway', 'upstream_cluster'] as const;

export function liveFilters(params: URLSearchParams): LiveFilters {
  const f: LiveFilters = {};
  for (const k of LIVE_FILTERS) {
    const v = params.get(k);
    if (v) f[k] = v;
  }
  return f;
}

/** A row of filter inputs bound to URL params (applied on Enter/change). */
export function filterBar(
  params: URLSearchParams,
  names: readonly string[],
  extra: HTMLElement[] = [],
): HTMLElement {
  return h(
    'form',
    {
      class: 'filters',
      onsubmit: (e: Event) => {
        e.preventDefault();
        const form = e.currentTarget as HTMLFormElement;
        const changes: Record<string, string> = {};
        for (const n of names) changes[n] = (form.elements.namedItem(n) as HTMLInputElement).value.trim();
        update(changes, false);
      },
    },
    names.map((n) =>
      h(
        'label',
        null,
        n.replace(/_/g, ' '),
        h('input', { name: n, value: params.get(n) ?? '', placeholder: 'any', size: 14 }),
      ),
    ),
    h('button', { type: 'submit' }, 'Apply'),
    ...extra,
  );
}

export function errorBox(err: unknown): HTMLElement {
  const e = err as { code?: string; message?: string };
  return h('div', { class: 'error' }, h('strong', null, e.code ?? 'Error'), ' ', e.message ?? String(err));
}

/** The data table used by tail, requests and SQL: header from `columns`, cells from row values. */
export function dataTable(
  columns: string[],
  rows: Record<string, unknown>[],
  cell: (col: string, row: Record<string, unknown>) => Node | string,
): HTMLTableElement {
  return h(
    'table',
    { class: 'data' },
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        columns.map((c) => h('th', null, c)),
      ),
    ),
    h(
      'tbody',
      null,
      rows.map((r) =>
        h(
          'tr',
          null,
          columns.map((c) => h('td', null, cell(c, r))),
        ),
      ),
    ),
  );
}

/** The request columns the explorer and the live tail show, in order. */
export const REQUEST_COLUMNS = [
  'start_time',
  'method',
  'authority',
  'path',
  'response_code',
  'response_flags',
  'duration_ms',
  'route_name',
  'upstream_cluster',
  'upstream_host',
  'bytes_sent',
  'downstream_remote_address',
  'request_id',
];
