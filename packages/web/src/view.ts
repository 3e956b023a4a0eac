import { clear, h } from './dom.js';
import { update, type Route } from './router.js';
import {
  apiRange,
  describeSel,
  formatTime,
  parseTimeSel,
  RANGE_CHOICES,
  REFRESH_CHOICES,
  DEFAULT_REFRESH,
  refreshMs,
  selParams,
  zoneLabel,
  zoomSel,
  type TimeSel,
} from './time.js';

/**
 * What a page gets besides its root and route: the time selection (one model for every page), the zone choice,
 * the live pause and the refresh tick. `main.ts` builds it from the URL and draws the time bar in the header.
 */
export interface PageCtx {
  sel: TimeSel;
  utc: boolean;
  /** `range`/`from`/`to` for the API. */
  api: Record<string, string>;
  /** Live pages: true while the user paused (the page keeps what it shows). */
  paused(): boolean;
  onPause(cb: (paused: boolean) => void): void;
  /** Historical pages: called on the chosen interval (and when the tab becomes visible again). */
  onRefresh(cb: () => void): void;
  /** Zoom the page to a span (drag on a chart). */
  zoom(fromMs: number, toMs: number): void;
  /** Time label for a timestamp in the chosen zone. */
  time(ms: number, o?: { date?: boolean; millis?: boolean; zone?: boolean }): string;
}

/** Which time selections a page can show. */
export type TimeSupport = 'live-only' | 'live-or-range' | 'range';

const UTC_KEY = 'gatescope.utc';
export const utcChosen = (): boolean => localStorage.getItem(UTC_KEY) === '1';

export function buildCtx(
  route: Route,
  support: TimeSupport,
  fallback: string,
): { ctx: PageCtx; error?: string; dispose: () => void } {
  const parsed = parseTimeSel(route.params, { allowLive: support !== 'range', fallback });
  const sel: TimeSel =
    support === 'live-only' ? { kind: 'live' } : parsed.ok ? parsed.value : { kind: 'live' };
  const utc = utcChosen();
  let paused = route.params.get('paused') === '1';
  const pauseCbs: ((p: boolean) => void)[] = [];
  const refreshCbs: (() => void)[] = [];
  const every = refreshMs(sel, route.params.get('refresh'), Date.now());
  const timer = every
    ? setInterval(() => document.hidden || refreshCbs.forEach((cb) => cb()), every)
    : undefined;
  const ctx: PageCtx = {
    sel,
    utc,
    api: apiRange(sel),
    paused: () => paused,
    onPause: (cb) => pauseCbs.push(cb),
    onRefresh: (cb) => refreshCbs.push(cb),
    zoom: (from, to) => {
      const z = zoomSel(from, to);
      if (z) update({ ...selParams(z), paused: null }, false);
    },
    time: (ms, o) => formatTime(ms, utc, o),
  };
  (ctx as PageCtx & { setPaused: (p: boolean) => void }).setPaused = (p) => {
    paused = p;
    update({ paused: p ? '1' : null });
    pauseCbs.forEach((cb) => cb(p));
  };
  return {
    ctx,
    error: parsed.ok || support === 'live-only' ? undefined : parsed.error,
    dispose: () => timer && clearInterval(timer),
  };
}

/** The time bar in the header: live / last N / absolute, refresh interval, pause, local/UTC. */
export function timeBar(
  bar: HTMLElement,
  route: Route,
  ctx: PageCtx,
  support: TimeSupport,
  onZoneChange: () => void,
): void {
  clear(bar);
  const sel = ctx.sel;
  const set = (changes: Record<string, string | null>) => update({ ...changes, paused: null }, false);
  const choices = support === 'range' ? [...RANGE_CHOICES] : ['live', ...RANGE_CHOICES];
  if (support !== 'live-only') {
    bar.append(
      h(
        'div',
        { class: 'range', id: 'range-picker', role: 'group', 'aria-label': 'Time range' },
        choices.map((c) =>
          h(
            'button',
            {
              type: 'button',
              class:
                (sel.kind === 'live' && c === 'live') || (sel.kind === 'relative' && sel.text === c)
                  ? 'active'
                  : '',
              dataset: { range: c },
              onclick: () => set({ range: c, from: null, to: null }),
            },
            c,
          ),
        ),
        absolutePicker(ctx, set),
      ),
    );
  }
  if (sel.kind === 'absolute')
    bar.append(h('span', { class: 'span-label', id: 'range-label' }, describeSel(sel, ctx.utc)));
  if (sel.kind === 'live') {
    const setPaused = (ctx as PageCtx & { setPaused: (p: boolean) => void }).setPaused;
    const button = h(
      'button',
      {
        type: 'button',
        id: 'live-pause',
        class: 'ghost',
        title: 'Pause: keep what is on screen',
        onclick: () => setPaused(!ctx.paused()),
      },
      '',
    );
    const badge = h('span', { id: 'live-badge', class: 'live-badge' });
    const show = (p: boolean) => {
      badge.textContent = p ? 'paused' : 'live';
      badge.classList.toggle('paused', p);
      button.textContent = p ? '▶ Resume' : '❚❚ Pause';
    };
    show(ctx.paused());
    ctx.onPause(show);
    bar.append(badge, button);
  } else if (support !== 'live-only') {
    const current = route.params.get('refresh') ?? (sel.kind === 'relative' ? DEFAULT_REFRESH : 'off');
    bar.append(
      h(
        'label',
        { class: 'refresh', title: 'Re-read the range on this interval' },
        '⟳ ',
        h(
          'select',
          {
            id: 'refresh',
            onchange: (e: Event) => update({ refresh: (e.target as HTMLSelectElement).value }, false),
          },
          REFRESH_CHOICES.map((r) => h('option', { value: r, selected: r === current }, r)),
        ),
      ),
    );
  }
  bar.append(
    h(
      'button',
      {
        type: 'button',
        id: 'zone',
        class: 'ghost',
        title: 'Show times in UTC or in this browser’s zone',
        onclick: () => {
          localStorage.setItem(UTC_KEY, ctx.utc ? '0' : '1');
          onZoneChange();
        },
      },
      zoneLabel(ctx.utc),
    ),
  );
}

/** "Custom…": from/to typed in the shown zone (`2026-05-01 10:00:00`). */
function absolutePicker(ctx: PageCtx, set: (c: Record<string, string | null>) => void): HTMLElement {
  const now = Date.now();
  const span = ctx.sel.kind === 'absolute' ? ctx.sel : { from: now - 3_600_000, to: now };
  const from = h('input', { id: 'abs-from', value: ctx.time(span.from), size: 19, spellcheck: false });
  const to = h('input', { id: 'abs-to', value: ctx.time(span.to), size: 19, spellcheck: false });
  const message = h('span', { class: 'bad-text' });
  const parse = (text: string): number => {
    const m = /^(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d)(?::(\d\d))?$/.exec(text.trim());
    if (!m) return NaN;
    const [y, mo, d, hh, mi, ss] = m.slice(1).map((x) => Number(x ?? 0));
    return ctx.utc ? Date.UTC(y, mo - 1, d, hh, mi, ss) : new Date(y, mo - 1, d, hh, mi, ss).getTime();
  };
  const details = h(
    'details',
    { class: 'abs', id: 'abs-picker' },
    h('summary', { class: ctx.sel.kind === 'absolute' ? 'active' : '' }, 'Custom…'),
    h(
      'form',
      {
        onsubmit: (e: Event) => {
          e.preventDefault();
          const f = parse(from.value);
          const t = parse(to.value);
          if (!Number.isFinite(f) || !Number.isFinite(t)) {
            message.textContent = 'Use YYYY-MM-DD HH:MM:SS';
            return;
          }
          if (f >= t) {
            message.textContent = 'from must be before to';
            return;
          }
          set({ range: null, from: String(f), to: String(t) });
        },
      },
      h('label', null, 'From ', from),
      h('label', null, 'To ', to),
      h('span', { class: 'muted' }, zoneLabel(ctx.utc)),
      h('button', { type: 'submit', id: 'abs-apply' }, 'Apply'),
      message,
    ),
  );
  return details;
}
