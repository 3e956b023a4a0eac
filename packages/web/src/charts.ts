import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { svg } from './dom.js';

export const COLORS = {
  rps: '#3b82f6',
  error: '#ef4444',
  p50: '#22c55e',
  p99: '#f59e0b',
  '1xx': '#a78bfa',
  '2xx': '#22c55e',
  '3xx': '#38bdf8',
  '4xx': '#f59e0b',
  '5xx': '#ef4444',
  none: '#9ca3af',
} as const;

export interface SeriesSpec {
  label: string;
  color: string;
  fill?: boolean;
  value?: (v: number | null) => string;
}

const css = (name: string) =>
  getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';

/**
 * A time-series chart (uPlot) that resizes with its box. `data[0]` is x in seconds, then one array per series.
 * `onPick` gets the clicked point's time (epoch ms), for drill-down to the requests behind it.
 */
export class TimeChart {
  readonly plot: uPlot;
  private readonly ro: ResizeObserver;
  constructor(
    readonly el: HTMLElement,
    series: SeriesSpec[],
    opts: {
      height?: number;
      yFormat?: (v: number) => string;
      stacked?: boolean;
      onPick?: (tsMs: number) => void;
    } = {},
  ) {
    opts.height ??= document.body.classList.contains('kiosk') ? 300 : 180;
    const grid = { stroke: css('--grid'), width: 1 };
    const axis = { stroke: css('--muted'), grid, ticks: grid };
    this.plot = new uPlot(
      {
        width: Math.max(200, el.clientWidth),
        height: opts.height ?? 180,
        legend: { live: true },
        cursor: { drag: { x: false, y: false } },
        scales: {
          x: { time: true },
          y: { range: (_u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] },
        },
        axes: [
          axis,
          {
            ...axis,
            size: 60,
            values: (_u, vals) => vals.map((v) => (opts.yFormat ? opts.yFormat(v) : String(v))),
          },
        ],
        series: [
          {},
          ...series.map((s) => ({
            label: s.label,
            stroke: s.color,
            width: 1.5,
            fill: s.fill ? `${s.color}${opts.stacked ? 'cc' : '22'}` : undefined,
            points: { show: false },
            spanGaps: false,
            value: s.value ? (_u: uPlot, v: number | null) => s.value!(v) : undefined,
          })),
        ],
      },
      [[], ...series.map(() => [])],
      el,
    );
    if (opts.onPick) {
      this.plot.over.style.cursor = 'pointer';
      this.plot.over.addEventListener('click', () => {
        const idx = this.plot.cursor.idx;
        if (idx === null || idx === undefined) return;
        const x = this.plot.data[0][idx];
        if (x !== undefined) opts.onPick!(x * 1000);
      });
    }
    this.ro = new ResizeObserver(() =>
      this.plot.setSize({ width: Math.max(200, el.clientWidth), height: opts.height ?? 180 }),
    );
    this.ro.observe(el);
  }

  setData(data: (number | null)[][]): void {
    this.plot.setData(data as uPlot.AlignedData);
  }

  destroy(): void {
    this.ro.disconnect();
    this.plot.destroy();
  }
}

/** Stack series bottom-up: uPlot draws each cumulative series filled to zero, the top (total) first. */
export function stack(series: number[][]): number[][] {
  const out: number[][] = [];
  let acc = series[0]?.map(() => 0) ?? [];
  for (const s of series) {
    acc = acc.map((a, i) => a + (s[i] ?? 0));
    out.push(acc);
  }
  return out.reverse();
}

/** A tiny inline SVG sparkline (cheaper than a chart per table row). */
export function sparkline(values: number[], color: string, width = 120, height = 24): SVGElement {
  const el = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, class: 'spark' });
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  const pts = values
    .map((v, i) => `${(i * step).toFixed(1)},${(height - 1 - (v / max) * (height - 2)).toFixed(1)}`)
    .join(' ');
  el.appendChild(svg('polyline', { points: pts, fill: 'none', stroke: color, 'stroke-width': 1.5 }));
  return el;
}
