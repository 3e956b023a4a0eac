import { describe, expect, it } from 'vitest';
import { QueryParamError } from './errors.js';
import { parseFilters, parseTimeRange } from './params.js';
import { autoStep, planSource, rawIsCheaper, RAW_ROWS_PER_STATE } from './plan.js';
import { decodeCursor, encodeCursor, routesQuery, summaryQuery, topQuery, withLimits } from './sql.js';

const NOW = Date.parse('2024-05-01T12:34:56.789Z');
const H = 3_600_000;

function paramError(fn: () => unknown): QueryParamError {
  try {
    fn();
  } catch (err) {
    if (err instanceof QueryParamError) return err;
    throw err;
  }
  throw new Error('expected a QueryParamError');
}

describe('parseTimeRange', () => {
  it('defaults to the last 15 minutes', () => {
    expect(parseTimeRange({}, NOW)).toEqual({ from: NOW - 15 * 60_000, to: NOW });
  });
  it('accepts range, RFC 3339 and epoch ms', () => {
    expect(parseTimeRange({ range: '7d' }, NOW)).toEqual({ from: NOW - 7 * 24 * H, to: NOW });
    expect(parseTimeRange({ from: '2024-05-01T10:00:00Z', to: '1714564800000' }, NOW)).toEqual({
      from: Date.parse('2024-05-01T10:00:00Z'),
      to: 1714564800000,
    });
    expect(parseTimeRange({ range: '1h', to: '2024-05-01T10:00:00+02:00' }, NOW)).toEqual({
      from: Date.parse('2024-05-01T07:00:00Z'),
      to: Date.parse('2024-05-01T08:00:00Z'),
    });
  });
  it('names the bad parameter', () => {
    expect(paramError(() => parseTimeRange({ range: '5 minutes' }, NOW))).toMatchObject({
      param: 'range',
      code: 'ERR_QUERY_BAD_RANGE',
    });
    expect(paramError(() => parseTimeRange({ from: 'yesterday' }, NOW))).toMatchObject({
      param: 'from',
      code: 'ERR_QUERY_BAD_TIME',
    });
    expect(paramError(() => parseTimeRange({ from: '2024-05-01T10:00:00' }, NOW)).message).toMatch(/zone/);
    expect(paramError(() => parseTimeRange({ from: String(NOW), to: String(NOW - 1) }, NOW))).toMatchObject({
      param: 'from',
    });
    expect(paramError(() => parseTimeRange({ from: String(NOW - H), range: '1h' }, NOW)).message).toMatch(
      /not both/,
    );
  });
});

describe('parseFilters', () => {
  it('keeps repeated values and validates status classes', () => {
    expect(parseFilters({ route: ['a', 'b'], method: 'get', status_class: '5xx' })).toEqual({
      route: ['a', 'b'],
      method: ['GET'],
      status_class: ['5xx'],
    });
    expect(paramError(() => parseFilters({ status_class: '6xx' }))).toMatchObject({ param: 'status_class' });
  });
});

describe('planSource', () => {
  const range = (ms: number) => ({ from: NOW - ms, to: NOW });
  it('reads short ranges raw, longer ones from per-minute, long ones from hourly buckets, widened to whole buckets', () => {
    expect(planSource({ range: range(15 * 60_000), filters: {} }).kind).toBe('raw');
    const m = planSource({ range: range(H), filters: {} });
    expect(m).toMatchObject({ kind: 'routes', table: 'http_routes_1m', granularity_s: 60 });
    expect(m.from % 60_000).toBe(0);
    expect(m.to).toBeGreaterThanOrEqual(NOW);
    const h = planSource({ range: range(24 * H), filters: { route: ['r'] } });
    expect(h).toMatchObject({
      table: 'http_routes_1h',
      from: Math.floor((NOW - 24 * H) / H) * H,
      to: Math.ceil(NOW / H) * H,
    });
  });
  it('uses the full-dimension rollup for other filters and raw rows for path templates', () => {
    expect(planSource({ range: range(24 * H), filters: { status_class: ['5xx'] } }).table).toBe(
      'http_requests_1h',
    );
    expect(planSource({ range: range(24 * H), filters: {}, groupBy: ['authority'] }).table).toBe(
      'http_requests_1h',
    );
    expect(planSource({ range: range(24 * H), filters: { path_template: ['/x'] } }).kind).toBe('raw');
    expect(
      paramError(() =>
        planSource({ range: range(24 * H), filters: { path_template: ['/x'] }, mode: 'rollup' }),
      ).code,
    ).toBe('ERR_QUERY_NO_ROLLUP');
  });
  it('answers questions with no filter and no grouping from the hourly totals, one state per hour', () => {
    expect(planSource({ range: range(24 * H), filters: {} })).toMatchObject({
      kind: 'totals',
      table: 'http_totals_1h',
      granularity_s: 3600,
    });
    expect(planSource({ range: range(24 * H), filters: {}, step_s: 3600 }).table).toBe('http_totals_1h');
    // Per-minute questions and anything filtered or grouped keep their family.
    expect(planSource({ range: range(2 * H), filters: {} }).table).toBe('http_routes_1m');
    expect(planSource({ range: range(24 * H), filters: {}, groupBy: ['upstream_cluster'] }).kind).toBe(
      'routes',
    );
  });
  it('honours source=raw and needs a step the rollup divides', () => {
    expect(planSource({ range: range(24 * H), filters: {}, mode: 'raw' }).kind).toBe('raw');
    expect(planSource({ range: range(24 * H), filters: {}, step_s: 300 }).table).toBe('http_routes_1m');
    expect(planSource({ range: range(24 * H), filters: {}, step_s: 30 }).kind).toBe('raw');
  });
});

describe('autoStep', () => {
  it('gives at most 100 points and whole hours from 12 h on', () => {
    expect(autoStep({ from: 0, to: 15 * 60_000 })).toBe(10);
    expect(autoStep({ from: 0, to: H })).toBe(60);
    expect(autoStep({ from: 0, to: 24 * H })).toBe(3600);
    expect(autoStep({ from: 0, to: 7 * 24 * H })).toBe(7200);
  });
});

describe('SQL builders', () => {
  it('never put user values into the SQL text', () => {
    const evil = "x' OR 1=1 --";
    const source = planSource({ range: { from: NOW - H, to: NOW }, filters: {}, mode: 'raw' });
    const q = summaryQuery('gatescope', source, { route: [evil], authority: [evil] });
    expect(q.query).not.toContain(evil);
    expect(q.query).toContain('route_name IN {route:Array(String)}');
    expect(q.params.route).toEqual([evil]);
    const r = routesQuery('gatescope', source, {}, { sort: 'p99_ms', order: 'desc', limit: 5 });
    expect(r.query).toMatch(/ORDER BY q\[4\] DESC/);
    expect(r.params.limit).toBe(5);
  });
  it('round-trips cursors and rejects garbage', () => {
    const c = { t: '2024-05-01 10:00:00.123456', id: 'abc' };
    expect(decodeCursor(encodeCursor(c))).toEqual(c);
    expect(decodeCursor('not-a-cursor')).toBeUndefined();
  });
});

describe('rawIsCheaper', () => {
  it('keeps the per-minute rollup for busy gateways and reads raw rows for quiet ones', () => {
    // 5,000 rps on 50 routes for an hour: 18 M raw rows against 3,000 states.
    expect(rawIsCheaper({ rawRows: 18_000_000, states: 3_000 })).toBe(false);
    // 100 rps on 50 routes for an hour: 360 k raw rows against 3,000 states.
    expect(rawIsCheaper({ rawRows: 360_000, states: 3_000 })).toBe(true);
    expect(rawIsCheaper({ rawRows: 3_000 * RAW_ROWS_PER_STATE, states: 3_000 })).toBe(false);
    expect(rawIsCheaper({ rawRows: 0, states: 0 })).toBe(false);
  });
});

describe('token restriction in analytics', () => {
  const range = { from: NOW - 48 * H, to: NOW };
  const restriction = { authorities: ['shop.example.com'], gateways: ['edge'] };
  it('is ANDed into every WHERE as bound parameters, beside the user filters', () => {
    const filters = parseFilters({ authority: 'other.example.com' }, restriction);
    const q = summaryQuery('gatescope', planSource({ range, filters }), filters);
    expect(q.query).toContain('authority IN {authority:Array(String)}');
    expect(q.query).toContain('authority IN {restricted_authority:Array(String)}');
    expect(q.query).toContain('node_cluster IN {restricted_gateway:Array(String)}');
    expect(q.params).toMatchObject({
      authority: ['other.example.com'],
      restricted_authority: ['shop.example.com'],
      restricted_gateway: ['edge'],
    });
    const top = topQuery('gatescope', planSource({ range, filters, mode: 'raw' }), filters, {
      dimension: 'path',
      by: 'requests',
      limit: 5,
    });
    expect(top.query).toContain('{restricted_authority:Array(String)}');
  });
  it('makes the planner pick a source that has the restricted columns (never http_routes_*)', () => {
    expect(planSource({ range, filters: {} }).table).toBe('http_totals_1h');
    expect(planSource({ range, filters: {}, groupBy: ['route'] }).table).toBe('http_routes_1h');
    const restricted = planSource({ range, filters: parseFilters({}, restriction) });
    expect(restricted.table).toBe('http_requests_1h');
    const gatewayOnly = planSource({ range, filters: parseFilters({}, { gateways: ['edge'] }) });
    expect(gatewayOnly.table).toBe('http_requests_1h');
  });
  it('is never read from request parameters', () => {
    expect(parseFilters({ restriction: 'x', restricted_authority: 'y' })).toEqual({});
  });
  it("puts the configured limits in the statement's own SETTINGS clause", () => {
    const q = withLimits(
      { query: 'SELECT 1', params: {} },
      { maxExecutionTimeS: 5, maxMemoryBytes: 1000, maxThreads: 2 },
    );
    expect(q.query).toBe(
      "SELECT 1 SETTINGS max_execution_time = 5, timeout_overflow_mode = 'throw', max_memory_usage = 1000, max_threads = 2",
    );
  });
});
