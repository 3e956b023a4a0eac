import { post, postText } from '../api.js';
import { dataTable, errorBox } from '../common.js';
import { clear, h } from '../dom.js';
import { fmtCell } from '../format.js';
import { onHello } from '../live.js';
import { update, type Route } from '../router.js';

interface SqlResult {
  meta: { name: string; type: string }[];
  data: Record<string, unknown>[];
  rows: number;
  statistics?: { elapsed?: number; rows_read?: number; bytes_read?: number };
  /** Set when a result cap cut the answer; `message` says which and what to do. */
  truncated?: boolean;
  message?: string;
}

export const defaultSql = (database: string): string => `SELECT route_name, count() AS requests,
       round(countIf(response_code >= 500) / count(), 4) AS error_rate,
       round(quantile(0.99)(duration_ms), 1) AS p99_ms
FROM ${database}.http_requests
WHERE start_time > now() - INTERVAL 15 MINUTE
GROUP BY route_name
ORDER BY requests DESC`;

/** SQL console over POST /api/v1/sql (read-only, enforced by the API), with CSV download. */
export function sql(root: HTMLElement, route: Route): () => void {
  const editor = h('textarea', { id: 'sql-query', rows: 8, spellcheck: false }) as HTMLTextAreaElement;
  editor.value = route.params.get('q') ?? defaultSql('gatescope');
  const untouched = editor.value;
  onHello((hello) => {
    if (!route.params.get('q') && editor.value === untouched) editor.value = defaultSql(hello.database);
  });
  const out = h('div', { id: 'sql-result' });
  const run = async () => {
    update({ q: editor.value });
    clear(out);
    out.append(h('p', { class: 'muted' }, 'Running…'));
    try {
      const res = await post<SqlResult>('/api/v1/sql', { query: editor.value });
      clear(out);
      const s = res.statistics;
      out.append(
        h(
          'p',
          { class: 'muted', id: 'sql-stats' },
          `${res.rows} rows`,
          s?.elapsed !== undefined ? ` · ${(s.elapsed * 1000).toFixed(1)} ms` : '',
          s?.rows_read !== undefined ? ` · ${s.rows_read} rows read` : '',
          res.truncated ? ` · ${res.message ?? 'the result was cut'}` : '',
        ),
        dataTable(
          res.meta.map((m) => m.name),
          res.data,
          (c, r) => fmtCell(r[c]),
        ),
      );
    } catch (e) {
      clear(out);
      out.append(errorBox(e));
    }
  };
  const csv = async () => {
    try {
      const text = await postText('/api/v1/sql', { query: editor.value }, { format: 'csv' });
      const a = h('a', {
        href: URL.createObjectURL(new Blob([text], { type: 'text/csv' })),
        download: 'gatescope.csv',
      });
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 1000);
    } catch (e) {
      clear(out);
      out.append(errorBox(e));
    }
  };
  editor.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) void run();
  });
  root.append(
    h(
      'div',
      { class: 'title' },
      h('h1', null, 'SQL'),
      h(
        'span',
        { class: 'muted' },
        'read-only, over the gatescope database (tables http_requests, tcp_connections and the rollups) · Ctrl+Enter runs',
      ),
    ),
    editor,
    h(
      'div',
      { class: 'toolbar' },
      h('button', { id: 'sql-run', onclick: () => void run() }, 'Run'),
      h('button', { id: 'sql-csv', class: 'ghost', onclick: () => void csv() }, 'Download CSV'),
    ),
    out,
  );
  if (route.params.get('q')) void run();
  return () => {};
}
