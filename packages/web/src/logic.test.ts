import { describe, expect, it } from 'vitest';
import { flowGraph, mapHeight, type FlowRow } from './flows.js';
import { fmtMs, fmtPct, fmtPp, fmtRatio, fmtSigned, shortCluster } from './format.js';
import {
  addToHistory,
  caretLines,
  columnWidth,
  csvPieces,
  errorPosition,
  hasLimit,
  jsonPieces,
  JsonRowStream,
  visibleRange,
  withDefaultLimit,
} from './sql-logic.js';
import { editDistance, orList, suggest } from './suggest.js';
import { sampleEvenly } from './pages/tail-sample.js';

describe('formatting', () => {
  it('says differences with a sign, rates in percentage points, ratios with ×', () => {
    expect(fmtSigned(8, fmtMs)).toBe('+8.0 ms');
    expect(fmtSigned(-120, fmtMs)).toBe('−120 ms');
    expect(fmtPp(0.0007)).toBe('+0.070 pp');
    expect(fmtPp(-0.0123)).toBe('−1.23 pp');
    expect(fmtRatio(1.4444)).toBe('×1.44');
    expect(fmtRatio(null)).toBe('–');
    expect(fmtPct(0.5)).toBe('50.0 %');
    expect(shortCluster('outbound|80||frontendv2.default.svc.cluster.local')).toBe('frontendv2.default');
  });
});

describe('did you mean', () => {
  const routes = ['frontend-canary', 'api-products', 'api-cart', 'static', 'auth-login'];
  it('finds the route a user means by prefix, substring or typo', () => {
    expect(suggest('frontend', routes)[0]).toBe('frontend-canary');
    expect(suggest('cart', routes)[0]).toBe('api-cart');
    expect(suggest('statc', routes)[0]).toBe('static');
    expect(suggest('zzzzzz', routes)).toEqual([]);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(orList(['a', 'b', 'c'])).toBe('a, b or c');
  });
});

describe('SQL console logic', () => {
  it('reads a streamed answer row by row whatever the chunking, strings and nesting included', () => {
    const rows = [
      { a: 1, s: 'x}]{"\\' },
      { a: 2, s: 'plain', arr: [1, [2]], m: { k: '}' } },
      { a: 3, s: '' },
    ];
    const text = `{"data":${JSON.stringify(rows)},"meta":[{"name":"a","type":"UInt8"}],"rows":3,"truncated":true,"truncated_by":"rows","message":"cut"}`;
    for (const size of [1, 3, 7, 50, text.length]) {
      const s = new JsonRowStream();
      const got: unknown[] = [];
      for (let i = 0; i < text.length; i += size) got.push(...s.push(text.slice(i, i + size)));
      expect(got).toEqual(rows);
      expect(s.end()).toEqual({
        meta: [{ name: 'a', type: 'UInt8' }],
        rows: 3,
        truncated: true,
        truncated_by: 'rows',
        message: 'cut',
      });
    }
    const empty = new JsonRowStream();
    expect(empty.push('{"data":[],"meta":[],"rows":0}')).toEqual([]);
    expect(empty.end()).toEqual({ meta: [], rows: 0 });
    expect(() => new JsonRowStream().push('<html>' + 'x'.repeat(100))).toThrow(/not a streamed SQL result/);
  });

  it('adds a visible LIMIT only when the statement has none', () => {
    expect(hasLimit('SELECT 1 LIMIT 10')).toBe(true);
    expect(hasLimit('SELECT 1 LIMIT 10 OFFSET 5;')).toBe(true);
    expect(hasLimit('SELECT 1 LIMIT 5, 10 -- ok')).toBe(true);
    expect(hasLimit('SELECT * FROM (SELECT 1 LIMIT 1)')).toBe(false);
    expect(withDefaultLimit('SELECT 1;\n', 1000)).toEqual({ sql: 'SELECT 1\nLIMIT 1000', added: true });
    expect(withDefaultLimit('SELECT 1 LIMIT 3', 1000)).toEqual({ sql: 'SELECT 1 LIMIT 3', added: false });
  });

  it('points an error at its line and column', () => {
    const text = 'SELECT a\nFROM t\nWHER x = 1';
    const pos = errorPosition('Syntax error at line 3, column 1 (near "WHER x = 1"); expected …', text)!;
    expect(pos).toEqual({ line: 3, column: 1, offset: 16 });
    expect(text.slice(pos.offset, pos.offset + 4)).toBe('WHER');
    expect(caretLines(text, 3, 6)).toEqual(['WHER x = 1', '     ^']);
    expect(errorPosition('no position here', text)).toBeUndefined();
  });

  it('draws only the visible rows of a fixed-height grid', () => {
    expect(visibleRange(0, 520, 26, 1_000_000)).toEqual({ start: 0, end: 30 });
    expect(visibleRange(26 * 500_000, 520, 26, 1_000_000)).toEqual({ start: 499_990, end: 500_030 });
    expect(visibleRange(26 * 999_990, 520, 26, 1_000_000)).toEqual({ start: 999_980, end: 1_000_000 });
    expect(visibleRange(0, 520, 26, 0)).toEqual({ start: 0, end: 0 });
  });

  it('writes CSV and JSON downloads in pieces', () => {
    const rows = [
      { a: 1, b: 'x,"y"' },
      { a: null, b: [1, 2] },
    ];
    expect([...csvPieces(['a', 'b'], rows, 1)].join('')).toBe('a,b\n1,"x,""y"""\n,"[1,2]"\n');
    expect(JSON.parse([...jsonPieces(rows, 1)].join(''))).toEqual(rows);
    expect(columnWidth('Nullable(UInt64)', 'n')).toBe(110);
    expect(columnWidth('DateTime64(6)', 'start_time')).toBe(200);
  });

  it('keeps a short history, newest first, without duplicates', () => {
    let h = addToHistory([], { sql: 'SELECT 1', at: 1 });
    h = addToHistory(h, { sql: 'SELECT 2', at: 2 });
    h = addToHistory(h, { sql: ' SELECT 1 ', at: 3 });
    expect(h.map((e) => e.at)).toEqual([3, 2]);
    for (let i = 0; i < 80; i++) h = addToHistory(h, { sql: `q${i}`, at: i });
    expect(h).toHaveLength(50);
  });
});

describe('routing map graph', () => {
  const row = (gateway: string, route: string, upstream_cluster: string, requests: number): FlowRow => ({
    gateway,
    route,
    upstream_cluster,
    requests,
    rps: requests / 60,
    error_rate: 0,
    p99_ms: 10,
    health: 'healthy',
  });
  it('links gateway -> route -> cluster with each route split in shares', () => {
    const g = flowGraph({
      routes: [row('gw', 'frontend-canary', '', 100), row('gw', 'static', '', 20)],
      clusters: [
        row('gw', 'frontend-canary', 'v1', 49),
        row('gw', 'frontend-canary', 'v2', 51),
        row('gw', 'static', '', 20),
      ],
    });
    expect(g.nodes.map((n) => n.id).sort()).toEqual(
      [
        'cluster:(no upstream)',
        'cluster:v1',
        'cluster:v2',
        'gateway:gw',
        'route:frontend-canary',
        'route:static',
      ].sort(),
    );
    const shares = g.links.filter((l) => l.share !== undefined).map((l) => [l.cluster, l.share]);
    expect(shares).toEqual([
      ['v1', 0.49],
      ['v2', 0.51],
      ['', 1],
    ]);
    expect(g.links.find((l) => l.target === 'route:frontend-canary')?.value).toBeCloseTo(100 / 60);
    expect(mapHeight(g.nodes)).toBe(320);
    expect(
      mapHeight(Array.from({ length: 20 }, (_, i) => ({ id: `r${i}`, kind: 'route' as const, name: '' }))),
    ).toBe(680);
  });
});

describe('live tail sample', () => {
  it('spreads the shown rows across the second', () => {
    const rows = Array.from({ length: 200 }, (_, i) => i);
    expect(sampleEvenly(rows, 4)).toEqual([0, 50, 100, 150]);
    expect(sampleEvenly([1, 2], 5)).toEqual([1, 2]);
  });
});
