import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClickHouse, listMigrations, readJson, type ClickHouse } from '@gatescope/clickhouse';
import { seededRandom } from '@gatescope/demo-traffic';
import {
  exactQuantile,
  LATENCY_QUANTILES,
  LATENCY_QUANTILES_MERGE,
  LATENCY_QUANTILES_STATE,
  LATENCY_RELATIVE_ACCURACY,
  LATENCY_STATE_TYPE,
  LatencySketch,
  QUANTILE_LEVELS,
  decodeDDState,
  DenseLatencySketch,
  latencySketchFromState,
  DDStateError,
} from './quantiles.js';

/** Latencies as gateways see them: sub-ms local replies, zeros, a log-normal body, a slow mode, a few outliers. */
function latencies(n: number, seed: number): number[] {
  const r = seededRandom(seed);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const u = r();
    const z = Math.sqrt(-2 * Math.log(r() || 1e-12)) * Math.cos(2 * Math.PI * r());
    if (u < 0.03) out.push(0);
    else if (u < 0.1)
      out.push(Math.round(r() * 1000) / 1000); // 0.000–1.000 ms, µs resolution
    else if (u < 0.8) out.push(Math.round(20 * Math.exp(0.7 * z) * 1e6) / 1e6);
    else if (u < 0.99) out.push(Math.round(250 * Math.exp(0.3 * z) * 1e3) / 1e3);
    else out.push(Math.round(r() * 30_000 * 1e3) / 1e3);
  }
  return out;
}

/** Equal up to the last bits of exp/log (V8 and glibc may differ by an ulp); ClickHouse prints 17 digits. */
const same = (a: number | null, b: number | null) =>
  a === null || b === null ? a === b : Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));

describe('LatencySketch (pure)', () => {
  it('merges exactly: the merge of parts answers like one sketch of all values', () => {
    const values = latencies(20_000, 1);
    const whole = new LatencySketch();
    for (const v of values) whole.add(v);
    const parts = [new LatencySketch(), new LatencySketch(), new LatencySketch()];
    values.forEach((v, i) => parts[i % 3].add(v));
    const merged = parts.reduce((a, b) => a.merge(b), new LatencySketch());
    expect(merged.quantiles()).toEqual(whole.quantiles());
    expect(LatencySketch.fromJSON(JSON.parse(JSON.stringify(whole.toJSON()))).quantiles()).toEqual(
      whole.quantiles(),
    );
  });

  it('stays within α of the exact order statistic from 1 ms on, and within (1+α)·γ−1 below', () => {
    const values = latencies(50_000, 2);
    const s = new LatencySketch();
    for (const v of values) s.add(v);
    const sorted = Float64Array.from(values).sort();
    const a = LATENCY_RELATIVE_ACCURACY;
    const gamma = (1 + a) / (1 - a);
    for (const q of [0.01, 0.05, 0.1, 0.25, ...QUANTILE_LEVELS, 0.999, 1]) {
      const exact = exactQuantile(sorted, q);
      const got = s.quantile(q);
      if (exact === 0) expect(got).toBe(0);
      else if (exact >= 1) expect(Math.abs(got - exact) / exact).toBeLessThanOrEqual(a + 1e-12);
      else expect(got / exact - 1).toBeLessThanOrEqual((1 + a) * gamma - 1 + 1e-12);
    }
  });

  it('answers null for nothing and refuses to mix accuracies', () => {
    expect(new LatencySketch().quantiles()).toEqual([null, null, null, null]);
    expect(() => new LatencySketch(0.01).merge(new LatencySketch())).toThrow(/relative accuracy/);
    expect(() => new LatencySketch(0)).toThrow(RangeError);
  });
});

describe('LatencySketch against ClickHouse quantilesDD (embedded engine)', () => {
  let ch: ClickHouse;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatescope-quantiles-'));
    ch = await createClickHouse({ database: 'gatescope', dataDir: dir });
  });
  afterAll(async () => {
    await ch?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function engine(values: number[], sql: string): Promise<(number | null)[]> {
    const res = await readJson<{ q: (number | null)[] }>(ch.reader, {
      query: sql,
      params: { v: values },
    });
    return res.data[0].q;
  }

  it.each([
    ['mixed gateway latencies', latencies(30_000, 3)],
    ['integers only', latencies(5_000, 4).map(Math.round)],
    ['one value', [42.5]],
    ['sub-millisecond', latencies(3_000, 5).map((v) => v / 1000)],
    ['two values', [0.2, 900]],
  ])('same p50/p90/p95/p99 for %s, raw and merged from states', async (_name, values) => {
    const sketch = new LatencySketch();
    for (const v of values) sketch.add(v);
    const want = sketch.quantiles();
    const raw = await engine(values, `SELECT ${LATENCY_QUANTILES}(arrayJoin({v:Array(Float64)})) AS q`);
    // States over uneven groups, merged: what the rollups do.
    const merged = await engine(
      values,
      `SELECT ${LATENCY_QUANTILES_MERGE}(s) AS q FROM (SELECT ${LATENCY_QUANTILES_STATE}(x) AS s FROM ` +
        `(SELECT arrayJoin(arrayEnumerate({v:Array(Float64)})) AS i, {v:Array(Float64)}[i] AS x) GROUP BY i % 7)`,
    );
    for (let i = 0; i < want.length; i++) {
      expect(same(raw[i], want[i]), `level ${QUANTILE_LEVELS[i]}: engine ${raw[i]} vs js ${want[i]}`).toBe(
        true,
      );
      expect(same(merged[i], want[i]), `merged level ${QUANTILE_LEVELS[i]}`).toBe(true);
    }
  });

  it('is the state type the rollup tables store', () => {
    const sql = listMigrations().find((m) => m.name === '0002_create_rollups')!.sql;
    const types = [...sql.matchAll(/duration_quantiles\s+(AggregateFunction\([^\n]*\), Float64\))/g)].map(
      (m) => m[1],
    );
    expect(types.length).toBe(4);
    for (const t of types) expect(t).toBe(LATENCY_STATE_TYPE);
    expect(sql).toContain(`${LATENCY_QUANTILES_STATE}(duration_ms)`);
  });
});

describe('quantilesDD states decoded in JavaScript (embedded engine)', () => {
  let ch: ClickHouse;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatescope-dd-state-'));
    ch = await createClickHouse({ database: 'gatescope', dataDir: dir });
  });
  afterAll(async () => {
    await ch?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** States of `values` grouped by `i % groups` (uneven sizes: some sparse, some dense), with their merge. */
  async function states(values: number[], groups: number) {
    const res = await readJson<{ g: number; state: string; q: number[] }>(ch.reader, {
      query:
        `SELECT g, base64Encode(toString(s)) AS state, ${LATENCY_QUANTILES_MERGE}(s) AS q FROM (` +
        `SELECT intDiv(i * i, 7) % {groups:UInt32} AS g, ${LATENCY_QUANTILES_STATE}(x) AS s FROM ` +
        `(SELECT arrayJoin(arrayEnumerate({v:Array(Float64)})) AS i, {v:Array(Float64)}[i] AS x) GROUP BY g) ` +
        `GROUP BY g, s ORDER BY g`,
      params: { v: values, groups },
    });
    const all = await readJson<{ q: number[] }>(ch.reader, {
      query: `SELECT ${LATENCY_QUANTILES}(arrayJoin({v:Array(Float64)})) AS q`,
      params: { v: values },
    });
    return { groups: res.data, merged: all.data[0].q };
  }

  it.each([
    ['mixed gateway latencies', latencies(30_000, 11), 40],
    ['sub-millisecond and zeros', latencies(4_000, 12).map((v) => (v < 1 ? v / 10 : 0)), 9],
    ['few values per state (sparse encoding)', latencies(300, 13), 60],
    ['one slow value among fast ones', [...latencies(2_000, 14).map((v) => v / 100), 60_000], 3],
    ['negative values (mirrored store)', latencies(2_000, 15).map((v, i) => (i % 4 === 0 ? -v : v)), 5],
  ])('%s: each state and the JS merge of all answer what ClickHouse answers', async (_n, values, n) => {
    const { groups, merged } = await states(values, n);
    expect(groups.length).toBeGreaterThan(1);
    const dense = new DenseLatencySketch();
    const viaMaps = new LatencySketch();
    let decodedCount = 0;
    for (const g of groups) {
      const state = decodeDDState(Buffer.from(g.state, 'base64'));
      decodedCount += state.count;
      const sketch = latencySketchFromState(state);
      const got = sketch.quantiles();
      for (let i = 0; i < got.length; i++)
        expect(same(got[i], g.q[i]), `group ${g.g} level ${QUANTILE_LEVELS[i]}: ${got[i]} vs ${g.q[i]}`).toBe(
          true,
        );
      expect(new DenseLatencySketch().merge(state).quantiles()).toEqual(got);
      dense.merge(state);
      viaMaps.merge(sketch);
    }
    expect(decodedCount).toBe(values.length);
    const got = dense.quantiles();
    expect(got).toEqual(viaMaps.quantiles());
    for (let i = 0; i < got.length; i++)
      expect(same(got[i], merged[i]), `merged level ${QUANTILE_LEVELS[i]}: ${got[i]} vs ${merged[i]}`).toBe(
        true,
      );
    // Reused after clear(): the same answers.
    dense.clear();
    for (const g of groups) dense.merge(decodeDDState(Buffer.from(g.state, 'base64')));
    expect(dense.quantiles()).toEqual(got);
  });

  it('reads both bin encodings ClickHouse writes (contiguous counts and index deltas)', async () => {
    const res = await readJson<{ state: string; q: number[] }>(ch.reader, {
      query:
        `SELECT base64Encode(toString(s)) AS state, ${LATENCY_QUANTILES_MERGE}(s) AS q FROM (SELECT ` +
        `${LATENCY_QUANTILES_STATE}(toFloat64(1 + if(number < 3, number * 700, number / 100))) AS s FROM numbers(2000) GROUP BY number < 3 AS n) GROUP BY s`,
    });
    // Byte 18: the positive store's encoding, after the mapping (1 + 8 + 8 bytes) and its flag.
    const encodings = res.data.map((r) => Buffer.from(r.state, 'base64')[18]).sort((a, b) => a - b);
    expect(encodings).toEqual([0x04, 0x0c]);
    for (const r of res.data) {
      const got = latencySketchFromState(decodeDDState(Buffer.from(r.state, 'base64'))).quantiles();
      got.forEach((v, i) => expect(same(v, r.q[i])).toBe(true));
    }
  });

  it('decodes an empty state and refuses other bytes or another accuracy', async () => {
    const empty = await readJson<{ state: string }>(ch.reader, {
      query: `SELECT base64Encode(toString(${LATENCY_QUANTILES_STATE}(x))) AS state FROM (SELECT 1.0 AS x WHERE 0)`,
    });
    const state = decodeDDState(Buffer.from(empty.data[0].state, 'base64'));
    expect(state.count).toBe(0);
    expect(new DenseLatencySketch().merge(state).quantiles()).toEqual([null, null, null, null]);
    const other = await readJson<{ state: string }>(ch.reader, {
      query: `SELECT base64Encode(toString(quantilesDDState(0.01, 0.5)(toFloat64(number)))) AS state FROM numbers(10)`,
    });
    expect(() => decodeDDState(Buffer.from(other.data[0].state, 'base64'))).toThrow(/gamma/);
    expect(() => decodeDDState(new Uint8Array([2, 1, 2]))).toThrow(DDStateError);
  });
});
