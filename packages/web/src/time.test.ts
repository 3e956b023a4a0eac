import { describe, expect, it } from 'vitest';
import {
  apiRange,
  axisLabels,
  describeSel,
  firstIncomplete,
  formatSpan,
  formatTime,
  parseTimeSel,
  refreshMs,
  selParams,
  zoneLabel,
  zoomSel,
} from './time.js';

const q = (s: string) => new URLSearchParams(s);
const live = { allowLive: true, fallback: '1h' };
const hist = { allowLive: false, fallback: '1h' };

describe('time model', () => {
  it('reads live, relative and absolute selections from the URL', () => {
    expect(parseTimeSel(q(''), live)).toEqual({ ok: true, value: { kind: 'live' } });
    expect(parseTimeSel(q('range=live'), live)).toEqual({ ok: true, value: { kind: 'live' } });
    expect(parseTimeSel(q('range=6h'), live)).toEqual({
      ok: true,
      value: { kind: 'relative', text: '6h', ms: 6 * 3_600_000 },
    });
    expect(parseTimeSel(q('from=1000&to=5000'), live)).toEqual({
      ok: true,
      value: { kind: 'absolute', from: 1000, to: 5000 },
    });
  });

  it('a page that cannot be live falls back to its own range', () => {
    expect(parseTimeSel(q('range=live'), hist)).toEqual({
      ok: true,
      value: { kind: 'relative', text: '1h', ms: 3_600_000 },
    });
    expect(parseTimeSel(q(''), hist)).toMatchObject({ ok: true, value: { kind: 'relative', text: '1h' } });
  });

  it('says what is wrong with a range it cannot mean, once', () => {
    const bad = parseTimeSel(q('range=banana'), live);
    expect(bad).toEqual({ ok: false, error: expect.stringContaining('range="banana" is not a time range') });
    expect(parseTimeSel(q('from=5000&to=1000'), live)).toEqual({
      ok: false,
      error: 'from must be before to',
    });
    expect(parseTimeSel(q('from=1000'), live)).toMatchObject({ ok: false });
    expect(parseTimeSel(q('range=1h&from=1&to=2'), live)).toMatchObject({ ok: false });
    expect(parseTimeSel(q('range=500d'), live)).toMatchObject({
      ok: false,
      error: expect.stringContaining('400 days'),
    });
  });

  it('round-trips through URL params and gives the API its params', () => {
    for (const s of ['range=live', 'range=15m', 'from=1700000000000&to=1700000600000']) {
      const sel = parseTimeSel(q(s), live);
      if (!sel.ok) throw new Error(sel.error);
      const back = new URLSearchParams();
      for (const [k, v] of Object.entries(selParams(sel.value))) if (v !== null) back.set(k, v);
      expect(parseTimeSel(back, live)).toEqual(sel);
    }
    expect(apiRange({ kind: 'relative', text: '7d', ms: 0 })).toEqual({ range: '7d' });
    expect(apiRange({ kind: 'absolute', from: 1, to: 2 })).toEqual({ from: '1', to: '2' });
  });

  it('refreshes relative ranges by default, absolute ones that have ended never, live never (the socket pushes)', () => {
    const now = 10_000_000;
    expect(refreshMs({ kind: 'relative', text: '1h', ms: 1 }, null, now)).toBe(30_000);
    expect(refreshMs({ kind: 'relative', text: '1h', ms: 1 }, '5s', now)).toBe(5_000);
    expect(refreshMs({ kind: 'relative', text: '1h', ms: 1 }, 'off', now)).toBeUndefined();
    expect(refreshMs({ kind: 'absolute', from: 0, to: now - 3_600_000 }, '10s', now)).toBeUndefined();
    expect(refreshMs({ kind: 'absolute', from: 0, to: now }, '10s', now)).toBe(10_000);
    expect(refreshMs({ kind: 'live' }, '10s', now)).toBeUndefined();
  });

  it('formats every time the same way, with the zone', () => {
    const t = Date.UTC(2026, 4, 1, 9, 4, 5, 123);
    expect(formatTime(t, true)).toBe('2026-05-01 09:04:05');
    expect(formatTime(t, true, { millis: true, date: false })).toBe('09:04:05.123');
    expect(formatTime(t, true, { zone: true })).toBe('2026-05-01 09:04:05 UTC');
    expect(zoneLabel(false)).toMatch(/^UTC[+-]\d\d:\d\d$/);
    expect(formatSpan(t, t + 3_600_000, true)).toBe('2026-05-01 09:04:05 → 10:04:05 UTC');
    expect(formatSpan(t, t + 86_400_000, true)).toBe('2026-05-01 09:04:05 → 2026-05-02 09:04:05 UTC');
    expect(describeSel({ kind: 'relative', text: '1h', ms: 1 }, true)).toBe('last 1h');
  });

  it('labels axis ticks in 24 h with seconds when close and the date where the day changes', () => {
    const s = Date.UTC(2026, 4, 1, 23, 58) / 1000;
    expect(axisLabels([s, s + 60, s + 120], 60, true)).toEqual(['23:58', '23:59', '05-02 00:00']);
    expect(axisLabels([s, s + 10], 10, true)).toEqual(['23:58:00', '23:58:10']);
    expect(axisLabels([s], 86_400, true)).toEqual(['05-01']);
  });

  it('marks the buckets still filling: from the first whose end is not lag in the past', () => {
    const now = 1_000_000;
    // 880 s–940 s ended 60 s ago: complete; 940 s–1000 s ends now, within the 5 s lag: filling; and the next.
    const starts = [880_000, 940_000, 1_000_000];
    expect(firstIncomplete(starts, 60_000, now)).toBe(1);
    expect(firstIncomplete([880_000, 935_000], 60_000, now)).toBe(2);
    expect(firstIncomplete([0, 60_000], 60_000, 1_000_000)).toBe(2);
    expect(firstIncomplete([996_000, 997_000, 998_000, 999_000], 1000, now, 2000)).toBe(2);
  });

  it('turns a drag into an absolute span, ignoring clicks', () => {
    expect(zoomSel(5000.4, 1000.2)).toEqual({ kind: 'absolute', from: 1000, to: 5001 });
    expect(zoomSel(1000, 1500)).toBeUndefined();
  });
});
