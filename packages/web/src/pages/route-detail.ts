import { firstArray, get } from '../api.js';
import { COLORS, TimeChart } from '../charts.js';
import { dataTable, errorBox } from '../common.js';
import { clear, h } from '../dom.js';
import { fmtCell, fmtMs, fmtNum, fmtPct, shortCluster } from '../format.js';
import { href, update, type Route } from '../router.js';

export const RANGES = ['5m', '15m', '1h', '6h', '24h', '7d'];

interface Timeseries {
  step_s: number;
  series: { labels: Record<string, string>; points: [number, number | null][] }[];
}
export interface SplitRow {
  upstream_cluster: string;
  requests: number;
  share: number;
  error_rate: number;
  p50_ms: number | null;
  p99_ms: number | null;
  [delta: string]: unknown;
}

export function rangePicker(current: string): HTMLElement {
  return h(
    'div',
    { class: 'range' },
    RANGES.map((r) =>
      h(
        'button',
        {
          class: r === current ? 'active' : '',
          onclick: () => update({ range: r, from: null, to: null }, false),
        },
        r,
      ),
    ),
  );
}

const metricOf = (labels: Record<string, string>) => labels.metric ?? labels.__name__ ?? labels.name ?? '';

/** Route detail: history from the query API, status/flags table, canary split per upstream cluster. */
export function routeDetail(root: HTMLElement, route: Route): () => void {
  const name = route.params.get('name') ?? '';
  const range = route.params.get('range') ?? '1h';
  const base = { route: name, range };
  const charts: TimeChart[] = [];
  const box = (id: string, title: string) => {
    const el = h('div', { class: 'chart', id });
    return { el, wrap: h('section', { class: 'panel' }, h('h3', null, title), el) };
  };
  const traffic = box('detail-rps', 'Requests / s');
  const byCluster = box('detail-clusters', 'p50 / p99 by upstream cluster (canary side by side)');
  const latency = box('detail-latency', 'Latency');
  const split = h(
    'section',
    { class: 'panel', id: 'split' },
    h('h3', null, 'Canary split by upstream cluster'),
    h('p', { class: 'muted' }, 'Loading…'),
  );
  const status = h(
    'section',
    { class: 'panel', id: 'status' },
    h('h3', null, 'Status codes and response flags'),
    h('p', { class: 'muted' }, 'Loading…'),
  );
  root.append(
    h(
      'div',
      { class: 'title' },
      h('h1', null, 'Route ', h('code', null, name || '(no route)')),
      rangePicker(range),
      h('a', { href: href('requests', { route: name, range }) }, 'Requests →'),
      h('a', { href: href('overview', { route: name }) }, 'Live →'),
    ),
    h('div', { class: 'grid2' }, traffic.wrap, latency.wrap),
    h('div', { class: 'grid2' }, split, byCluster.wrap),
    status,
  );
  let stepMs = 60_000;
  const byClusterChart: { chart?: TimeChart } = {};
  const pick = (ts: number) => (location.hash = href('requests', { route: name, from: ts, to: ts + stepMs }));
  const rps = new TimeChart(
    traffic.el,
    [
      { label: 'rps', color: COLORS.rps, fill: true, value: (v) => fmtNum(v, 2) },
      { label: '5xx %', color: COLORS.error, value: (v) => (v === null ? '–' : `${v.toFixed(2)} %`) },
    ],
    { onPick: pick },
  );
  const lat = new TimeChart(
    latency.el,
    [
      { label: 'p50', color: COLORS.p50, value: fmtMs },
      { label: 'p99', color: COLORS.p99, value: fmtMs },
    ],
    { yFormat: (v) => `${v} ms`, onPick: pick },
  );
  charts.push(rps, lat);

  let alive = true;
  void get<Timeseries>('/api/v1/timeseries', { ...base, metrics: 'rps,error_rate,p50_ms,p99_ms' })
    .then((ts) => {
      if (!alive) return;
      stepMs = ts.step_s * 1000;
      const byMetric = new Map(ts.series.map((s) => [metricOf(s.labels), s.points]));
      const anySeries = ts.series[0]?.points ?? [];
      const x = (byMetric.get('rps') ?? anySeries).map(([t]) => t / 1000);
      const col = (m: string, scale = 1) =>
        (byMetric.get(m) ?? []).map(([, v]) => (v === null ? null : v * scale));
      rps.setData([x, col('rps'), col('error_rate', 100)]);
      lat.setData([x, col('p50_ms'), col('p99_ms')]);
      traffic.el.dataset.points = String(x.length);
    })
    .catch((e) => alive && traffic.wrap.append(errorBox(e)));

  void get<Timeseries>('/api/v1/timeseries', {
    ...base,
    metrics: 'p50_ms,p99_ms',
    group_by: 'upstream_cluster',
    limit: 4,
  })
    .then((ts) => {
      if (!alive) return;
      const series = ts.series.filter((s) => s.labels.upstream_cluster);
      if (series.length === 0) return;
      const palette = ['#3b82f6', '#a855f7', '#14b8a6', '#f97316'];
      const clusters = [...new Set(series.map((s) => s.labels.upstream_cluster))];
      const chart = new TimeChart(
        byCluster.el,
        series.map((s) => {
          const color = palette[clusters.indexOf(s.labels.upstream_cluster) % palette.length];
          return {
            label: `${shortCluster(s.labels.upstream_cluster)} ${metricOf(s.labels).replace('_ms', '')}`,
            color: metricOf(s.labels) === 'p50_ms' ? `${color}99` : color,
            value: fmtMs,
          };
        }),
        { yFormat: (v) => `${v} ms`, onPick: pick },
      );
      byClusterChart.chart = chart;
      chart.setData([
        series[0].points.map(([t]) => t / 1000),
        ...series.map((s) => s.points.map(([, v]) => v)),
      ]);
    })
    .catch((e) => alive && byCluster.wrap.append(errorBox(e)));

  void get<unknown>(`/api/v1/routes/${encodeURIComponent(name)}/split`, { range })
    .then((body) => {
      if (!alive) return;
      const rows = firstArray<SplitRow>(body, ['clusters', 'upstream_clusters', 'split']);
      clear(split);
      split.append(h('h3', null, 'Canary split by upstream cluster'));
      if (rows.length === 0)
        return split.append(h('p', { class: 'muted' }, 'No upstream traffic in this range.'));
      const baseline = rows.reduce((a, b) => (b.requests > a.requests ? b : a));
      split.append(
        h(
          'table',
          { class: 'data split' },
          h(
            'thead',
            null,
            h(
              'tr',
              null,
              ['Upstream cluster', 'Share', 'Requests', '5xx', 'p50', 'p99', 'Δ p99'].map((c) =>
                h('th', null, c),
              ),
            ),
          ),
          h(
            'tbody',
            null,
            rows.map((r) => {
              const d =
                r === baseline || baseline.p99_ms === null || r.p99_ms === null
                  ? null
                  : r.p99_ms - baseline.p99_ms;
              return h(
                'tr',
                { dataset: { cluster: r.upstream_cluster, share: String(r.share) } },
                h(
                  'td',
                  { title: r.upstream_cluster },
                  r.upstream_cluster ? shortCluster(r.upstream_cluster) : '(none: UH / NR / direct response)',
                ),
                h(
                  'td',
                  null,
                  h(
                    'div',
                    { class: 'share' },
                    h('div', { class: 'bar', style: `width:${(r.share * 100).toFixed(1)}%` }),
                    h('span', null, fmtPct(r.share)),
                  ),
                ),
                h('td', null, fmtNum(r.requests)),
                h('td', null, fmtPct(r.error_rate)),
                h('td', null, fmtMs(r.p50_ms)),
                h('td', null, fmtMs(r.p99_ms)),
                h(
                  'td',
                  { class: d === null ? 'muted' : d > 0 ? 'worse' : 'better' },
                  d === null ? 'baseline' : `${d > 0 ? '+' : ''}${fmtMs(d)}`,
                ),
              );
            }),
          ),
        ),
      );
    })
    .catch((e) => {
      if (!alive) return;
      clear(split);
      split.append(h('h3', null, 'Canary split by upstream cluster'), errorBox(e));
    });

  void get<unknown>('/api/v1/status', base)
    .then((body) => {
      if (!alive) return;
      const rows = firstArray<Record<string, unknown>>(body, ['rows', 'status', 'data']);
      clear(status);
      status.append(h('h3', null, 'Status codes and response flags'));
      if (rows.length === 0) return status.append(h('p', { class: 'muted' }, 'No requests in this range.'));
      const cols = Object.keys(rows[0]);
      status.append(
        dataTable(cols, rows, (c, r) =>
          c === 'response_code'
            ? h(
                'a',
                { href: href('requests', { route: name, range, response_code: String(r[c]) }) },
                fmtCell(r[c]),
              )
            : c === 'share'
              ? fmtPct(Number(r[c]))
              : fmtCell(r[c]),
        ),
      );
    })
    .catch((e) => {
      if (!alive) return;
      clear(status);
      status.append(h('h3', null, 'Status codes and response flags'), errorBox(e));
    });

  return () => {
    alive = false;
    charts.forEach((c) => c.destroy());
    byClusterChart.chart?.destroy();
  };
}
