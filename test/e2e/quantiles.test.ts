import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@gatescope/config';
import { startGatescope, type Gatescope } from '@gatescope/gatescope';
import {
  exactQuantile,
  LatencySketch,
  QUANTILE_LEVELS,
  QUANTILE_NAMES,
  QueryReader,
  windowStats,
} from '@gatescope/query';
import { pino } from 'pino';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTrafficMessage } from '../fixtures/als.js';
import { alsClient } from '../support/als-client.js';
import { expandGrafanaSql } from '../support/grafana-sql.js';

// One number per question: one traffic set goes through the real ALS port of the all-in-one process; then
// p50/p90/p95/p99 for the same requests from the API (raw rows and rollups), the live socket, the Grafana latency
// panel's SQL, the alert evaluator's entry point (windowStats) and the JS sketch must be the same number, within
// 1 % (in fact 0.5 %) of the exact order statistic.
interface Panel {
  title: string;
  targets?: { rawSql?: string }[];
  panels?: Panel[];
}
const dashboard = JSON.parse(
  readFileSync(new URL('../../dashboards/grafana/ingress-overview.json', import.meta.url), 'utf8'),
) as { panels: Panel[] };
const allPanels = (ps: Panel[]): Panel[] => ps.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);

const MESSAGES = 40;
const PER_MESSAGE = 100;
let gs: Gatescope;
let base: string;
let t0: number;

beforeAll(async () => {
  const config = loadConfig({
    GATESCOPE_DATA_DIR: mkdtempSync(join(tmpdir(), 'gs-e2e-quantiles-')),
    GATESCOPE_HTTP_PORT: '0',
    GATESCOPE_ALS_PORT: '0',
    GATESCOPE_BATCH_MAX_DELAY_MS: '100',
    GATESCOPE_LIVE_TICK_MS: '250',
  });
  gs = await startGatescope(config, pino({ level: 'silent' }));
  base = `http://127.0.0.1:${gs.httpPort}`;
  // 12 s of traffic inside one minute (so one Grafana per-minute point holds all of it), in the past and inside the
  // live window (60 s): the last 13 s, or the end of the previous minute when this one has just begun.
  const now = Date.now();
  t0 = now % 60_000 >= 14_000 ? now - 13_000 : now - (now % 60_000) - 14_000;
  const client = alsClient(gs.alsPort);
  await client.ready();
  const { call, done } = client.open();
  for (let i = 0; i < MESSAGES; i++) {
    const { bytes } = makeTrafficMessage({
      entries: PER_MESSAGE,
      seed: 100 + i,
      identifier: i === 0,
      start: new Date(t0 + i * 300),
    });
    call.write(bytes);
  }
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    await gs.flush();
    const rs = await gs.clickhouse.client.query({
      query: 'SELECT count() AS n FROM gatescope.http_requests',
      format: 'JSONEachRow',
    });
    const [{ n }] = (await rs.json()) as { n: number }[];
    if (Number(n) >= MESSAGES * PER_MESSAGE) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  call.end();
  await done.catch(() => undefined);
  client.close();
}, 120_000);

afterAll(async () => {
  await gs?.close();
});

const r3 = (v: number) => Math.round(v * 1000) / 1000;

describe('one latency quantile everywhere', () => {
  it('API raw, API rollup, live stats, Grafana panel SQL, the alert entry point and the JS sketch agree', async () => {
    const { data: stored } = (await (
      await gs.clickhouse.client.query({
        query: 'SELECT duration_ms AS d FROM gatescope.http_requests ORDER BY d',
        format: 'JSONCompact',
      })
    ).json()) as { data: [number][] };
    const durations = Float64Array.from(stored.map((r) => Number(r[0])));
    expect(durations.length).toBe(MESSAGES * PER_MESSAGE);
    const exact = QUANTILE_LEVELS.map((q) => exactQuantile(durations, q));
    const sketch = new LatencySketch();
    for (const d of durations) sketch.add(d);
    const js = sketch.quantiles() as number[];

    // A window of whole minutes around the traffic: raw rows and the per-minute rollup cover the same requests.
    const from = Math.floor(t0 / 60_000) * 60_000;
    const to = from + 60_000;
    const api = async (source: string) => {
      const res = await fetch(`${base}/api/v1/summary?from=${from}&to=${to}&source=${source}`);
      expect(res.status).toBe(200);
      return (await res.json()) as Record<string, number> & { source: { kind: string } };
    };
    const raw = await api('raw');
    const rollup = await api('rollup');
    expect(raw.source.kind).toBe('raw');
    expect(rollup.source.kind).not.toBe('raw');
    expect(raw.requests).toBe(durations.length);
    expect(rollup.requests).toBe(durations.length);

    // The live socket's window (the last 60 s) holds the same requests.
    const socket: Socket = io(`${base}/live`, { transports: ['websocket'], forceNew: true });
    const live = await new Promise<Record<string, number>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no live stats with every request')), 15_000);
      socket.on('stats', (s: { totals: Record<string, number> }) => {
        if (s.totals.requests !== durations.length) return;
        clearTimeout(timer);
        resolve(s.totals);
      });
      socket.emit('subscribe', {});
    });
    socket.disconnect();

    // The Ingress overview's whole-range panel, its macros and variables expanded as the ClickHouse data source
    // does for this minute (per-minute rollup, every gateway, authority and route).
    const panel = allPanels(dashboard.panels).find((p) =>
      p.title.startsWith('Requests, rate, 5xx, latency'),
    )!;
    const sql = expandGrafanaSql(panel.targets![0].rawSql!, {
      fromMs: from,
      toMs: to,
      intervalS: 60,
      vars: {
        database: 'gatescope',
        rollup: '1m',
        rollup_s: '60',
        gateway: ['$__all'],
        authority: ['$__all'],
        route: ['$__all'],
      },
    });
    const grafana = (
      (await (await gs.clickhouse.client.query({ query: sql, format: 'JSONEachRow' })).json()) as Record<
        string,
        number
      >[]
    )[0];
    expect(Number(grafana.requests)).toBe(MESSAGES * PER_MESSAGE);

    // What the alert evaluator calls.
    const reader = new QueryReader({ clickhouse: gs.clickhouse, limits: loadConfig({}).query.limits });
    const alert = (await windowStats(reader, { range: { from, to }, filters: {} })).stats;

    QUANTILE_NAMES.forEach((name, i) => {
      const want = r3(js[i]);
      const seen: Record<string, number> = {
        'API raw': raw[name],
        'API rollup': rollup[name],
        live: live[name],
        grafana: r3(Number(grafana[name])),
        alerts: alert[name] ?? NaN,
      };
      for (const [path, v] of Object.entries(seen)) {
        expect(v, `${name} from ${path}`).toBe(want);
        expect(Math.abs(v / exact[i] - 1), `${name} from ${path} vs exact ${exact[i]}`).toBeLessThanOrEqual(
          0.01,
        );
      }
      // The sketch's own bound, tighter than the target: 0.5 % for values from 1 ms (these are 1–121 ms).
      expect(Math.abs(js[i] / exact[i] - 1)).toBeLessThanOrEqual(0.005 + 1e-12);
    });
  });
});
