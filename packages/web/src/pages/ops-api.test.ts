import { describe, expect, it } from 'vitest';
import { fmtAge } from '../format.js';
import { alertHref, fmtCondition, fmtLabels, fmtMetric, readAlert, readRule } from './alerts-api.js';
import { byReason, minuteColumns, readNode, readPoint, reasonText } from './ingest-api.js';

describe('alerts page data', () => {
  it('says a value in the unit of its metric', () => {
    expect(fmtMetric('error_rate', 0.5)).toBe('50.0 %');
    expect(fmtMetric('ingest_drop_rate', 0.0123)).toBe('1.23 %');
    expect(fmtMetric('p99_ms', 870)).toBe('870 ms');
    expect(fmtMetric('rps', 12.345)).toBe('12.35 /s');
    expect(fmtMetric('ingest_silence_seconds', 185)).toBe('185 s');
    expect(fmtMetric('flag:UH', 1234)).toBe('1,234');
    expect(fmtMetric('class:5xx', null)).toBe('–');
    expect(fmtCondition({ metric: 'error_rate', op: '>', threshold: 0.05 })).toBe('error_rate > 5.00 %');
  });

  it('reads a rule and an alert tolerantly: missing fields are empty, not a crash', () => {
    const r = readRule({ name: 'x', metric: 'rps', filter: { route: 'a', method: ['GET', 'POST'] } });
    expect(r).toMatchObject({
      name: 'x',
      group_by: [],
      receivers: [],
      labels: {},
      enabled: true,
      origin: 'api',
    });
    expect(r.filter).toEqual({ route: 'a', method: ['GET', 'POST'] });
    const a = readAlert({ labels: { alertname: 'x', route: 'checkout' }, value: 0.5 });
    expect(a).toMatchObject({ rule: 'x', state: 'firing', value: 0.5, requests: 0, link: '' });
    expect(readAlert({ value: 'NaN' }).value).toBeNull();
    expect(
      fmtLabels({ alertname: 'x', route: 'checkout', severity: 'page' }, ['alertname', 'severity']),
    ).toBe('route=checkout');
  });

  it("links an alert to the API's page for its span, kept on this origin, else to the route for its span", () => {
    const now = Date.UTC(2026, 0, 1, 12);
    expect(
      alertHref(
        {
          link: 'https://elsewhere.example.com/#/route?name=checkout&from=1&to=2',
          labels: {},
          active_at: null,
          evaluated_at: null,
        },
        now,
      ),
    ).toBe('#/route?name=checkout&from=1&to=2');
    const own = alertHref(
      {
        link: '',
        labels: { route: 'checkout', authority: 'shop' },
        active_at: new Date(now - 60_000).toISOString(),
        evaluated_at: null,
      },
      now,
    );
    const q = new URLSearchParams(own.split('?')[1]);
    expect(own.startsWith('#/route?')).toBe(true);
    expect(q.get('name')).toBe('checkout');
    expect(q.get('authority')).toBe('shop');
    expect(Number(q.get('from'))).toBeLessThan(now - 60_000);
    expect(Number(q.get('to'))).toBe(now);
    expect(alertHref({ link: '', labels: {}, active_at: null, evaluated_at: null }, now)).toMatch(
      /^#\/overview\?/,
    );
  });
});

describe('ingest page data', () => {
  it('reads a node tolerantly and drops zero reasons', () => {
    const n = readNode({
      node_id: 'a',
      entries_received: 10,
      entries_dropped: { insert_refused: 2, replayed: 0 },
      status: 'weird',
    });
    expect(n).toMatchObject({ node_id: 'a', entries_received: 10, entries_stored: 0, status: 'stale' });
    expect(n.entries_dropped).toEqual({ insert_refused: 2 });
    expect(
      readPoint({ minute: '2026-01-01T00:01:00Z', entries_dropped: { a: 1, b: 2 } }).entries_dropped,
    ).toBe(3);
  });

  it('fills quiet minutes with zeros over the range, at most the newest max minutes', () => {
    const t0 = Date.UTC(2026, 0, 1, 0, 0);
    const pts = [
      { minute: t0 + 60_000, entries_received: 5, entries_stored: 4, entries_dropped: 1 },
      { minute: t0 + 3 * 60_000, entries_received: 2, entries_stored: 2, entries_dropped: 0 },
      { minute: t0 - 60_000, entries_received: 99, entries_stored: 99, entries_dropped: 0 },
    ];
    const c = minuteColumns(pts, t0, t0 + 4 * 60_000 + 30_000);
    expect(c.received).toEqual([0, 5, 0, 2, 0]);
    expect(c.stored).toEqual([0, 4, 0, 2, 0]);
    expect(c.dropped).toEqual([0, 1, 0, 0, 0]);
    expect(minuteColumns(pts, t0, t0 + 4 * 60_000 + 30_000, 2).received).toEqual([2, 0]);
  });

  it('sums reasons over nodes, largest first', () => {
    expect(byReason([{ a: 1, b: 5 }, { a: 2 }, { c: 0 }])).toEqual([
      ['b', 5],
      ['a', 3],
    ]);
    expect(reasonText('start_time_out_of_range')).toBe('start time out of range');
  });

  it('says spans as people do', () => {
    expect(fmtAge(42_000)).toBe('42 s');
    expect(fmtAge(200_000)).toBe('3 min 20 s');
    expect(fmtAge(7_500_000)).toBe('2 h 5 min');
    expect(fmtAge(-5)).toBe('0 s');
  });
});
