import { sankey, sankeyLinkHorizontal, type SankeyLink, type SankeyNode } from 'd3-sankey';
import { get } from '../api.js';
import { errorBox, markFirstData } from '../common.js';
import { clear, h, svg } from '../dom.js';
import { flowGraph, mapHeight, type FlowLink, type FlowNode, type Flows } from '../flows.js';
import { fmtMs, fmtNum, fmtPct, shortCluster } from '../format.js';
import { href, type Route } from '../router.js';
import type { PageCtx } from '../view.js';

/** Seconds the live map covers, re-read every LIVE_REFRESH_MS. */
const LIVE_RANGE = '1m';
const LIVE_REFRESH_MS = 5000;

const HEALTH_COLOUR: Record<string, string> = {
  healthy: '#3b82f6',
  degraded: '#f59e0b',
  failing: '#ef4444',
  unknown: '#9ca3af',
  idle: '#9ca3af',
};

type N = SankeyNode<FlowNode, FlowLink>;
type L = SankeyLink<FlowNode, FlowLink>;

/**
 * The routing map: where requests go. Gateway -> route -> upstream cluster as a Sankey diagram; edge width is
 * requests per second, colour is health by error rate, route -> cluster edges carry the route's split in %,
 * hover gives rps, 5xx and p99, a click opens the route.
 */
export function map(root: HTMLElement, route: Route, ctx: PageCtx): () => void {
  const only = route.params.get('route');
  const info = h('span', { class: 'muted', id: 'map-info' });
  const holder = h('div', { class: 'map', id: 'flow-map' });
  const tip = h('div', { class: 'map-tip', hidden: true });
  const panel = h('section', { class: 'panel map-panel' }, holder, tip);
  root.append(
    h(
      'div',
      { class: 'title' },
      h('h1', null, 'Routing map'),
      info,
      only ? h('a', { href: href('map', { route: null }) }, `showing ${only} only · show all`) : null,
    ),
    h(
      'p',
      { class: 'legend muted' },
      'Gateway → route → upstream cluster. Width: requests / s. Colour: 5xx/4xx health ',
      h('span', { class: 'swatch healthy' }),
      'healthy ',
      h('span', { class: 'swatch degraded' }),
      'degraded ',
      h('span', { class: 'swatch failing' }),
      'failing. Hover for p99, click a route to open it.',
    ),
    panel,
  );
  let alive = true;
  let last: Flows | undefined;
  const load = async () => {
    const range = ctx.sel.kind === 'live' ? { range: LIVE_RANGE } : ctx.api;
    try {
      const f = await get<Flows>('/api/v1/flows', { ...range, route: only ?? undefined });
      if (!alive) return;
      last = f;
      draw(f);
      info.textContent =
        ctx.sel.kind === 'live'
          ? `live: the last 60 s, re-read every ${LIVE_REFRESH_MS / 1000} s`
          : `${ctx.sel.kind === 'relative' ? `last ${ctx.sel.text}` : 'range'}`;
    } catch (e) {
      if (alive) holder.replaceChildren(errorBox(e));
    }
  };
  const draw = (f: Flows) => {
    const graph = flowGraph(f);
    clear(holder);
    if (graph.links.length === 0) {
      holder.append(h('p', { class: 'muted empty-map' }, 'No requests in this range.'));
      return;
    }
    const width = Math.max(600, holder.clientWidth);
    const height = mapHeight(graph.nodes);
    const layout = sankey<FlowNode, FlowLink>()
      .nodeId((n) => n.id)
      .nodeWidth(10)
      .nodePadding(14)
      .extent([
        [1, 8],
        [width - 190, height - 8], // room on the right for the cluster names
      ]);
    const g = layout({
      nodes: graph.nodes.map((n) => ({ ...n })),
      links: graph.links.map((l) => ({ ...l })),
    });
    const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, class: 'sankey' });
    const path = sankeyLinkHorizontal<FlowNode, FlowLink>();
    for (const l of g.links as L[]) {
      const p = svg('path', {
        d: path(l) ?? '',
        class: `flow health-${l.health}`,
        stroke: HEALTH_COLOUR[l.health] ?? '#9ca3af',
        'stroke-width': Math.max(1.5, l.width ?? 1),
        fill: 'none',
        'data-route': l.route,
        'data-cluster': l.cluster ?? '',
        'data-share': l.share === undefined ? '' : String(l.share),
        'data-rps': String(l.rps),
      });
      p.addEventListener('mousemove', (e) => showTip(e as MouseEvent, l));
      p.addEventListener('mouseleave', () => (tip.hidden = true));
      if (l.route) p.addEventListener('click', () => (location.hash = href('route', { name: l.route })));
      root.append(p);
    }
    // The split on route -> cluster edges of routes that split (a 100 % edge says nothing), mid-edge.
    for (const l of g.links as L[]) {
      if (l.share === undefined || l.share > 0.995 || (l.width ?? 0) < 3) continue;
      const x = (((l.source as N).x1 ?? 0) + ((l.target as N).x0 ?? 0)) / 2;
      const t = svg('text', {
        x,
        y: ((l.y0 ?? 0) + (l.y1 ?? 0)) / 2,
        class: 'split-label',
        'text-anchor': 'middle',
        'dominant-baseline': 'middle',
      });
      t.textContent = fmtPct(l.share);
      root.append(t);
    }
    for (const n of g.nodes as N[]) {
      const rect = svg('rect', {
        x: n.x0 ?? 0,
        y: n.y0 ?? 0,
        width: (n.x1 ?? 0) - (n.x0 ?? 0),
        height: Math.max(1, (n.y1 ?? 0) - (n.y0 ?? 0)),
        class: `node ${n.kind}`,
      });
      const label = svg('text', {
        x: (n.x1 ?? 0) + 5,
        y: ((n.y0 ?? 0) + (n.y1 ?? 0)) / 2,
        'text-anchor': 'start',
        'dominant-baseline': 'middle',
        class: `node-label ${n.kind}`,
      });
      const text =
        n.kind === 'cluster' ? shortCluster(n.name) : n.kind === 'gateway' ? shortGateway(n.name) : n.name;
      label.textContent = text;
      const title = svg('title', {});
      title.textContent = `${n.name}: ${fmtNum(n.value ?? 0, 2)} requests / s`;
      label.append(title);
      if (n.kind === 'route' && n.name !== '(no route)') {
        const a = svg('a', { href: href('route', { name: n.name }), class: 'node-link' });
        a.append(rect, label);
        root.append(a);
      } else root.append(rect, label);
    }
    holder.append(root);
    holder.dataset.links = String(g.links.length);
    markFirstData();
  };
  const showTip = (e: MouseEvent, l: FlowLink) => {
    const box = panel.getBoundingClientRect();
    tip.hidden = false;
    tip.replaceChildren(
      h(
        'strong',
        null,
        l.cluster !== undefined
          ? `${l.route || '(no route)'} → ${l.cluster ? shortCluster(l.cluster) : '(no upstream)'}`
          : `${shortGateway(l.gateway)} → ${l.route || '(no route)'}`,
      ),
      h(
        'div',
        null,
        `${fmtNum(l.rps, 2)} requests / s${l.share !== undefined ? ` · ${fmtPct(l.share)} of the route` : ''}`,
      ),
      h('div', null, `5xx ${fmtPct(l.error_rate)} · p99 ${fmtMs(l.p99_ms)}`),
      h('div', { class: 'muted' }, `${l.requests} requests · ${l.health}`),
    );
    tip.style.left = `${Math.min(e.clientX - box.left + 12, box.width - 260)}px`;
    tip.style.top = `${e.clientY - box.top + 12}px`;
  };
  void load();
  const timer =
    ctx.sel.kind === 'live'
      ? setInterval(() => !ctx.paused() && !document.hidden && void load(), LIVE_REFRESH_MS)
      : undefined;
  ctx.onRefresh(() => void load());
  const ro = new ResizeObserver(() => last && draw(last));
  ro.observe(holder);
  return () => {
    alive = false;
    if (timer) clearInterval(timer);
    ro.disconnect();
  };
}

/** `istio-ingressgateway.istio-system` stays; Envoy node ids `router~ip~pod.ns~domain` become `pod.ns`. */
export function shortGateway(name: string): string {
  const parts = name.split('~');
  return parts.length === 4 ? parts[2] : name;
}
