import { sparklines } from '../charts.js';
import { dataTable, errorBox, markFirstData, tableWrap } from '../common.js';
import { h } from '../dom.js';
import { fmtAge, fmtCount, fmtPct } from '../format.js';
import { href, type Route } from '../router.js';
import { describeSel } from '../time.js';
import type { PageCtx } from '../view.js';
import {
  byReason,
  loadNodes,
  loadNodeSeries,
  minuteColumns,
  nodeKey,
  reasonText,
  sum,
  type IngestNode,
  type IngestView,
  type LedgerPoint,
} from './ingest-api.js';
import { shortGateway } from './map.js';

/** Sparklines are read per node: beyond this many nodes the rest show none (one request each). */
const MAX_SPARKLINES = 40;
const RECEIVED = '#3b82f6';
const STORED = '#22c55e';

const STATUS_TEXT: Record<string, string> = {
  live: 'a stream is open, or it sent within the stale-after time',
  stale: 'no open stream and nothing sent within the stale-after time',
  gone: 'stale for more than a day',
};

/**
 * Ingest: the delivery ledger per gateway node. Live / stale / gone at a glance, what each node sent and what
 * became of it (stored, dropped by reason, in flight, messages refused by reason), received vs stored per
 * minute, and a link to the node's traffic. Re-read on the page's refresh interval.
 */
export function ingest(root: HTMLElement, _route: Route, ctx: PageCtx): () => void {
  const info = h('span', { class: 'muted', id: 'ingest-info' });
  const cards = h('div', { class: 'cards', id: 'ingest-cards' });
  const notice = h('div', { id: 'ingest-notice' });
  const nodesBody = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  const reasonsBody = h('div', { class: 'grid2 reasons' });
  root.append(
    h('div', { class: 'title' }, h('h1', null, 'Ingest'), info),
    notice,
    cards,
    h(
      'section',
      { class: 'panel', id: 'ingest-nodes' },
      h('h3', null, 'Gateway nodes'),
      h(
        'p',
        { class: 'legend muted' },
        h('span', { class: 'badge node-live' }, 'live'),
        ' sending or stream open · ',
        h('span', { class: 'badge node-stale' }, 'stale'),
        ' silent · ',
        h('span', { class: 'badge node-gone' }, 'gone'),
        ' silent for a day. Trend per minute: ',
        h('span', { class: 'swatch-line received' }),
        ' received, ',
        h('span', { class: 'swatch-line stored' }),
        ' stored (a gap is what did not make it).',
      ),
      nodesBody,
    ),
    reasonsBody,
  );

  let alive = true;
  let shown: IngestView | undefined;
  const series = new Map<string, LedgerPoint[]>();
  const load = async () => {
    try {
      const v = await loadNodes(ctx.api);
      if (!alive) return;
      shown = v;
      notice.replaceChildren();
      draw(v);
      // The sparklines, node by node (the ledger answers one node with its series).
      const ids = [...new Set(v.nodes.map((n) => n.node_id))].slice(0, MAX_SPARKLINES);
      await Promise.all(
        ids.map(async (id) => {
          try {
            for (const [k, pts] of await loadNodeSeries(id, ctx.api)) series.set(k, pts);
          } catch {
            /* a node that vanished between the two reads: no sparkline */
          }
        }),
      );
      if (alive && shown === v) drawSparks(v);
    } catch (e) {
      if (!alive) return;
      notice.replaceChildren(errorBox(e));
      if (!shown) nodesBody.replaceChildren();
    }
  };

  const draw = (v: IngestView) => {
    const now = Date.now();
    const nodes = v.nodes;
    const count = (s: string) => nodes.filter((n) => n.status === s).length;
    const received = nodes.reduce((a, n) => a + n.entries_received, 0);
    const dropped = nodes.reduce((a, n) => a + sum(n.entries_dropped), 0);
    const card = (id: string, label: string, value: string, cls = '', title?: string) =>
      h(
        'div',
        { class: `card ${cls}`, id, title },
        h('div', { class: 'label' }, label),
        h('div', { class: 'value' }, value),
      );
    cards.replaceChildren(
      card('card-live', 'Live nodes', fmtCount(count('live'))),
      card('card-stale', 'Stale nodes', fmtCount(count('stale')), count('stale') ? 'health-degraded' : ''),
      card('card-gone', 'Gone nodes', fmtCount(count('gone'))),
      card('card-received', `Entries received (${describeSel(ctx.sel, ctx.utc)})`, fmtCount(received)),
      card('card-stored', 'Stored', fmtCount(nodes.reduce((a, n) => a + n.entries_stored, 0))),
      card(
        'card-in-flight',
        'In flight',
        fmtCount(nodes.reduce((a, n) => a + n.entries_in_flight, 0)),
        '',
        'Received, not yet stored or dropped: in memory or in the write-ahead log',
      ),
      card(
        'card-dropped',
        'Dropped',
        `${fmtCount(dropped)}${received ? ` (${fmtPct(dropped / received)})` : ''}`,
        dropped ? 'health-failing' : '',
        'Entries dead-lettered or lost, every reason',
      ),
    );
    info.textContent = `${describeSel(ctx.sel, ctx.utc)}${v.staleAfterS !== null ? ` · stale after ${fmtAge(v.staleAfterS * 1000)} of silence` : ''} · updated ${ctx.time(now, { date: false })}`;
    nodesBody.replaceChildren(nodesTable(nodes, now));
    reasonsBody.replaceChildren(
      reasonPanel(
        'drops',
        'Entries dropped, by reason',
        byReason(nodes.map((n) => n.entries_dropped)),
        'Nothing dropped: every entry received was stored or is on its way.',
      ),
      reasonPanel(
        'rejections',
        'Messages refused, by reason',
        byReason(nodes.map((n) => n.messages_rejected)),
        'No message refused.',
      ),
    );
    drawSparks(v);
    markFirstData();
  };

  const nodesTable = (nodes: IngestNode[], now: number): HTMLElement => {
    if (nodes.length === 0)
      return h(
        'p',
        { class: 'muted', id: 'no-nodes' },
        `No gateway node sent anything in ${describeSel(ctx.sel, ctx.utc)}. Point Envoy's gRPC access log at gatescope's ALS port (see the Overview).`,
      );
    const cols = [
      'status',
      'node_id',
      'received',
      'stored',
      'dropped',
      'in_flight',
      'rejected',
      'trend',
      'last_seen',
      'traffic',
    ];
    const head: Record<string, string> = {
      status: 'Status',
      node_id: 'Gateway node · cluster · log name',
      received: 'Received',
      stored: 'Stored',
      dropped: 'Dropped',
      in_flight: 'In flight',
      rejected: 'Messages refused',
      trend: 'Received vs stored',
      last_seen: 'Last message',
      traffic: '',
    };
    /** `9` and under it each reason with its count (one reason: its name only). */
    const reasons = (m: Record<string, number>) => {
      const list = byReason([m]);
      if (list.length === 0) return '0';
      return h(
        'span',
        { class: 'reasons-cell', title: list.map(([r, n]) => `${r}: ${n}`).join('\n') },
        fmtCount(sum(m)),
        h(
          'span',
          { class: 'node-sub' },
          list.map(([r, n], i) =>
            h(
              'span',
              { class: 'reason', dataset: { reason: r, count: String(n) } },
              i ? ', ' : '',
              list.length > 1 ? `${reasonText(r)} ${fmtCount(n)}` : reasonText(r),
            ),
          ),
        ),
      );
    };
    const table = dataTable(
      cols,
      nodes as unknown as Record<string, unknown>[],
      (col, row) => {
        const n = row as unknown as IngestNode;
        switch (col) {
          case 'status':
            return h(
              'span',
              { class: `badge node-${n.status}`, title: STATUS_TEXT[n.status] ?? '' },
              n.status,
            );
          case 'node_id':
            return h(
              'span',
              { title: `node id: ${n.node_id}\nnode cluster: ${n.node_cluster}\nlog name: ${n.log_name}` },
              shortGateway(n.node_id) || '(no node id)',
              h('span', { class: 'node-sub' }, `${n.node_cluster || '–'} · ${n.log_name || '–'}`),
            );
          case 'received':
            return h('span', { title: `${fmtCount(n.messages)} messages` }, fmtCount(n.entries_received));
          case 'stored':
            return fmtCount(n.entries_stored);
          case 'dropped':
            return reasons(n.entries_dropped);
          case 'in_flight':
            return fmtCount(n.entries_in_flight);
          case 'rejected':
            return reasons(n.messages_rejected);
          case 'trend':
            return h('span', { class: 'trend', dataset: { key: nodeKey(n) } });
          case 'last_seen': {
            const t = n.last_seen ? Date.parse(n.last_seen) : NaN;
            return Number.isFinite(t)
              ? h(
                  'span',
                  {
                    title: `${ctx.time(t, { zone: true })}${n.streams_open ? ` · ${n.streams_open} stream(s) open` : ''}`,
                  },
                  `${fmtAge(now - t)} ago`,
                  n.streams_open ? h('span', { class: 'muted' }, ` · ${n.streams_open} open`) : '',
                )
              : '–';
          }
          default:
            return h(
              'a',
              {
                href: href('overview', { gateway: n.node_id }),
                class: 'node-traffic',
                title: `The traffic of ${n.node_id}`,
              },
              'Traffic →',
            );
        }
      },
      (c) => head[c] ?? c,
    );
    nodes.forEach((n, i) => {
      const tr = table.tBodies[0].rows[i];
      tr.dataset.node = n.node_id;
      tr.dataset.status = n.status;
      tr.dataset.received = String(n.entries_received);
      tr.dataset.stored = String(n.entries_stored);
      tr.className = n.status === 'stale' ? 'health-degraded' : n.status === 'gone' ? 'node-gone-row' : '';
    });
    return tableWrap(table, 'nodes-table');
  };

  const drawSparks = (v: IngestView) => {
    const to = Number.isFinite(v.to) ? Math.min(v.to, Date.now()) : Date.now();
    const from = Number.isFinite(v.from) ? v.from : to - 3_600_000;
    for (const el of nodesBody.querySelectorAll<HTMLElement>('.trend')) {
      const pts = series.get(el.dataset.key ?? '');
      if (!pts) continue;
      const cols = minuteColumns(pts, from, to);
      // The newest minute is still filling (faint, not a drop).
      const filling = to % 60_000 === 0 ? cols.received.length : cols.received.length - 1;
      el.replaceChildren(
        sparklines(
          [
            { values: cols.received, color: RECEIVED },
            { values: cols.stored, color: STORED, dash: true },
          ],
          140,
          24,
          { incompleteFrom: filling },
        ),
      );
      el.title = `per minute, ${cols.received.length} min: received ${fmtCount(cols.received.reduce((a, b) => a + b, 0))}, stored ${fmtCount(cols.stored.reduce((a, b) => a + b, 0))}`;
      el.dataset.minutes = String(cols.received.length);
    }
  };

  void load();
  ctx.onRefresh(() => void load());
  return () => {
    alive = false;
  };
}

function reasonPanel(id: string, title: string, rows: [string, number][], none: string): HTMLElement {
  return h(
    'section',
    { class: 'panel', id: `ingest-${id}` },
    h('h3', null, title),
    rows.length === 0
      ? h('p', { class: 'muted' }, none)
      : tableWrap(
          dataTable(
            ['reason', 'count'],
            rows.map(([reason, count]) => ({ reason, count })),
            (col, r) =>
              col === 'reason'
                ? h(
                    'span',
                    { title: String(r.reason), dataset: { reason: String(r.reason) } },
                    reasonText(String(r.reason)),
                  )
                : fmtCount(r.count as number),
            (c) => (c === 'reason' ? 'Reason' : id === 'drops' ? 'Entries' : 'Messages'),
          ),
        ),
  );
}
