import { describe, expect, it } from 'vitest';
import { LatencySketch } from './latency-sketch.js';
import {
  LiveWindow,
  LiveWindowRecorder,
  liveFilterMatch,
  matchesLiveFilters,
  type LiveWindowFilters,
} from './live-window.js';

const NOW = 1_700_000_000_500;

/** Rows as a decoder thread records them: [second offset, duration ms, code, route, authority, cluster, node]. */
function recorded(rows: [number, number, number, string, string, string, string][]): LiveWindowRecorder {
  const r = new LiveWindowRecorder();
  for (const [ds, ms, code, route, authority, cluster, node] of rows)
    r.record((Math.floor(NOW / 1000) + ds) * 1e6 + 123, ms, code, route, authority, cluster, node, 'gw');
  return r;
}

describe('LatencySketch', () => {
  it('answers within 0.5 % of the exact order statistic, and merging equals one sketch of all values', () => {
    const values = Array.from({ length: 5_000 }, (_, i) => 0.3 + ((i * 7919) % 4999) / 10);
    const one = new LatencySketch();
    const a = new LatencySketch();
    const b = new LatencySketch();
    values.forEach((v, i) => {
      one.add(v);
      (i % 2 ? a : b).add(v);
    });
    const merged = new LatencySketch().merge(a).mergeJSON(b.toJSON());
    const sorted = [...values].sort((x, y) => x - y);
    for (const q of [0.5, 0.9, 0.99]) {
      const exact = sorted[Math.floor(q * (sorted.length - 1))];
      expect(Math.abs(one.quantile(q)! - exact) / exact).toBeLessThanOrEqual(0.005 * 1.01 + 0.01 / exact);
      expect(merged.quantile(q)).toBe(one.quantile(q));
    }
    expect(new LatencySketch().quantiles([0.5])).toEqual([null]);
    expect(new LatencySketch().add(0).add(0).add(5).quantile(0.5)).toBe(0);
  });
});

describe('LiveWindow', () => {
  it('merges partials from several threads into the window and points the live SQL would return', () => {
    const w = new LiveWindow({ now: () => NOW - 5_000 });
    const t1 = recorded([
      [-2, 10, 200, 'cart', 'shop', 'c1', 'n1'],
      [-2, 20, 503, 'cart', 'shop', 'c1', 'n1'],
      [-1, 30, 404, 'checkout', 'shop', 'c2', 'n1'],
    ]);
    const t2 = recorded([
      [-1, 40, 200, 'cart', 'api', 'c1', 'n2'],
      [-1, 50, 0, 'cart', 'api', 'c1', 'n2'],
    ]);
    w.merge(t1.take()!);
    w.merge(t2.take()!);
    expect(t1.take()).toBeUndefined();
    const rows = w.window({}, NOW - 10_000, NOW);
    expect(rows[0]).toMatchObject({
      is_total: 1,
      requests: 5,
      requests_2xx: 2,
      requests_4xx: 1,
      requests_5xx: 1,
      requests_none: 1,
    });
    expect(rows.slice(1).map((r) => [r.route, r.requests])).toEqual([
      ['cart', 4],
      ['checkout', 1],
    ]);
    const cart = rows[1];
    const s = Math.floor(NOW / 1000);
    expect(cart.spark).toEqual([
      [s - 2, 2],
      [s - 1, 2],
    ]);
    // p50 of 10, 20, 40, 50 ms: rank 1.5 -> the 2nd value (20 ms) within 0.5 %.
    expect(Math.abs((cart.q[0] as number) - 20) / 20).toBeLessThan(0.006);
    // The same number ClickHouse's quantilesDD(0.005) gives (one sketch definition, @gatescope/query re-exports it).
    expect(cart.q).toEqual(new LatencySketch().add(10).add(20).add(40).add(50).quantiles());
    // Filters as the SQL applies them: authority, gateway (node id or cluster), route, restriction.
    expect(w.window({ authority: 'api' }, NOW - 10_000, NOW)[0].requests).toBe(2);
    expect(w.window({ gateway: 'n1' }, NOW - 10_000, NOW)[0].requests).toBe(3);
    expect(w.window({ gateway: 'gw' }, NOW - 10_000, NOW)[0].requests).toBe(5);
    expect(w.window({ restriction: { authorities: ['shop'] } }, NOW - 10_000, NOW)[0].requests).toBe(3);
    expect(
      w.points({ route: 'cart' }, NOW - 10_000, NOW).map((p) => [p.s, p.requests, p.requests_5xx]),
    ).toEqual([
      [s - 2, 2, 1],
      [s - 1, 2, 0],
    ]);
  });

  it('covers only what it saw: not before it started, not beyond its horizon; rows older than that are counted late', () => {
    let now = NOW;
    const w = new LiveWindow({ horizonS: 30, now: () => now });
    expect(w.covers(NOW - 1_000)).toBe(false);
    now = NOW + 20_000;
    expect(w.covers(NOW + 1_000)).toBe(true);
    now = NOW + 60_000;
    expect(w.covers(NOW + 1_000)).toBe(false);
    w.merge(recorded([[-10, 5, 200, 'r', 'a', 'c', 'n']]).take()!);
    expect(w.late).toBe(1);
  });
});

describe('LiveWindowRecorder', () => {
  it("sends each cell's sketch exactly as a LatencySketch of the same values would", () => {
    // Values over many decades, zeros and negative values, in no order, over two routes and two seconds.
    const values = Array.from(
      { length: 2_000 },
      (_, i) => ((i * 7919) % 1999) ** 3 / 1e5 - (i % 97 === 0 ? 3 : 0),
    );
    values.push(0, 0, 1e-9, 3.6e6);
    const rows = values.map((v, i): [number, number, number, string, string, string, string] => [
      -(i % 2),
      v,
      200,
      i % 3 ? 'a' : 'b',
      'x',
      'c',
      'n',
    ]);
    const partial = recorded(rows).take()!;
    expect(partial.cells).toHaveLength(4);
    for (const cell of partial.cells) {
      const one = new LatencySketch();
      rows.forEach(([ds, v, , route]) => {
        if (route === cell.route && Math.floor(NOW / 1000) + ds === cell.s) one.add(v);
      });
      expect(cell.n).toBe(one.count);
      expect(cell.sketch).toEqual(one.toJSON());
    }
  });
});

describe('LiveWindow quantiles', () => {
  it('equal one LatencySketch of every value of the cells summed, whatever the partials and their order', () => {
    const s = Math.floor(NOW / 1000) - 3;
    const one = new LatencySketch();
    const w = new LiveWindow({ now: () => NOW });
    // Values over many decades (sparse and far-apart keys grow the sum both ways), zeros and a negative value,
    // spread over seconds, routes and partials: each partial's sketch from its own values.
    const values = Array.from(
      { length: 3_000 },
      (_, i) => ((i * 7919) % 2999) ** 2 / 1e4 + (i % 50 === 0 ? 1e6 : 0),
    );
    values.push(0, 0, -2);
    for (let part = 0; part < 5; part++) {
      const cells = ['a', 'b', 'c'].flatMap((route, r) =>
        [0, 1, 2].map((ds) => {
          const sketch = new LatencySketch();
          let n = 0;
          values.forEach((v, i) => {
            if (i % 45 === part * 9 + r * 3 + ds) {
              sketch.add(v);
              one.add(v);
              n++;
            }
          });
          return {
            s: s + ds,
            route,
            authority: 'x',
            upstream_cluster: 'c',
            node_id: 'n',
            node_cluster: 'g',
            n,
            e: 0,
            c: [0, n, 0, 0, 0, 0],
            sketch: sketch.toJSON(),
          };
        }),
      );
      w.merge({ cells: part % 2 ? cells.reverse() : cells });
    }
    // A sketch sent with its pairs out of order and a key twice counts the same.
    w.merge({
      cells: [
        {
          s,
          route: 'a',
          authority: 'x',
          upstream_cluster: 'c',
          node_id: 'n',
          node_cluster: 'g',
          n: 3,
          e: 0,
          c: [0, 3, 0, 0, 0, 0],
          sketch: {
            relative_accuracy: 0.005,
            zero_count: 0,
            positive: [
              [700, 1],
              [5, 1],
              [700, 1],
            ],
            negative: [],
          },
        },
      ],
    });
    one
      .add((new LatencySketch().value(700) / 1.005) * 1.0001)
      .add((new LatencySketch().value(5) / 1.005) * 1.0001);
    one.add((new LatencySketch().value(700) / 1.005) * 1.0001);
    const [total] = w.window({}, NOW - 60_000, NOW);
    expect(total.requests).toBe(one.count);
    expect(total.q).toEqual(one.quantiles());
    expect(w.points({}, NOW - 60_000, NOW).reduce((n, p) => n + p.requests, 0)).toBe(one.count);
  });
});

describe('liveFilterMatch', () => {
  it('passes exactly the rows matchesLiveFilters passes, for every kind of filter and restriction', () => {
    const pick = <T>(xs: readonly T[], i: number) => xs[i % xs.length];
    const routes = ['r1', 'r2', 'r3'];
    const hosts = ['a.example', 'b.example'];
    const nodes = ['n1', 'n2', 'c1'];
    const rows = Array.from({ length: 200 }, (_, i) => ({
      route: pick(routes, i),
      authority: pick(hosts, i * 7),
      upstream_cluster: pick(['u1', 'u2'], i * 3),
      node_id: pick(nodes, i * 5),
      node_cluster: pick(['c1', 'c2'], i * 11),
    }));
    const filters: LiveWindowFilters[] = [
      {},
      { route: 'r2' },
      { authority: 'b.example', upstream_cluster: 'u1' },
      { gateway: 'c1' },
      { gateway: 'n2', route: 'r3' },
      { restriction: { authorities: ['a.example'] } },
      { restriction: { gateways: ['c2', 'n1'] } },
      { restriction: { authorities: [], gateways: ['c1'] } },
      { route: 'r1', restriction: { authorities: ['b.example'], gateways: ['n1'] } },
    ];
    for (const f of filters) {
      const clauses = liveFilterMatch(f);
      const byClauses = rows.filter((row) => {
        const values: Record<string, string> = { ...row, route_name: row.route };
        return clauses.every((c) => c.columns.some((col) => c.values.includes(values[col])));
      });
      const expected = rows.filter((row) => matchesLiveFilters(row, f));
      expect(byClauses, JSON.stringify(f)).toEqual(expected);
      expect(expected.length, JSON.stringify(f)).toBeLessThanOrEqual(rows.length);
    }
    expect(liveFilterMatch({})).toEqual([]);
  });
});
