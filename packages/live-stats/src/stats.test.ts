import { describe, expect, it } from 'vitest';
import { healthOf, KIALI_DEFAULT_THRESHOLDS } from './health.js';
import { PointSeries, shapePoint, shapeWindow, sparkline, type WindowRow } from './stats.js';

const row = (over: Partial<WindowRow>): WindowRow => ({
  route: 'r',
  requests: 0,
  q: [null, null, null, null],
  requests_1xx: 0,
  requests_2xx: 0,
  requests_3xx: 0,
  requests_4xx: 0,
  requests_5xx: 0,
  requests_none: 0,
  bytes_sent: 0,
  bytes_received: 0,
  max_ms: null,
  spark: [],
  ...over,
});

describe('healthOf (Kiali defaults)', () => {
  it.each([
    [0, 0, 'idle'],
    [1000, 0, 'healthy'],
    [1000, 0.0009, 'healthy'],
    [1000, 0.001, 'degraded'],
    [1000, 0.099, 'degraded'],
    [1000, 0.1, 'failing'],
    [1000, 1, 'failing'],
  ] as const)('%d requests at %f 5xx -> %s', (requests, rate, expected) => {
    expect(healthOf(requests, rate, KIALI_DEFAULT_THRESHOLDS)).toBe(expected);
  });

  it('honours configured thresholds', () => {
    expect(healthOf(10, 0.05, { degradedErrorRate: 0.01, failingErrorRate: 0.05 })).toBe('failing');
    expect(healthOf(10, 0.02, { degradedErrorRate: 0.03, failingErrorRate: 0.05 })).toBe('healthy');
  });
});

describe('shapeWindow', () => {
  it('turns window rows into the stats payload: rps over the window, 5xx share, quantiles, health, sparkline', () => {
    const fromMs = 1_700_000_000_000;
    const s0 = fromMs / 1000;
    const out = shapeWindow({
      rows: [
        row({
          route: 'checkout',
          requests: '600',
          q: [12.34567, 100, 200, 250.5],
          requests_2xx: 540,
          requests_5xx: '60',
          spark: [
            [s0, 5],
            [s0 + 59, 7],
            [s0 + 60, 99],
          ],
        }),
        row({ route: 'home', requests: 60, q: [1.5, 2, 2.5, 3], requests_2xx: 60 }),
        row({
          route: '',
          is_total: 1,
          requests: 660,
          q: [2, 90, 95, 240],
          requests_2xx: 600,
          requests_5xx: 60,
        }),
      ],
      windowS: 60,
      fromMs,
      thresholds: KIALI_DEFAULT_THRESHOLDS,
    });
    expect(out.totals).toMatchObject({
      requests: 660,
      rps: 11,
      errors: 60,
      p50_ms: 2,
      p90_ms: 90,
      p95_ms: 95,
      p99_ms: 240,
      health: 'degraded',
    });
    expect(out.totals.error_rate).toBeCloseTo(60 / 660);
    expect(out.totals.status_classes).toEqual({
      '1xx': 0,
      '2xx': 600,
      '3xx': 0,
      '4xx': 0,
      '5xx': 60,
      none: 0,
    });
    const [checkout, home] = out.routes;
    expect(checkout).toMatchObject({
      route: 'checkout',
      requests: 600,
      rps: 10,
      error_rate: 0.1,
      p50_ms: 12.346,
      p99_ms: 250.5,
      health: 'failing',
    });
    expect(checkout.spark).toHaveLength(60);
    expect(checkout.spark[0]).toBe(5);
    expect(checkout.spark[59]).toBe(7);
    expect(checkout.spark.reduce((a, b) => a + b)).toBe(12); // the out-of-window second is dropped
    expect(home).toMatchObject({ route: 'home', rps: 1, error_rate: 0, health: 'healthy' });
  });

  it('has no quantiles and an idle health without traffic', () => {
    const out = shapeWindow({
      rows: [row({ is_total: 1 })],
      windowS: 60,
      fromMs: 0,
      thresholds: KIALI_DEFAULT_THRESHOLDS,
    });
    expect(out.totals).toMatchObject({
      requests: 0,
      rps: 0,
      error_rate: 0,
      p50_ms: null,
      p99_ms: null,
      health: 'idle',
    });
    expect(out.routes).toEqual([]);
  });

  it('sparkline zero-fills', () => {
    expect(sparkline([[11, 2]], 10, 3)).toEqual([0, 2, 0]);
  });
});

describe('PointSeries', () => {
  const p = (s: number, requests: number) =>
    shapePoint({
      s,
      requests,
      q: [1, 1.5, 1.8, 2],
      requests_1xx: 0,
      requests_2xx: requests,
      requests_3xx: 0,
      requests_4xx: 0,
      requests_5xx: 0,
      requests_none: 0,
      bytes_sent: 0,
      bytes_received: 0,
      max_ms: 2,
    });
  it('keeps history between ticks, replaces the re-read seconds and zero-fills the gaps', () => {
    const series = new PointSeries(10);
    series.apply([p(100, 5), p(103, 7)], 100_000, 105_000);
    expect(series.list(100_000, 105_000).map((x) => x.requests)).toEqual([5, 0, 0, 7, 0]);
    // Next tick re-reads the last 2 seconds: a late row lands in second 104, second 103 unchanged.
    series.apply([p(103, 8), p(104, 1)], 103_000, 105_000);
    expect(series.list(100_000, 105_000).map((x) => x.requests)).toEqual([5, 0, 0, 8, 1]);
  });

  it('forgets seconds older than the history', () => {
    const series = new PointSeries(3);
    series.apply([p(100, 1)], 100_000, 101_000);
    series.apply([p(110, 1)], 108_000, 111_000);
    expect(series.size).toBe(3);
    expect(series.list(108_000, 111_000).map((x) => x.ts)).toEqual([108_000, 109_000, 110_000]);
  });
});
