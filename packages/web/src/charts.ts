import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { svg } from './dom.js';
import { axisLabels, formatTime } from './time.js';

export const COLORS = {
  rps: '#3b82f6',
  error: '#ef4444',
  p50: '#22c55e',
  p90: '#a855f7',
  p99: '#f59e0b',
  '1xx': '#a78bfa',
  '2xx': '#22c55e',
  '3xx': '#38bdf8',
  '4xx': '#f59e0b',
  '5xx': '#ef4444',
  none: '#9ca3af',
} as const;

/** Status classes in reading order, the one order of every legend and table. */
export const CLASS_ORDER = ['1xx', '2xx', '3xx', '4xx', '5xx', 'none'] as const;

export interface SeriesSpec {
  label: string;
  color: string;
  fill?: boolean;
  value?: (v: number | null) => string;
}

export interface ChartOptions {
  height?: number;
  yFormat?: (v: number) => string;
  /** Series are cumulative (drawn filled to zero, each over the previous): hover shows `own` values. */
  stacked?: boolean;
  /** Click on a point: its time (epoch ms), for drill-down to the requests behind it. */
  onPick?: (tsMs: number) => void;
  /** Drag across the chart: the span chosen (epoch ms), to zoom the page's range. */
  onZoom?: (fromMs: number, toMs: number) => void;
  utc?: boolean;
}

const css = (name: string) =>
  getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';

/** Every chart of a page moves its crosshair with the others (pages are rebuilt on navigation). */
export const SYNC_KEY = 'gatescope-page';

/**
 * A time-series chart (uPlot) that resizes with its box. `setData(x in seconds, ys, { incompleteFrom })`: buckets
 * from `incompleteFrom` on are still filling and are drawn dashed, not as a drop. Shared crosshair across the page,
 * drag to zoom, click to drill down.
 */
export class TimeChart {
  readonly plot: uPlot;
  private readonly ro: ResizeObserver;
  private raw: (number | null)[][] = [[]];
  private own: (number | null)[][] | undefined;
  private incompleteFrom = Infinity;
  private zoomedAt = 0;
  constructor(
    readonly el: HTMLElement,
    readonly series: SeriesSpec[],
    opts: ChartOptions = {},
  ) {
    const height = opts.height ?? (document.body.classList.contains('kiosk') ? 300 : 180);
    const grid = { stroke: css('--grid'), width: 1 };
    const axis = { stroke: css('--muted'), grid, ticks: grid };
    const utc = opts.utc ?? false;
    const valueAt = (si: number, idx: number | null, fallback: number | null) => {
      if (idx === null || idx === undefined) return fallback;
      const src = this.own ?? this.raw.slice(1);
      return src[si - 1]?.[idx] ?? null;
    };
    this.plot = new uPlot(
      {
        width: Math.max(200, el.clientWidth),
        height,
        legend: { live: true },
        tzDate: utc ? (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC') : (ts) => new Date(ts * 1e3),
        cursor: {
          sync: { key: SYNC_KEY, setSeries: false },
          drag: { x: !!opts.onZoom, y: false, setScale: false },
        },
        scales: {
          x: { time: true },
          y: { range: (_u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] },
        },
        axes: [
          { ...axis, values: (_u, splits, _ai, _space, incr) => axisLabels(splits, incr, utc) },
          {
            ...axis,
            size: 64,
            values: (_u, vals) => vals.map((v) => (opts.yFormat ? opts.yFormat(v) : String(v))),
          },
        ],
        series: [
          {
            value: (_u, v) => (v === null || v === undefined ? '–' : formatTime(v * 1000, utc)),
          },
          ...series.map((s, i) => ({
            label: s.label,
            stroke: s.color,
            width: 1.5,
            fill: s.fill ? `${s.color}${opts.stacked ? 'cc' : '22'}` : undefined,
            points: { show: false },
            spanGaps: false,
            value: (_u: uPlot, v: number | null, _si: number, idx: number | null) => {
              const shown = valueAt(i + 1, idx, v);
              const text = s.value ? s.value(shown) : shown === null ? '–' : String(+shown.toFixed(3));
              return idx !== null && idx >= this.incompleteFrom ? `${text} (filling)` : text;
            },
          })),
        ],
        hooks: {
          draw: [(u) => this.drawIncomplete(u)],
          setSelect: [
            (u) => {
              if (!opts.onZoom || u.select.width < 4) return;
              const a = u.posToVal(u.select.left, 'x');
              const b = u.posToVal(u.select.left + u.select.width, 'x');
              this.zoomedAt = Date.now();
              u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
              opts.onZoom(a * 1000, b * 1000);
            },
          ],
        },
      },
      [[], ...series.map(() => [])],
      el,
    );
    if (opts.onPick) {
      this.plot.over.classList.add('pickable');
      this.plot.over.addEventListener('click', () => {
        if (Date.now() - this.zoomedAt < 500) return;
        const idx = this.plot.cursor.idx;
        if (idx === null || idx === undefined) return;
        const x = this.plot.data[0][idx];
        if (x !== undefined) opts.onPick!(x * 1000);
      });
    }
    this.ro = new ResizeObserver(() => this.plot.setSize({ width: Math.max(200, el.clientWidth), height }));
    this.ro.observe(el);
  }

  /**
   * `data[0]`: x in seconds; then one array per series. `own`: for stacked charts, each series' own values (the
   * legend shows them). `incompleteFrom`: index of the first bucket still filling.
   */
  setData(data: (number | null)[][], o: { incompleteFrom?: number; own?: (number | null)[][] } = {}): void {
    this.raw = data;
    this.own = o.own;
    const n = data[0]?.length ?? 0;
    this.incompleteFrom =
      o.incompleteFrom !== undefined && o.incompleteFrom < n ? o.incompleteFrom : Infinity;
    const drawn =
      this.incompleteFrom === Infinity
        ? data
        : data.map((col, i) => (i === 0 ? col : col.map((v, j) => (j >= this.incompleteFrom ? null : v))));
    this.plot.setData(drawn as uPlot.AlignedData);
  }

  /** The still-filling buckets: dashed, joined to the last complete point, over a faint band. */
  private drawIncomplete(u: uPlot): void {
    const start = this.incompleteFrom;
    const xs = this.raw[0] as number[];
    if (start === Infinity || !xs || start >= xs.length) return;
    const ctx = u.ctx;
    const left = u.valToPos(xs[start], 'x', true);
    ctx.save();
    ctx.fillStyle = css('--grid') + '55';
    ctx.fillRect(left, u.bbox.top, u.bbox.left + u.bbox.width - left, u.bbox.height);
    ctx.setLineDash([4, 4]);
    ctx.lineWidth = 1.5 * devicePixelRatio;
    for (let si = 1; si < this.raw.length; si++) {
      if (!u.series[si].show) continue;
      ctx.strokeStyle = this.series[si - 1].color;
      ctx.beginPath();
      let moved = false;
      for (let j = Math.max(0, start - 1); j < xs.length; j++) {
        const v = this.raw[si][j];
        if (v === null || v === undefined) continue;
        const x = u.valToPos(xs[j], 'x', true);
        const y = u.valToPos(v, 'y', true);
        if (!moved) ctx.moveTo(x, y);
        else ctx.lineTo(x, y);
        moved = true;
      }
      ctx.stroke();
    }
    ctx.restore();
  }

  destroy(): void {
    this.ro.disconnect();
    this.plot.destroy();
  }
}

/**
 * Stack series bottom-up for a filled stacked chart, keeping the series order of the legend: series i is drawn
 * as the sum of series i..n, so the first series is the top band and earlier series are painted first.
 */
export function stack(series: number[][]): number[][] {
  const out: number[][] = [];
  let acc = series[0]?.map(() => 0) ?? [];
  for (let i = series.length - 1; i >= 0; i--) {
    acc = acc.map((a, j) => a + (series[i][j] ?? 0));
    out.unshift(acc);
  }
  return out;
}

/** A tiny inline SVG sparkline (cheaper than a chart per table row). */
export function sparkline(values: number[], color: string, width = 120, height = 24): SVGElement {
  return sparklines([{ values, color }], width, height);
}

/**
 * Several lines in one sparkline on one scale (received vs stored: a gap between them is what went missing).
 * Later lines are drawn over earlier ones; `dash` draws a line dashed so two equal lines stay readable. Points
 * from `incompleteFrom` on are still filling: drawn faint, so a filling bucket does not read as a drop.
 */
export function sparklines(
  lines: { values: number[]; color: string; dash?: boolean }[],
  width = 120,
  height = 24,
  o: { incompleteFrom?: number } = {},
): SVGElement {
  const el = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, class: 'spark' });
  const max = Math.max(1, ...lines.flatMap((l) => l.values));
  for (const { values, color, dash } of lines) {
    const step = values.length > 1 ? width / (values.length - 1) : width;
    const point = (v: number, i: number) =>
      `${(i * step).toFixed(1)},${(height - 1 - (v / max) * (height - 2)).toFixed(1)}`;
    const cut = Math.min(values.length, Math.max(1, o.incompleteFrom ?? values.length));
    const draw = (from: number, to: number, faint: boolean) => {
      if (to - from < 1) return;
      const attrs: Record<string, string | number> = {
        points: values
          .slice(from, to)
          .map((v, i) => point(v, from + i))
          .join(' '),
        fill: 'none',
        stroke: color,
        'stroke-width': 1.5,
      };
      if (dash) attrs['stroke-dasharray'] = '3 2';
      if (faint) attrs['stroke-opacity'] = 0.4;
      el.appendChild(svg('polyline', attrs));
    };
    draw(0, cut, false);
    if (cut < values.length) draw(cut - 1, values.length, true);
  }
  return el;
}
