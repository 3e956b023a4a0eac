import { get } from './api.js';
import { h } from './dom.js';
import { update } from './router.js';

export const LIVE_FILTERS = ['route', 'authority', 'gateway', 'upstream_cluster'] as const;

/** The live filters of a URL (route, authority, gateway, upstream cluster), for the socket and the API alike. */
export function liveFilters(params: URLSearchParams): Record<string, string> {
  const f: Record<string, string> = {};
  for (const k of LIVE_FILTERS) {
    const v = params.get(k);
    if (v) f[k] = v;
  }
  return f;
}

/** Filters that the API's values endpoint can suggest (GET /api/v1/values/{dimension}). */
const SUGGESTED = new Set([
  'route',
  'authority',
  'gateway',
  'upstream_cluster',
  'method',
  'response_flag',
  'path_template',
]);

/** Column and filter names as people say them: one header for one thing on every page. */
export const LABELS: Record<string, string> = {
  start_time: 'Time',
  method: 'Method',
  authority: 'Authority',
  path: 'Path',
  path_template: 'Path template',
  response_code: 'Status code',
  status_class: 'Status class',
  response_flags: 'Response flags',
  response_flag: 'Response flag',
  duration_ms: 'Duration',
  route_name: 'Route',
  route: 'Route',
  upstream_cluster: 'Upstream cluster',
  upstream_host: 'Upstream host',
  bytes_sent: 'Bytes sent',
  bytes_received: 'Bytes received',
  downstream_remote_address: 'Client address',
  request_id: 'Request id',
  gateway: 'Gateway',
  node_id: 'Gateway node',
  node_cluster: 'Gateway cluster',
  user_agent: 'User agent',
  requests: 'Requests',
  share: 'Share',
  min_duration_ms: 'Min duration (ms)',
};
export const label = (name: string): string => LABELS[name] ?? name.replace(/_/g, ' ');

/**
 * A row of filter inputs bound to URL params (applied on Enter/Apply), each suggesting the values seen in the
 * page's range (a datalist filled from the API on first focus).
 */
export function filterBar(
  params: URLSearchParams,
  names: readonly string[],
  extra: HTMLElement[] = [],
  api: Record<string, string> = { range: '1h' },
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
    names.map((n) => {
      const listId = `values-${n}`;
      const list = SUGGESTED.has(n) ? h('datalist', { id: listId }) : null;
      let loaded = false;
      const input = h('input', {
        name: n,
        value: params.get(n) ?? '',
        placeholder: 'any',
        size: 14,
        list: list ? listId : undefined,
        autocomplete: 'off',
        onfocus: () => {
          if (!list || loaded) return;
          loaded = true;
          void get<{ values: { value: string; requests: number }[] }>(`/api/v1/values/${n}`, {
            ...api,
            limit: 200,
          })
            .then((r) =>
              list.replaceChildren(
                ...r.values.map((v) => h('option', { value: v.value }, `${v.requests} req`)),
              ),
            )
            .catch(() => (loaded = false));
        },
      });
      return h('label', null, label(n), input, list);
    }),
    h('button', { type: 'submit' }, 'Apply'),
    ...extra,
  );
}

export function errorBox(err: unknown): HTMLElement {
  const e = err as { code?: string; message?: string };
  return h('div', { class: 'error' }, h('strong', null, e.code ?? 'Error'), ' ', e.message ?? String(err));
}

/** A table that scrolls sideways inside its own box (never the page), first column sticky. */
export function tableWrap(table: HTMLTableElement, id?: string): HTMLElement {
  table.classList.add('sticky-first');
  return h('div', { class: 'table-wrap', id }, table);
}

/** The data table used by requests, status and SQL: header from `columns`, cells from row values. */
export function dataTable(
  columns: string[],
  rows: Record<string, unknown>[],
  cell: (col: string, row: Record<string, unknown>) => Node | string,
  header: (col: string) => string = label,
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
        columns.map((c) => h('th', { title: c }, header(c))),
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

/** The request columns the explorer and the live tail show, in order (the rest is in the expanded row). */
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
];

/** The first data shown since the document loaded (`performance.getEntriesByName('first-data')`): tests print it. */
export function markFirstData(): void {
  if (performance.getEntriesByName('first-data').length === 0) performance.mark('first-data');
}
