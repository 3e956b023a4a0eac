import { COLORS, stack, TimeChart } from '../charts.js';
import { errorBox, filterBar, liveFilters } from '../common.js';
import { clear, h } from '../dom.js';
import { emptyState } from '../empty-state.js';
import { fmtMs, fmtNum, fmtPct } from '../format.js';
import { onHello, subscribeStats, type Hello, type LiveStats } from '../live.js';
import { href, type Route } from '../router.js';

const CLASSES = ['2xx', '3xx', '4xx', '5xx', '1xx', 'none'] as const;

/** Overview: live totals and the last 15 minutes, second by second. */
export function overview(root: HTMLElement, route: Route): () => void {
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
  root.append(
    h('div', { class: 'title' }, h('h1', null, 'Overview'), h('span', { class: 'muted', id: 'window' })),
    filterBar(route.params, ['route', 'authority', 'gateway', 'upstream_cluster']),
    cards,
    empty,
    h('div', { class: 'grid2' }, rps.wrap, err.wrap, lat.wrap, cls.wrap),
  );
  const pick = (ts: number) => (location.hash = href('requests', { ...filters, from: ts, to: ts + 1000 }));
  const charts = {
    rps: new TimeChart(rps.el, [{ label: 'rps', color: COLORS.rps, fill: true, value: (v) => fmtNum(v) }], {
      onPick: pick,
    }),
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
      {
        yFormat: (v) => `${v} %`,
        onPick: (ts) =>
          (location.hash = href('requests', { ...filters, from: ts, to: ts + 1000, status_class: '5xx' })),
      },
    ),
    lat: new TimeChart(
      lat.el,
      [
        { label: 'p50', color: COLORS.p50, value: fmtMs },
        { label: 'p99', color: COLORS.p99, value: fmtMs },
      ],
      { yFormat: (v) => `${v} ms`, onPick: pick },
    ),
    cls: new TimeChart(
      cls.el,
      [...CLASSES].reverse().map((c) => ({ label: c, color: COLORS[c], fill: true })),
      { stacked: true, onPick: pick },
    ),
  };
  const card = (label: string, value: string, cls = '') =>
    h(
      'div',
      { class: `card ${cls}` },
      h('div', { class: 'label' }, label),
      h('div', { class: 'value' }, value),
    );

  const render = (s: LiveStats) => {
    const t = s.totals;
    clear(cards);
    cards.dataset.requests = String(t.requests);
    cards.append(
      card('Requests / s', fmtNum(t.rps, 1)),
      card('5xx error rate', fmtPct(t.error_rate), `health-${t.health}`),
      card('p50', fmtMs(t.p50_ms)),
      card('p99', fmtMs(t.p99_ms)),
      card(`Requests (${s.window_s} s)`, fmtNum(t.requests, 1)),
      card(
        '4xx / 5xx / no response',
        `${t.status_classes['4xx']} / ${t.status_classes['5xx']} / ${t.status_classes.none}`,
      ),
    );
    (root.querySelector('#window') as HTMLElement).textContent =
      `rolling ${s.window_s} s window · charts: last ${Math.round(s.history_s / 60)} min`;
    const hasTraffic = t.requests > 0 || s.points.some((p) => p.requests > 0);
    clear(empty);
    if (!hasTraffic && Object.keys(filters).length === 0) empty.append(emptyState(hello));
    // The newest second is still filling (entries are logged at completion and committed in batches): leave it
    // out of the charts rather than draw a dip that is not there. Totals above include it.
    const points = s.points.filter((p) => p.ts <= s.ts - 2000);
    const x = points.map((p) => p.ts / 1000);
    charts.rps.setData([x, points.map((p) => p.rps)]);
    charts.err.setData([x, points.map((p) => (p.requests ? p.error_rate * 100 : null))]);
    charts.lat.setData([x, points.map((p) => p.p50_ms), points.map((p) => p.p99_ms)]);
    charts.cls.setData([x, ...stack(CLASSES.map((c) => points.map((p) => p.status_classes[c])))]);
    const last = points.at(-1);
    for (const el of [rps.el, err.el, lat.el, cls.el]) {
      el.dataset.points = String(points.filter((p) => p.requests > 0).length);
      el.dataset.last = String(last?.ts ?? 0);
    }
  };
  onHello((hi) => (hello = hi));
  const unsubscribe = subscribeStats(filters, render, (e) => empty.replaceChildren(errorBox(e)));
  return () => {
    unsubscribe();
    Object.values(charts).forEach((c) => c.destroy());
  };
}
