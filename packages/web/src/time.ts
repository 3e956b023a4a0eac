/**
 * The one time model of the UI. Every page reads its time selection from the URL through `parseTimeSel`:
 * - `range=live` (or no range on a live page): the rolling window of the live socket;
 * - `range=5m|15m|1h|6h|24h|7d` (any `<n><s|m|h|d|w>`): the last span, re-read every `refresh`;
 * - `from=<epoch ms>&to=<epoch ms>`: an absolute span (drag-to-zoom on a chart sets it).
 * Times are shown in one format, `YYYY-MM-DD HH:MM:SS` with the zone, local or UTC (the user's choice, kept in
 * localStorage, not the URL: a shared link shows the same span in the reader's zone). Pure: no DOM, unit-tested.
 */
export type TimeSel =
  | { kind: 'live' }
  | { kind: 'relative'; text: string; ms: number }
  | { kind: 'absolute'; from: number; to: number };

export const RANGE_CHOICES = ['5m', '15m', '1h', '6h', '24h', '7d'] as const;
export const REFRESH_CHOICES = ['off', '5s', '10s', '30s', '1m', '5m'] as const;
/** A relative range is refreshed this often unless the URL says otherwise. */
export const DEFAULT_REFRESH = '30s';
/** The API refuses spans over this (packages/query MAX_RANGE_MS). */
export const MAX_SPAN_MS = 400 * 86_400_000;

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `5m`, `1h`, `7d` -> ms; undefined when the text is not a duration. */
export function parseDurationMs(text: string): number | undefined {
  const m = /^(\d{1,6})(s|m|h|d|w)$/.exec(text.trim());
  if (!m) return undefined;
  const ms = Number(m[1]) * UNITS[m[2]];
  return ms > 0 ? ms : undefined;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

function instant(text: string, name: string): Parsed<number> {
  const t = text.trim();
  const ms = /^\d+$/.test(t) ? Number(t) : Date.parse(t);
  if (!Number.isFinite(ms) || ms <= 0)
    return {
      ok: false,
      error: `${name}="${text}" is not a time: use epoch milliseconds or an ISO time with a zone (2026-05-01T10:00:00Z)`,
    };
  return { ok: true, value: ms };
}

/**
 * The time selection of a URL. `allowLive`: the page can show the live socket's rolling window; on other pages
 * `live` falls back to `fallback` (a page that needs the API).
 */
export function parseTimeSel(
  params: URLSearchParams,
  opts: { allowLive: boolean; fallback: string },
): Parsed<TimeSel> {
  const range = params.get('range');
  const from = params.get('from');
  const to = params.get('to');
  if (from !== null || to !== null) {
    if (range !== null && range !== '')
      return { ok: false, error: 'Give either range or from/to in the URL, not both' };
    if (from === null || to === null)
      return { ok: false, error: 'An absolute range needs both from and to (epoch milliseconds)' };
    const f = instant(from, 'from');
    if (!f.ok) return f;
    const t = instant(to, 'to');
    if (!t.ok) return t;
    if (f.value >= t.value) return { ok: false, error: 'from must be before to' };
    if (t.value - f.value > MAX_SPAN_MS) return { ok: false, error: 'The time range is limited to 400 days' };
    return { ok: true, value: { kind: 'absolute', from: f.value, to: t.value } };
  }
  const text = range === null || range === '' ? (opts.allowLive ? 'live' : opts.fallback) : range;
  if (text === 'live') {
    if (opts.allowLive) return { ok: true, value: { kind: 'live' } };
    return parseTimeSel(new URLSearchParams({ range: opts.fallback }), opts);
  }
  const ms = parseDurationMs(text);
  if (ms === undefined)
    return {
      ok: false,
      error: `range="${text}" is not a time range: use live, or a number and a unit s, m, h, d or w (5m, 1h, 7d)`,
    };
  if (ms > MAX_SPAN_MS) return { ok: false, error: 'The time range is limited to 400 days' };
  return { ok: true, value: { kind: 'relative', text, ms } };
}

/** The URL params that express a selection (null removes a param). */
export function selParams(sel: TimeSel): Record<string, string | null> {
  if (sel.kind === 'live') return { range: 'live', from: null, to: null };
  if (sel.kind === 'relative') return { range: sel.text, from: null, to: null };
  return { range: null, from: String(Math.round(sel.from)), to: String(Math.round(sel.to)) };
}

/** The API's query parameters for a selection (live reads the last 15 minutes where an API call is needed). */
export function apiRange(sel: TimeSel): Record<string, string> {
  if (sel.kind === 'live') return { range: '15m' };
  if (sel.kind === 'relative') return { range: sel.text };
  return { from: String(Math.round(sel.from)), to: String(Math.round(sel.to)) };
}

/** Absolute bounds of a selection at `now` (live: the socket's chart history). */
export function bounds(sel: TimeSel, now: number, liveHistoryMs = 15 * 60_000): { from: number; to: number } {
  if (sel.kind === 'absolute') return { from: sel.from, to: sel.to };
  const span = sel.kind === 'live' ? liveHistoryMs : sel.ms;
  return { from: now - span, to: now };
}

/** How often a selection is re-read: off for a span that has ended, the chosen interval otherwise. */
export function refreshMs(sel: TimeSel, refresh: string | null, now: number): number | undefined {
  if (sel.kind === 'live') return undefined; // the socket pushes
  const text = refresh ?? (sel.kind === 'relative' ? DEFAULT_REFRESH : 'off');
  if (text === 'off') return undefined;
  if (sel.kind === 'absolute' && sel.to < now - 60_000) return undefined;
  return parseDurationMs(text);
}

/** A short words-only description: "live", "last 1h", or the absolute span. */
export function describeSel(sel: TimeSel, utc: boolean): string {
  if (sel.kind === 'live') return 'live';
  if (sel.kind === 'relative') return `last ${sel.text}`;
  return formatSpan(sel.from, sel.to, utc);
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** `+01:00`, or `Z`-free `UTC` label for the zone the times are shown in. */
export function zoneLabel(utc: boolean, at = Date.now()): string {
  if (utc) return 'UTC';
  const off = -new Date(at).getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const a = Math.abs(off);
  return `UTC${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

export interface TimeParts {
  y: number;
  mo: number;
  d: number;
  h: number;
  mi: number;
  s: number;
  ms: number;
}
export function parts(ms: number, utc: boolean): TimeParts {
  const t = new Date(ms);
  return utc
    ? {
        y: t.getUTCFullYear(),
        mo: t.getUTCMonth() + 1,
        d: t.getUTCDate(),
        h: t.getUTCHours(),
        mi: t.getUTCMinutes(),
        s: t.getUTCSeconds(),
        ms: t.getUTCMilliseconds(),
      }
    : {
        y: t.getFullYear(),
        mo: t.getMonth() + 1,
        d: t.getDate(),
        h: t.getHours(),
        mi: t.getMinutes(),
        s: t.getSeconds(),
        ms: t.getMilliseconds(),
      };
}

/**
 * The one time format: `2026-05-01 10:04:05` (`date: false` drops the day, `millis: true` adds `.123`,
 * `zone: true` appends the zone label).
 */
export function formatTime(
  ms: number,
  utc: boolean,
  o: { date?: boolean; millis?: boolean; zone?: boolean } = {},
): string {
  if (!Number.isFinite(ms)) return '–';
  const p = parts(ms, utc);
  let s = `${pad(p.h)}:${pad(p.mi)}:${pad(p.s)}`;
  if (o.millis) s += `.${pad(p.ms, 3)}`;
  if (o.date !== false) s = `${p.y}-${pad(p.mo)}-${pad(p.d)} ${s}`;
  if (o.zone) s += ` ${zoneLabel(utc, ms)}`;
  return s;
}

/** `2026-05-01 10:00:00 → 11:00:00 UTC+02:00` (the day repeated only when it changes). */
export function formatSpan(from: number, to: number, utc: boolean): string {
  const a = parts(from, utc);
  const b = parts(to, utc);
  const sameDay = a.y === b.y && a.mo === b.mo && a.d === b.d;
  return `${formatTime(from, utc)} → ${formatTime(to, utc, { date: !sameDay })} ${zoneLabel(utc, from)}`;
}

/** ClickHouse's `2026-05-01 10:00:00.123456` (UTC, no zone), ISO text or epoch ms -> epoch ms. */
export function parseServerTime(v: string | number): number {
  if (typeof v === 'number') return v;
  const text = /Z|[+-]\d\d:?\d\d$/.test(v) ? v : `${v.replace(' ', 'T')}Z`;
  return Date.parse(text.replace(/(\.\d{3})\d+/, '$1'));
}

/**
 * Index of the first bucket that is still filling: a bucket is complete once its end is `lagMs` in the past
 * (entries are logged at completion and stored in batches). Buckets from there on are drawn as incomplete.
 */
export function firstIncomplete(
  bucketStartsMs: readonly number[],
  stepMs: number,
  now: number,
  lagMs = 5000,
): number {
  let i = bucketStartsMs.length;
  while (i > 0 && bucketStartsMs[i - 1] + stepMs > now - lagMs) i--;
  return i;
}

/** A zoom selection on a chart (pixels -> ms) as a selection; tiny drags (< 1 s) are ignored. */
export function zoomSel(fromMs: number, toMs: number): TimeSel | undefined {
  const from = Math.min(fromMs, toMs);
  const to = Math.max(fromMs, toMs);
  if (!Number.isFinite(from) || to - from < 1000) return undefined;
  return { kind: 'absolute', from: Math.floor(from), to: Math.ceil(to) };
}

/**
 * Time-axis tick labels in the one format: `HH:MM` (or `HH:MM:SS` under a minute apart), the date `MM-DD` added
 * where the day changes, days alone for ticks a day or more apart. `splitsS`: tick times in seconds.
 */
export function axisLabels(splitsS: readonly number[], incrS: number, utc: boolean): string[] {
  return splitsS.map((v, i) => {
    const p = parts(v * 1000, utc);
    const day = `${pad(p.mo)}-${pad(p.d)}`;
    if (incrS >= 86_400) return day;
    const t = incrS < 60 ? `${pad(p.h)}:${pad(p.mi)}:${pad(p.s)}` : `${pad(p.h)}:${pad(p.mi)}`;
    const prev = i > 0 ? parts(splitsS[i - 1] * 1000, utc) : undefined;
    return prev && prev.d !== p.d ? `${day} ${t}` : t;
  });
}
