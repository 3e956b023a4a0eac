import { get } from '../api.js';
import { COLORS, TimeChart } from '../charts.js';
import { errorBox, label, markFirstData, tableWrap } from '../common.js';
import { clear, h } from '../dom.js';
import { fmtCount, fmtMs, fmtNum, fmtPct, fmtPp, fmtRatio, fmtSigned, shortCluster } from '../format.js';
import { href, update, type Route } from '../router.js';
import { orList, suggest } from '../suggest.js';
import { describeSel, firstIncomplete } from '../time.js';
import type { PageCtx } from '../view.js';
import { metricColumns, metricOf, type Timeseries } from './series.js';

/** One upstream cluster of `GET /api/v1/routes/{route}/canary`. */
export interface CanaryCluster {
  upstream_cluster: string;
  baseline: boolean;
  requests: number;
  share: number;
  error_rate: number;
  p50_ms: number | null;
  p90_ms: number | null;
  p99_ms: number | null;
  /** Against the baseline; null on the baseline itself and on the no-upstream row. */
  vs_baseline: null | {
    share_diff: number;
    share_ratio: number | null;
    error_rate_diff: number;
    error_rate_ratio: number | null;
    p50_ms_diff: number | null;
    p50_ratio: number | null;
    p90_ms_diff: number | null;
    p90_ratio: number | null;
    p99_ms_diff: number | null;
    p99_ratio: number | null;
  };
}
export interface Canary {
  route: string;
  requests: number;
  baseline: string | null;
  baseline_chosen_by: 'user' | 'name' | 'largest' | 'none';
  clusters: CanaryCluster[];
  verdict: string;
  slower: string | null;
}

const NO_UPSTREAM = '(none: no upstream: UH / NR / direct response)';

/** Route detail: history from the query API, the canary view that decides, status codes and flags. */
export function routeDetail(root: HTMLElement, route: Route, ctx: PageCtx): () => void {
  const name = route.params.get('name') ?? '';
  const baselineParam = route.params.get('baseline') ?? '';
  const base = { ...ctx.api, route: name };
  const charts: TimeChart[] = [];
  const box = (id: string, title: string) => {
    const el = h('div', { class: 'chart', id });
    return { el, wrap: h('section', { class: 'panel' }, h('h3', null, title), el) };
  };
  const notice = h('div', { id: 'route-notice' });
  root.append(
    h(
      'div',
      { class: 'title' },
      h('h1', null, 'Route ', h('code', null, name || '—')),
      name && h('a', { href: href('requests', { route: name }) }, 'Requests →'),
      name && h('a', { href: href('overview', { route: name, range: 'live' }) }, 'Live →'),
      name && h('a', { href: href('map', { route: name }) }, 'Map →'),
    ),
    notice,
  );
  if (!name) {
    // A name-less route page would show every route's traffic under one title: ask for a route instead.
    notice.append(
      h(
        'div',
        { class: 'empty', id: 'empty-route' },
        h('h2', null, 'No route given'),
        h('p', null, 'Pick one on the ', h('a', { href: href('routes') }, 'Routes'), ' page.'),
      ),
    );
    void get<{ values: { value: string }[] }>('/api/v1/values/route', { ...ctx.api, limit: 20 })
      .then((r) =>
        notice
          .querySelector('.empty')
          ?.append(
            h(
              'p',
              null,
              'Routes in this range: ',
              ...r.values
                .filter((v) => v.value)
                .flatMap((v, i) => [
                  i ? ', ' : '',
                  h('a', { href: href('route', { name: v.value }) }, v.value),
                ]),
            ),
          ),
      )
      .catch(() => {});
    return () => {};
  }

  const traffic = box('detail-rps', 'Requests / s');
  const errors = box('detail-errors', '5xx error rate');
  const latency = box('detail-latency', 'Latency');
  const byCluster = box('detail-clusters', 'p99 by upstream cluster');
  const split = h(
    'section',
    { class: 'panel', id: 'split' },
    h('h3', null, 'Canary: upstream clusters against the baseline'),
    h('p', { class: 'muted' }, 'Loading…'),
  );
  const status = h(
    'section',
    { class: 'panel', id: 'status' },
    h('h3', null, 'Status codes and response flags'),
    h('p', { class: 'muted' }, 'Loading…'),
  );
  root.append(
    h('div', { class: 'grid2' }, traffic.wrap, errors.wrap, latency.wrap, byCluster.wrap),
    split,
    status,
  );
  let stepMs = 60_000;
  const pick = (ts: number) => (location.hash = href('requests', { route: name, from: ts, to: ts + stepMs }));
  const common = { onPick: pick, onZoom: ctx.zoom, utc: ctx.utc };
  const rps = new TimeChart(
    traffic.el,
    [{ label: 'rps', color: COLORS.rps, fill: true, value: (v) => fmtNum(v, 2) }],
    common,
  );
  const err = new TimeChart(
    errors.el,
    [
      {
        label: '5xx',
        color: COLORS.error,
        fill: true,
        value: (v) => (v === null ? '–' : `${v.toFixed(2)} %`),
      },
    ],
    { ...common, yFormat: (v) => `${v} %` },
  );
  const lat = new TimeChart(
    latency.el,
    [
      { label: 'p50', color: COLORS.p50, value: fmtMs },
      { label: 'p90', color: COLORS.p90, value: fmtMs },
      { label: 'p99', color: COLORS.p99, value: fmtMs },
    ],
    { ...common, yFormat: (v) => `${v} ms` },
  );
  charts.push(rps, err, lat);
  let clusterChart: TimeChart | undefined;
  let alive = true;

  const loadSeries = async () => {
    const ts = await get<Timeseries>('/api/v1/timeseries', {
      ...base,
      metrics: 'rps,error_rate,p50_ms,p90_ms,p99_ms',
    });
    if (!alive) return;
    stepMs = ts.step_s * 1000;
    const c = metricColumns(ts);
    const x = c.x.map((t) => t / 1000);
    const incompleteFrom = firstIncomplete(c.x, stepMs, Date.now());
    rps.setData([x, c.get('rps')], { incompleteFrom });
    err.setData([x, c.get('error_rate').map((v) => (v === null ? null : v * 100))], { incompleteFrom });
    lat.setData([x, c.get('p50_ms'), c.get('p90_ms'), c.get('p99_ms')], { incompleteFrom });
    traffic.el.dataset.points = String(x.length);
    traffic.el.dataset.from = String(c.x[0] ?? 0);
    traffic.el.dataset.to = String(c.x.at(-1) ?? 0);
    markFirstData();
  };
  const loadClusters = async () => {
    const ts = await get<Timeseries>('/api/v1/timeseries', {
      ...base,
      metrics: 'p99_ms',
      group_by: 'upstream_cluster',
      limit: 6,
    });
    if (!alive) return;
    const series = ts.series.filter((s) => s.labels.upstream_cluster);
    const palette = ['#3b82f6', '#a855f7', '#14b8a6', '#f97316', '#ec4899', '#84cc16'];
    clusterChart?.destroy();
    clear(byCluster.el);
    if (series.length === 0)
      return byCluster.el.append(h('p', { class: 'muted' }, 'No upstream cluster answered in this range.'));
    clusterChart = new TimeChart(
      byCluster.el,
      series.map((s, i) => ({
        label: `${shortCluster(s.labels.upstream_cluster)} ${metricOf(s.labels).replace('_ms', '')}`,
        color: palette[i % palette.length],
        value: fmtMs,
      })),
      { ...common, yFormat: (v) => `${v} ms` },
    );
    const xs = series[0].points.map(([t]) => t);
    clusterChart.setData([xs.map((t) => t / 1000), ...series.map((s) => s.points.map(([, v]) => v))], {
      incompleteFrom: firstIncomplete(xs, ts.step_s * 1000, Date.now()),
    });
  };

  const loadCanary = async () => {
    const c = await get<Canary>(`/api/v1/routes/${encodeURIComponent(name)}/canary`, {
      ...ctx.api,
      baseline: baselineParam || undefined,
    });
    if (!alive) return;
    clear(split);
    split.append(h('h3', null, 'Canary: upstream clusters against the baseline'));
    if (c.requests === 0) {
      clear(split);
      await showUnknown();
      return;
    }
    const clusters = c.clusters.filter((x) => x.upstream_cluster);
    const choose = h(
      'select',
      {
        id: 'baseline',
        onchange: (e: Event) => update({ baseline: (e.target as HTMLSelectElement).value || null }, false),
      },
      h('option', { value: '' }, 'automatic'),
      clusters.map((x) =>
        h(
          'option',
          { value: x.upstream_cluster, selected: baselineParam === x.upstream_cluster },
          shortCluster(x.upstream_cluster),
        ),
      ),
    );
    const chosenBy = {
      user: 'chosen by you',
      name: 'chosen by name: the stable one',
      largest: 'the busiest cluster',
      none: '',
    }[c.baseline_chosen_by];
    split.append(
      h(
        'div',
        { class: 'canary-head' },
        h('label', null, 'Baseline ', choose),
        h('span', { class: 'muted' }, c.baseline ? chosenBy : ''),
      ),
      h('p', { class: `verdict ${c.slower ? 'worse' : ''}`, id: 'verdict' }, c.verdict),
    );
    const cell = (value: string, diff?: string, ratio?: string, worse?: boolean | null) =>
      h(
        'td',
        null,
        h('div', null, value),
        diff !== undefined
          ? h(
              'div',
              { class: `delta ${worse === null || worse === undefined ? '' : worse ? 'worse' : 'better'}` },
              diff,
              ratio ? ` ${ratio}` : '',
            )
          : null,
      );
    const isWorse = (d: number | null | undefined, eps = 0) =>
      d === null || d === undefined || Math.abs(d) <= eps ? null : d > 0;
    const table = h(
      'table',
      { class: 'data split', id: 'canary-table' },
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          ['Upstream cluster', 'Requests', 'Share', '5xx', 'p50', 'p90', 'p99'].map((t) => h('th', null, t)),
        ),
      ),
      h(
        'tbody',
        null,
        c.clusters.map((r) => {
          const v = r.vs_baseline;
          const nameCell = h(
            'td',
            { title: r.upstream_cluster || 'requests that reached no upstream cluster' },
            r.upstream_cluster ? shortCluster(r.upstream_cluster) : NO_UPSTREAM,
            r.baseline ? h('span', { class: 'badge base' }, 'baseline') : null,
          );
          return h(
            'tr',
            {
              dataset: { cluster: r.upstream_cluster, share: String(r.share), baseline: String(r.baseline) },
            },
            nameCell,
            cell(fmtCount(r.requests)),
            h(
              'td',
              null,
              h(
                'div',
                { class: 'share' },
                h('div', { class: 'bar', style: `width:${(r.share * 100).toFixed(1)}%` }),
                h('span', null, fmtPct(r.share)),
              ),
              v ? h('div', { class: 'delta' }, fmtPp(v.share_diff)) : null,
            ),
            v
              ? cell(
                  fmtPct(r.error_rate),
                  fmtPp(v.error_rate_diff),
                  fmtRatio(v.error_rate_ratio),
                  isWorse(v.error_rate_diff, 0.0001),
                )
              : cell(fmtPct(r.error_rate)),
            v
              ? cell(
                  fmtMs(r.p50_ms),
                  fmtSigned(v.p50_ms_diff, fmtMs),
                  fmtRatio(v.p50_ratio),
                  isWorse(v.p50_ms_diff, 0.5),
                )
              : cell(fmtMs(r.p50_ms)),
            v
              ? cell(
                  fmtMs(r.p90_ms),
                  fmtSigned(v.p90_ms_diff, fmtMs),
                  fmtRatio(v.p90_ratio),
                  isWorse(v.p90_ms_diff, 0.5),
                )
              : cell(fmtMs(r.p90_ms)),
            v
              ? cell(
                  fmtMs(r.p99_ms),
                  fmtSigned(v.p99_ms_diff, fmtMs),
                  fmtRatio(v.p99_ratio),
                  isWorse(v.p99_ms_diff, 0.5),
                )
              : cell(fmtMs(r.p99_ms)),
          );
        }),
      ),
    );
    split.append(
      tableWrap(table),
      h(
        'p',
        { class: 'muted small' },
        'Under each value: the difference from the baseline and the ratio to it. The no-upstream row has no upstream to compare.',
      ),
    );
  };

  /** The route had no requests in the range: say so, and name the routes that did. */
  const showUnknown = async () => {
    const known = await get<{ values: { value: string; requests: number }[] }>('/api/v1/values/route', {
      ...ctx.api,
      limit: 1000,
    });
    const names = known.values.map((v) => v.value).filter(Boolean);
    const close = suggest(name, names);
    const span = describeSel(ctx.sel, ctx.utc);
    const msg = h(
      'div',
      { class: 'empty', id: 'empty-route' },
      h('h2', null, `No route named “${name}” in the ${span.startsWith('last') ? span : `range ${span}`}`),
      close.length
        ? h(
            'p',
            null,
            'Did you mean ',
            ...close.flatMap((c, i) => [
              i ? (i === close.length - 1 ? ' or ' : ', ') : '',
              h('a', { href: href('route', { name: c }) }, c),
            ]),
            '?',
          )
        : h(
            'p',
            null,
            names.length
              ? `Routes with traffic in this range: ${orList(names.slice(0, 8))}.`
              : 'No route had traffic in this range: widen the range above.',
          ),
    );
    notice.replaceChildren(msg);
    for (const el of [split, status]) el.hidden = true;
    root.querySelectorAll('.grid2').forEach((g) => ((g as HTMLElement).hidden = true));
  };

  const loadStatus = async () => {
    const body = await get<{ rows: Record<string, unknown>[] }>('/api/v1/status', base);
    if (!alive) return;
    clear(status);
    status.append(h('h3', null, 'Status codes and response flags'));
    if (body.rows.length === 0)
      return status.append(h('p', { class: 'muted' }, 'No requests in this range.'));
    const cols = ['response_code', 'status_class', 'response_flags', 'requests', 'share'];
    const t = h(
      'table',
      { class: 'data' },
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          cols.map((c) => h('th', null, label(c))),
        ),
      ),
      h(
        'tbody',
        null,
        body.rows.map((r) =>
          h(
            'tr',
            { class: `status-${String(r.status_class)}` },
            h(
              'td',
              null,
              h(
                'a',
                { href: href('requests', { route: name, response_code: String(r.response_code) }) },
                String(r.response_code || '— (none)'),
              ),
            ),
            h('td', null, String(r.status_class)),
            h('td', null, (r.response_flags as string[]).join(', ') || '–'),
            h('td', null, fmtCount(Number(r.requests))),
            h('td', null, fmtPct(Number(r.share))),
          ),
        ),
      ),
    );
    status.append(tableWrap(t));
  };

  const guard = (p: Promise<unknown>, where: HTMLElement) =>
    p.catch((e) => {
      if (!alive) return;
      where.querySelector('.error')?.remove();
      where.append(errorBox(e));
    });
  const load = () => {
    void guard(loadCanary(), split);
    void guard(loadSeries(), traffic.wrap);
    void guard(loadClusters(), byCluster.wrap);
    void guard(loadStatus(), status);
  };
  load();
  ctx.onRefresh(load);
  return () => {
    alive = false;
    charts.forEach((c) => c.destroy());
    clusterChart?.destroy();
  };
}
