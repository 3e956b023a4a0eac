import type { LivePoint } from '@gatescope/live-stats';
import { describe, expect, it } from 'vitest';
import { mergePoints } from './points.js';

const p = (s: number, requests = 1): LivePoint => ({
  ts: s * 1000,
  requests,
  rps: requests,
  errors: 0,
  error_rate: 0,
  p50_ms: 1,
  p90_ms: 1.5,
  p95_ms: 1.8,
  p99_ms: 2,
  status_classes: { '1xx': 0, '2xx': requests, '3xx': 0, '4xx': 0, '5xx': 0, none: 0 },
});

describe('mergePoints', () => {
  it('a full push replaces the history', () => {
    expect(
      mergePoints([p(1), p(2)], { points: [p(5)], points_full: true, history_s: 10 }).map((x) => x.ts),
    ).toEqual([5000]);
  });

  it('a delta replaces the seconds it covers (late rows) and appends the new ones', () => {
    const merged = mergePoints([p(1), p(2), p(3, 1)], {
      points: [p(3, 7), p(4, 2)],
      points_full: false,
      history_s: 10,
    });
    expect(merged.map((x) => [x.ts / 1000, x.requests])).toEqual([
      [1, 1],
      [2, 1],
      [3, 7],
      [4, 2],
    ]);
  });

  it('keeps only history_s seconds', () => {
    const merged = mergePoints([p(1), p(2), p(3)], {
      points: [p(4), p(5)],
      points_full: false,
      history_s: 3,
    });
    expect(merged.map((x) => x.ts / 1000)).toEqual([3, 4, 5]);
  });

  it('an empty delta keeps what there is', () => {
    expect(mergePoints([p(1)], { points: [], points_full: false, history_s: 3 })).toHaveLength(1);
  });
});
