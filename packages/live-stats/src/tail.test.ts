import { describe, expect, it } from 'vitest';
import { TailCursor, TailLimiter, tailRowKey } from './tail.js';

describe('TailCursor', () => {
  it('hands out each row once, oldest first, across overlapping polls', () => {
    const c = new TailCursor();
    const r = (us: number, id: string) => ({ start_time_us: us, request_id: id });
    expect(c.fresh([r(3, 'c'), r(1, 'a')], tailRowKey).map((x) => x.request_id)).toEqual(['a', 'c']);
    // Second poll re-reads the look-back: a late row (started earlier) shows up, seen ones do not.
    expect(
      c.fresh([r(4, 'd'), r(3, 'c'), r(2, 'b'), r(1, 'a')], tailRowKey).map((x) => x.request_id),
    ).toEqual(['b', 'd']);
    c.forgetBefore(3);
    expect(c.size).toBe(2);
  });
});

describe('TailLimiter', () => {
  it('passes up to the rate, keeps the newest, and reports the rest as one "N skipped" marker', () => {
    const l = new TailLimiter(10, 0);
    const rows = Array.from({ length: 25 }, (_, i) => i);
    const first = l.take(rows, 0);
    expect(first.rows).toEqual(rows.slice(15));
    expect(first.skipped).toBe(15);
    // Half a second later: 5 tokens back.
    const second = l.take([100, 101, 102, 103, 104, 105, 106], 500);
    expect(second.rows).toEqual([102, 103, 104, 105, 106]);
    expect(second.skipped).toBe(2);
    // Under the rate nothing is skipped.
    expect(l.take([1, 2], 2000)).toEqual({ rows: [1, 2], skipped: 0 });
  });

  it('carries the skipped count until it can be reported', () => {
    const l = new TailLimiter(2, 0);
    l.take([1, 2], 0);
    expect(l.take([3, 4, 5], 0)).toEqual({ rows: [], skipped: 0 });
    expect(l.take([6], 1000)).toEqual({ rows: [6], skipped: 3 });
  });
});
