import { describe, expect, it } from 'vitest';
import { buckets, fillSeries, parseMetrics, parseStep, splitDeltas } from './answers.js';
import { QueryParamError } from './errors.js';
import { toStats, type StatsRow } from './stats.js';

const row = (t: number, requests: number, over: Partial<StatsRow> = {}) => ({
  t,
  requests,
  requests_1xx: 0,
  requests_2xx: requests,
  requests_3xx: 0,
  requests_4xx: 0,
  requests_5xx: 0,
  requests_none: 0,
  bytes_sent: 0,
  bytes_received: 0,
  max_ms: 10,
  q: [1, 2, 3, 4],
  ...over,
});

describe('time buckets and filling', () => {
  it('covers the range with step-aligned buckets', () => {
    expect(buckets(125_000, 305_000, 60)).toEqual([120, 180, 240, 300]);
  });
  it('fills every bucket: counts 0, ratios and latencies null, groups busiest first, limited', () => {
    const series = fillSeries(
      [
        { ...row(60, 10), g: 'a' },
        { ...row(180, 5, { requests_5xx: 1 }), g: 'a' },
        { ...row(120, 30), g: 'b' },
        { ...row(60, 1), g: 'c' },
      ],
      {
        from: 60_000,
        to: 240_000,
        step_s: 60,
        metrics: ['requests', 'error_rate', 'p99_ms'],
        groupBy: 'route',
        limit: 2,
      },
    );
    expect(series.map((s) => s.labels)).toEqual([
      { metric: 'requests', route: 'b' },
      { metric: 'error_rate', route: 'b' },
      { metric: 'p99_ms', route: 'b' },
      { metric: 'requests', route: 'a' },
      { metric: 'error_rate', route: 'a' },
      { metric: 'p99_ms', route: 'a' },
    ]);
    expect(series[3].points).toEqual([
      [60_000, 10],
      [120_000, 0],
      [180_000, 5],
    ]);
    expect(series[4].points).toEqual([
      [60_000, 0],
      [120_000, null],
      [180_000, 0.2],
    ]);
    expect(series[5].points.map((p) => p[1])).toEqual([4, null, 4]);
  });
  it('gives one empty series per metric without traffic or groups', () => {
    const [s] = fillSeries([], { from: 0, to: 120_000, step_s: 60, metrics: ['rps'] });
    expect(s).toEqual({
      labels: { metric: 'rps' },
      points: [
        [0, 0],
        [60_000, 0],
      ],
    });
  });
});

describe('parameters', () => {
  it('parses metrics and names the bad one', () => {
    expect(parseMetrics(undefined)).toEqual(['rps', 'error_rate', 'p50_ms', 'p99_ms']);
    expect(parseMetrics('p90_ms, 5xx')).toEqual(['p90_ms', '5xx']);
    expect(() => parseMetrics('p98_ms')).toThrow(/"p98_ms" is not one of/);
  });
  it('parses the step or chooses one; refuses too many points', () => {
    const range = { from: 0, to: 3_600_000 };
    expect(parseStep({ step: '5m' }, range, 'auto')).toBe(300);
    expect(parseStep({}, range, 'auto')).toBe(60);
    expect(() => parseStep({ step: '1500ms' }, range, 'auto')).toThrow(QueryParamError);
    expect(() => parseStep({ step: '1s' }, { from: 0, to: 86_400_000 }, 'auto')).toThrow(/more than/);
  });
});

describe('canary split deltas', () => {
  it('compares every cluster with the busiest one', () => {
    const st = (cluster: string, requests: number, p: number, e = 0) => ({
      upstream_cluster: cluster,
      ...toStats({ ...row(0, requests, { requests_5xx: e }), q: [p, p, p, p * 2] }, 60),
    });
    const out = splitDeltas([st('v1', 300, 10), st('v2', 100, 12, 5)]);
    expect(out.requests).toBe(400);
    expect(out.baseline).toBe('v1');
    const [v1, v2] = out.clusters;
    expect(v1).toMatchObject({ baseline: true, share: 0.75, share_diff: 0, p50_ratio: 1 });
    expect(v2).toMatchObject({
      baseline: false,
      share: 0.25,
      share_diff: -0.5,
      p50_ms_diff: 2,
      p99_ms_diff: 4,
    });
    expect(v2.p50_ratio).toBeCloseTo(1.2, 12);
    expect(v2.error_rate_diff).toBeCloseTo(0.05, 12);
  });
});
