import { ApiError, get, postStream } from '../api.js';
import { errorBox } from '../common.js';
import { clear, h } from '../dom.js';
import { fmtCell, fmtCount } from '../format.js';
import { onHello } from '../live.js';
import { update, type Route } from '../router.js';
import {
  addToHistory,
  caretLines,
  columnWidth,
  csvPieces,
  errorPosition,
  jsonPieces,
  JsonRowStream,
  visibleRange,
  withDefaultLimit,
  type HistoryEntry,
} from '../sql-logic.js';
import type { PageCtx } from '../view.js';

interface SqlTail {
  meta: { name: string; type: string }[];
  rows: number;
  truncated?: boolean;
  truncated_by?: 'rows' | 'bytes';
  message?: string;
  statistics?: { elapsed?: number };
}
interface SchemaTable {
  name: string;
  engine: string;
  comment: string;
  rows: number | null;
  columns: { name: string; type: string; comment: string }[];
}

/** Rows are this tall (CSS: table.grid td); measured after the first draw in case fonts differ. */
let rowHeight = 26;
const HISTORY_KEY = 'gatescope.sql.history';
export const DEFAULT_LIMIT = 1000;

export const defaultSql = (database: string): string => `SELECT route_name, count() AS requests,
       round(countIf(response_code >= 500) / count(), 4) AS error_rate,
       round(quantile(0.99)(duration_ms), 1) AS p99_ms
FROM ${database}.http_requests
WHERE start_time > now() - INTERVAL 15 MINUTE
GROUP BY route_name
ORDER BY requests DESC
LIMIT ${DEFAULT_LIMIT}`;

function readHistory(): HistoryEntry[] {
  try {
    const v = JSON.parse(localStorage.getItem(HISTORY_KEY) ?? '[]') as unknown;
    return Array.isArray(v) ? (v as HistoryEntry[]).filter((e) => typeof e?.sql === 'string') : [];
  } catch {
    return [];
  }
}

/**
 * SQL console over POST /api/v1/sql: the answer is read as it streams and shown in a virtualised grid (a million
 * rows stay scrollable, the tab responsive), a visible default LIMIT, errors pointed at in the text, a schema
 * browser, history (localStorage: query text and outcome only, never a token), CSV/JSON download of what was
 * received.
 */
export function sql(root: HTMLElement, route: Route, _ctx: PageCtx): () => void {
  let database = 'gatescope';
  const editor = h('textarea', { id: 'sql-query', rows: 9, spellcheck: false }) as HTMLTextAreaElement;
  editor.value = route.params.get('q') ?? defaultSql(database);
  const untouched = editor.value;
  onHello((hello) => {
    database = hello.database;
    if (!route.params.get('q') && editor.value === untouched) editor.value = defaultSql(hello.database);
  });
  const limitOn = h('input', { type: 'checkbox', id: 'sql-limit-on', checked: true }) as HTMLInputElement;
  const limitN = h('input', {
    type: 'number',
    id: 'sql-limit',
    value: String(DEFAULT_LIMIT),
    min: 1,
    size: 7,
  }) as HTMLInputElement;
  const status = h('div', { id: 'sql-stats', class: 'sql-status muted' }, 'Ctrl+Enter runs the query.');
  const notice = h('div', { id: 'sql-notice' });
  const grid = h('div', { id: 'sql-result', class: 'sql-grid' });
  const history = h('ul', { class: 'history', id: 'sql-history' });
  const schema = h(
    'div',
    { class: 'schema', id: 'sql-schema' },
    h('p', { class: 'muted' }, 'Loading tables…'),
  );
  const runButton = h('button', { id: 'sql-run', type: 'button', onclick: () => void run() }, 'Run');
  const stopButton = h(
    'button',
    { id: 'sql-stop', type: 'button', class: 'ghost', hidden: true, onclick: () => controller?.abort() },
    'Stop',
  );
  const csvButton = h(
    'button',
    { id: 'sql-csv', type: 'button', class: 'ghost', disabled: true, onclick: () => download('csv') },
    'CSV',
  );
  const jsonButton = h(
    'button',
    { id: 'sql-json', type: 'button', class: 'ghost', disabled: true, onclick: () => download('json') },
    'JSON',
  );

  root.append(
    h(
      'div',
      { class: 'title' },
      h('h1', null, 'SQL'),
      h(
        'span',
        { class: 'muted' },
        'one read-only SELECT over the gatescope database; results are capped by the server and say so',
      ),
    ),
    h(
      'div',
      { class: 'sql-layout' },
      h(
        'aside',
        { class: 'panel sql-side' },
        h('h3', null, 'Tables'),
        schema,
        h('h3', null, 'History'),
        history,
      ),
      h(
        'div',
        { class: 'sql-main' },
        editor,
        h(
          'div',
          { class: 'toolbar' },
          runButton,
          stopButton,
          h(
            'label',
            {
              class: 'inline',
              title: 'Appended to the text (you see it) when the query has no LIMIT of its own',
            },
            limitOn,
            ' add LIMIT ',
            limitN,
            ' when the query has none',
          ),
          h('span', { class: 'spacer' }),
          h('span', { class: 'muted' }, 'Download: '),
          csvButton,
          jsonButton,
        ),
        notice,
        status,
        grid,
      ),
    ),
  );

  // ---- history
  const showHistory = () => {
    clear(history);
    const list = readHistory();
    if (list.length === 0)
      history.append(h('li', { class: 'muted' }, 'Queries you run appear here (this browser only).'));
    for (const e of list.slice(0, 30))
      history.append(
        h(
          'li',
          { title: e.sql, onclick: () => ((editor.value = e.sql), editor.focus()) },
          h('code', null, e.sql.replace(/\s+/g, ' ').slice(0, 80)),
          h(
            'span',
            { class: 'muted' },
            e.error ? ' · error' : e.rows !== undefined ? ` · ${fmtCount(e.rows)} rows` : '',
          ),
        ),
      );
  };
  const remember = (e: HistoryEntry) => {
    localStorage.setItem(HISTORY_KEY, JSON.stringify(addToHistory(readHistory(), e)));
    showHistory();
  };
  showHistory();

  // ---- schema browser (GET /api/v1/schema: system tables are not readable through SQL)
  void get<{ database: string; tables: SchemaTable[] }>('/api/v1/schema')
    .then((s) => {
      clear(schema);
      for (const t of s.tables) {
        schema.append(
          h(
            'details',
            { class: 'table-entry', dataset: { table: t.name } },
            h(
              'summary',
              { title: t.comment || t.engine },
              h('span', { class: 'tname' }, t.name),
              h('span', { class: 'muted' }, t.rows === null ? '' : ` ${fmtCount(t.rows)}`),
            ),
            t.comment ? h('p', { class: 'muted small' }, t.comment) : null,
            h(
              'ul',
              null,
              t.columns.map((c) =>
                h(
                  'li',
                  { title: c.comment || c.type, onclick: () => insert(c.name) },
                  h('span', null, c.name),
                  h('span', { class: 'type' }, c.type),
                  c.comment ? h('div', { class: 'comment' }, c.comment) : null,
                ),
              ),
            ),
            h(
              'button',
              { type: 'button', class: 'ghost small', onclick: () => insert(`${s.database}.${t.name}`) },
              'insert name',
            ),
          ),
        );
      }
    })
    .catch((e) => schema.replaceChildren(errorBox(e)));
  const insert = (text: string) => {
    const { selectionStart: a, selectionEnd: b, value } = editor;
    editor.value = value.slice(0, a) + text + value.slice(b);
    editor.setSelectionRange(a + text.length, a + text.length);
    editor.focus();
  };

  // ---- the result grid: fixed row height, only the visible rows in the DOM
  let meta: { name: string; type: string }[] = [];
  let rows: Record<string, unknown>[] = [];
  let drawQueued = false;
  const scroller = h('div', { class: 'grid-scroll', id: 'sql-scroll' });
  const table = h('table', { class: 'data grid sticky-first' });
  scroller.append(table);
  scroller.addEventListener('scroll', () => queueDraw());
  const queueDraw = () => {
    if (drawQueued) return;
    drawQueued = true;
    requestAnimationFrame(() => {
      drawQueued = false;
      draw();
    });
  };
  const setColumns = () => {
    clear(table);
    const widths = meta.map((m) => columnWidth(m.type, m.name));
    table.style.width = `${widths.reduce((a, b) => a + b, 76)}px`;
    table.append(
      h(
        'colgroup',
        null,
        h('col', { style: 'width:76px' }),
        widths.map((w) => h('col', { style: `width:${w}px` })),
      ),
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          h('th', { class: 'rownum' }, '#'),
          meta.map((m) => h('th', { title: m.type }, m.name, h('span', { class: 'type' }, m.type))),
        ),
      ),
      h('tbody'),
    );
    scroller.scrollTop = 0;
  };
  const draw = () => {
    const body = table.tBodies[0];
    if (!body) return;
    const { start, end } = visibleRange(
      scroller.scrollTop,
      scroller.clientHeight || 480,
      rowHeight,
      rows.length,
    );
    const frag = document.createDocumentFragment();
    const pad = (n: number) => {
      const tr = h('tr', { class: 'pad' }, h('td', { colspan: meta.length + 1 }));
      (tr.firstChild as HTMLElement).style.height = `${n * rowHeight}px`;
      return tr;
    };
    if (start > 0) frag.append(pad(start));
    for (let i = start; i < end; i++) {
      const r = rows[i];
      const tr = h('tr', null, h('td', { class: 'rownum' }, String(i + 1)));
      for (const m of meta) {
        const text = fmtCell(r[m.name]);
        tr.append(h('td', { title: text.length > 30 ? text.slice(0, 2000) : undefined }, text));
      }
      frag.append(tr);
    }
    if (end < rows.length) frag.append(pad(rows.length - end));
    body.replaceChildren(frag);
    grid.dataset.rows = String(rows.length);
    const sample = body.querySelector('tr:not(.pad)') as HTMLElement | null;
    if (sample && sample.offsetHeight > 0 && Math.abs(sample.offsetHeight - rowHeight) >= 1) {
      rowHeight = sample.offsetHeight;
      queueDraw();
    }
  };

  // ---- running
  let controller: AbortController | undefined;
  const showError = (e: unknown, text: string) => {
    const err = e as ApiError;
    const box = errorBox(err);
    const pos = err?.message ? errorPosition(err.message, text) : undefined;
    if (pos) {
      const [line, caret] = caretLines(text, pos.line, pos.column);
      box.append(
        h(
          'pre',
          { class: 'caret', id: 'sql-caret' },
          `${String(pos.line).padStart(3)} | ${line}\n    | ${caret}`,
        ),
      );
      editor.focus();
      editor.setSelectionRange(pos.offset, Math.min(text.length, pos.offset + 1));
    }
    if (err instanceof ApiError && err.status === 429)
      box.append(
        h(
          'p',
          null,
          `The server runs a few statements at a time. Try again in ${err.retryAfterS ?? 'a few'} s.`,
        ),
      );
    notice.replaceChildren(box);
  };
  const run = async () => {
    controller?.abort();
    let text = editor.value;
    if (limitOn.checked) {
      const limited = withDefaultLimit(text, Math.max(1, Number(limitN.value) || DEFAULT_LIMIT));
      if (limited.added) {
        editor.value = text = limited.sql;
      }
    }
    update({ q: text });
    clear(notice);
    meta = [];
    rows = [];
    csvButton.disabled = jsonButton.disabled = true;
    grid.dataset.state = 'running';
    status.textContent = 'Running…';
    runButton.disabled = true;
    stopButton.hidden = false;
    const started = performance.now();
    const ctl = (controller = new AbortController());
    try {
      const res = await postStream('/api/v1/sql', { query: text }, ctl.signal);
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      const stream = new JsonRowStream();
      let shownColumns = false;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        // Parse in slices so a fat chunk never holds the main thread for long.
        for (let at = 0; at < value.length; at += 256 * 1024) {
          const got = stream.push(value.slice(at, at + 256 * 1024));
          for (const r of got) rows.push(r);
          if (!shownColumns && rows.length > 0) {
            meta = Object.keys(rows[0]).map((name) => ({ name, type: '' }));
            setColumns();
            grid.replaceChildren(scroller);
            shownColumns = true;
          }
          if (got.length) {
            status.textContent = `Receiving… ${fmtCount(rows.length)} rows`;
            queueDraw();
            await new Promise((r) => setTimeout(r, 0));
          }
        }
      }
      const tail = stream.end<SqlTail>();
      meta = tail.meta;
      setColumns();
      grid.replaceChildren(scroller);
      draw();
      const ms = performance.now() - started;
      status.textContent = `${fmtCount(rows.length)} rows · ${meta.length} columns · ${(tail.statistics?.elapsed ?? ms / 1000).toFixed(2)} s on the server, ${(ms / 1000).toFixed(2)} s in all`;
      if (rows.length === 0) grid.replaceChildren(h('p', { class: 'muted' }, 'The query returned no rows.'));
      if (tail.truncated)
        notice.replaceChildren(
          h(
            'div',
            { class: 'warning', id: 'sql-truncated' },
            h('strong', null, `Cut at ${fmtCount(rows.length)} rows `),
            `(server cap on ${tail.truncated_by ?? 'the result'}). `,
            tail.message ?? 'Add a LIMIT or aggregate.',
          ),
        );
      grid.dataset.state = 'done';
      csvButton.disabled = jsonButton.disabled = rows.length === 0;
      remember({ sql: text, at: Date.now(), rows: rows.length, ms: Math.round(ms) });
    } catch (e) {
      grid.dataset.state = 'error';
      if (ctl.signal.aborted) {
        status.textContent = `Stopped after ${fmtCount(rows.length)} rows (the server stops the statement).`;
      } else {
        status.textContent = '';
        showError(e, text);
        remember({ sql: text, at: Date.now(), error: (e as Error).message?.slice(0, 200) });
      }
    } finally {
      runButton.disabled = false;
      stopButton.hidden = true;
    }
  };

  const download = (kind: 'csv' | 'json') => {
    const columns = meta.map((m) => m.name);
    const parts = kind === 'csv' ? [...csvPieces(columns, rows)] : [...jsonPieces(rows)];
    const a = h('a', {
      href: URL.createObjectURL(new Blob(parts, { type: kind === 'csv' ? 'text/csv' : 'application/json' })),
      download: `gatescope.${kind}`,
    });
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 5000);
  };

  editor.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) void run();
  });
  if (route.params.get('q')) void run();
  return () => controller?.abort();
}
