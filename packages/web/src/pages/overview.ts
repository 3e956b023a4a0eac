import { get } from '../api.js';
import { CLASS_ORDER, COLORS, stack, TimeChart } from '../charts.js';
import { errorBox, filterBar, LIVE_FILTERS, liveFilters, markFirstData } from '../common.js';
import { clear, h } from '../dom.js';
import { emptyState } from '../empty-state.js';
import { fmtCount, fmtMs, fmtNum, fmtPct } from '../format.js';
import { onHello, subscribeStats, type Hello, type LiveStats } from '../live.js';
import { href, type Route } from '../router.js';
import { firstIncomplete } from '../time.js';
import type { PageCtx } from '../view.js';
import { metricColumns, type Timeseries } from './series.js';

interface Summary {
  requests: number;
  rps: number;
  error_rate: number;
  p50_ms: number | null;
  p99_ms: number | null;
  status_classes: Record<(typeof CLASS_ORDER)[number], number>;
}

/** Overview: totals and charts, live from the socket (second by second) or for any range from the API. */
export function overview(root: HTMLElement, route: Route, ctx: PageCtx): () => void {
  const filters = liveFilters(route.params);
  let hello: Hello | undefined;
  const cards = h('div', { class: 'cards', id: 'totals' });
  const empty = h('div');
  const box = (id: string, title: string) => {
    const el = h('div', { class: 'chart', id });
    return { el, wrap: h('section', { class: 'panel' }, h('h3', null, title), el) };
  };
  const rps = box('chart-rps', 'Requests / s');
  const err = box('chart-errors', '5xx error rate');
  const lat = box('chart-latency', 'Latency');
  const cls = box('chart-status', 'Status classes (requests / s)');
  const windowInfo = h('span', { class: 'muted', id: 'window' });
  root.append(
    h('div', { class: 'title' }, h('h1', null, 'Overview'), windowInfo),
    filterBar(route.params, LIVE_FILTERS, [], ctx.api),
    cards,
    empty,
    h('div', { class: 'grid2' }, rps.wrap, err.wrap, lat.wrap, cls.wrap),
  );
  let stepMs = 1000;
  const pick = (ts: number, extra: Record<string, string> = {}) =>
    (location.hash = href('requests', { ...filters, ...extra, from: ts, to: ts + stepMs }));
  const common = { onPick: pick, onZoom: ctx.zoom, utc: ctx.utc };
  const charts = {
    rps: new TimeChart(
      rps.el,
      [{ label: 'rps', color: COLORS.rps, fill: true, value: (v) => fmtNum(v, 2) }],
      common,
    ),
    err: new TimeChart(
      err.el,
      [
        {
          label: '5xx',
          color: COLORS.error,
          fill: true,
          value: (v) => (v === null ? '–' : `${v.toFixed(2)} %`),
        },
      ],
      { ...common, yFormat: (v) => `${v} %`, onPick: (ts) => pick(ts, { status_class: '5xx' }) },
    ),
    lat: new TimeChart(
      lat.el,
      [
        { label: 'p50', color: COLORS.p50, value: fmtMs },
        { label: 'p99', color: COLORS.p99, value: fmtMs },
      ],
      { ...common, yFormat: (v) => `${v} ms` },
    ),
    cls: new TimeChart(
      cls.el,
      CLASS_ORDER.map((c) => ({ label: c, color: COLORS[c], fill: true, value: (v) => fmtNum(v, 2) })),
      { ...common, stacked: true },
    ),
  };
  const card = (label: string, value: string, cls = '', title?: string) =>
    h(
      'div',
      { class: `card ${cls}`, title },
      h('div', { class: 'label' }, label),
      h('div', { class: 'value' }, value),
    );
  const showTotals = (t: Summary, span: string, health?: string) => {
    clear(cards);
    cards.dataset.requests = String(t.requests);
    cards.append(
      card('Requests / s', fmtNum(t.rps, 1)),
      card('5xx error rate', fmtPct(t.error_rate), health ? `health-${health}` : ''),
      card('p50', fmtMs(t.p50_ms)),
      card('p99', fmtMs(t.p99_ms)),
      card(`Requests (${span})`, fmtCount(t.requests)),
      card(
        '4xx / 5xx / no response',
        `${fmtCount(t.status_classes['4xx'])} / ${fmtCount(t.status_classes['5xx'])} / ${fmtCount(t.status_classes.none)}`,
        '',
        'no response: the client or Envoy reset the stream before a status was sent',
      ),
    );
  };
  type Row = {
    t: number;
    rps: number;
    err: number | null;
    p50: number | null;
    p99: number | null;
    classes: number[];
  };
  const draw = (rows: Row[], incompleteFrom: number) => {
    const x = rows.map((r) => r.t / 1000);
    charts.rps.setData([x, rows.map((r) => r.rps)], { incompleteFrom });
    charts.err.setData([x, rows.map((r) => r.err)], { incompleteFrom });
    charts.lat.setData([x, rows.map((r) => r.p50), rows.map((r) => r.p99)], { incompleteFrom });
    const own = CLASS_ORDER.map((_, i) => rows.map((r) => r.classes[i]));
    charts.cls.setData([x, ...stack(own)], { incompleteFrom, own });
    const last = rows[Math.min(incompleteFrom, rows.length) - 1];
    for (const el of [rps.el, err.el, lat.el, cls.el]) {
      el.dataset.points = String(rows.filter((r) => r.rps > 0).length);
      el.dataset.last = String(last?.t ?? 0);
      el.dataset.from = String(rows[0]?.t ?? 0);
      el.dataset.to = String(rows.at(-1)?.t ?? 0);
    }
    markFirstData();
  };
  onHello((hi) => (hello = hi));
  let alive = true;
  const cleanups: (() => void)[] = [];

  if (ctx.sel.kind === 'live') {
    const render = (s: LiveStats) => {
      if (ctx.paused()) return;
      const t = s.totals;
      showTotals(t, `${s.window_s} s`, t.health);
      windowInfo.textContent = `totals: rolling ${s.window_s} s · charts: last ${Math.round(s.history_s / 60)} min, per second`;
      const hasTraffic = t.requests > 0 || s.points.some((p) => p.requests > 0);
      clear(empty);
      if (!hasTraffic && Object.keys(filters).length === 0) empty.append(emptyState(hello));
      stepMs = 1000;
      // A fresh stream fills a sliver of the 15-minute history: start the charts shortly before the first traffic
      // (at least a minute wide) instead of drawing 14 empty minutes.
      const active = s.points.findIndex((p) => p.requests > 0);
      const points = s.points.slice(active < 0 ? 0 : Math.max(0, Math.min(active - 5, s.points.length - 60)));
      draw(
        points.map((p) => ({
          t: p.ts,
          rps: p.rps,
          err: p.requests ? p.error_rate * 100 : null,
          p50: p.p50_ms,
          p99: p.p99_ms,
          classes: CLASS_ORDER.map((c) => p.status_classes[c]),
        })),
        // The newest seconds are still filling (entries are logged at completion and stored in batches).
        firstIncomplete(
          points.map((p) => p.ts),
          1000,
          s.ts,
          2000,
        ),
      );
    };
    cleanups.push(subscribeStats(filters, render, (e) => empty.replaceChildren(errorBox(e))));
  } else {
    const load = async () => {
      const q = { ...ctx.api, ...filters };
      try {
        const [sum, ts] = await Promise.all([
          get<Summary>('/api/v1/summary', q),
          get<Timeseries>('/api/v1/timeseries', {
            ...q,
            metrics: `rps,error_rate,p50_ms,p99_ms,${CLASS_ORDER.join(',')}`,
          }),
        ]);
        if (!alive) return;
        clear(empty);
        if (sum.requests === 0 && Object.keys(filters).length === 0) empty.append(emptyState(hello));
        showTotals(sum, ctx.sel.kind === 'relative' ? ctx.sel.text : 'range');
        stepMs = ts.step_s * 1000;
        const cols = metricColumns(ts);
        const step = ts.step_s;
        const rows: Row[] = cols.x.map((t, i) => ({
          t,
          rps: cols.get('rps')[i] ?? 0,
          err: cols.get('error_rate')[i] === null ? null : (cols.get('error_rate')[i] as number) * 100,
          p50: cols.get('p50_ms')[i],
          p99: cols.get('p99_ms')[i],
          classes: CLASS_ORDER.map((c) => (cols.get(c)[i] ?? 0) / step),
        }));
        windowInfo.textContent = `${ctx.sel.kind === 'relative' ? `last ${ctx.sel.text}` : 'range'} · ${step} s buckets · source ${ts.source?.table ?? ''}`;
        draw(rows, firstIncomplete(cols.x, stepMs, Date.now()));
      } catch (e) {
        if (alive) empty.replaceChildren(errorBox(e));
      }
    };
    void load();
    ctx.onRefresh(() => void load());
  }
  return () => {
    alive = false;
    cleanups.forEach((c) => c());
    Object.values(charts).forEach((c) => c.destroy());
  };
}
