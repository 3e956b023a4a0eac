import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildApp } from '@gatescope/api';
import type { ClickHouse } from '@gatescope/clickhouse';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { generate, H, openEngine, READ, testConfig } from '../../services/api/test/fixtures.js';
import { expandGrafanaSql, type GrafanaQueryContext } from '../support/grafana-sql.js';

// The shipped Grafana dashboards read gatescope's tables directly. Every panel's SQL is expanded the way the
// ClickHouse data source does it (test/support/grafana-sql.ts: template variables, $__conditionalAll, the backend
// macros), run on the real engine, and its numbers compared with the API's for the same range and filters: the
// dashboards plan rollups like the API (hourly from 12 h, per minute below, whole buckets) and compute the same
// quantiles (merged quantilesDD(0.005) states). The Prometheus dashboard's expressions pass promtool and name
// metrics gatescope registers.

const dir = fileURLToPath(new URL('../../dashboards/grafana/', import.meta.url));
interface Target {
  rawSql?: string;
  expr?: string;
  format?: number;
}
interface Panel {
  title: string;
  targets: Target[];
}
interface Variable {
  name: string;
  type: string;
  query: string;
  multi?: boolean;
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Variable[] };
  links: { url: string }[];
}
const load = (file: string) => JSON.parse(readFileSync(join(dir, file), 'utf8')) as Dashboard;
const overview = load('ingress-overview.json');
const routeDetail = load('route-detail.json');
const health = load('gatescope-health.json');
const panel = (d: Dashboard, title: string) => {
  const p = d.panels.find((x) => x.title.startsWith(title));
  if (!p) throw new Error(`${d.title} has no panel "${title}"`);
  return p;
};

let ch: ClickHouse;
let cleanup: () => Promise<void>;
let app: FastifyInstance;
/** The newest whole hour before the data ends: every range below is in the past. */
const HOUR0 = Math.floor(Date.now() / H) * H - 2 * H;
const CANARY = 'route-00';

beforeAll(async () => {
  ({ ch, cleanup } = await openEngine());
  // 60k requests over the 30 h before HOUR0 + 1 h: 20 routes, log-normal latency, 5xx, response flags, two
  // gateways, five authorities, route-00 split 50/50 between frontend and frontendv2.
  await generate(ch, { startMs: HOUR0 - 29 * H, spanMs: 30 * H, total: 60_000, canary: true });
  app = await buildApp({ config: testConfig(), clickhouse: ch, logger: false });
  await app.ready();
}, 180_000);
afterAll(async () => {
  await app?.close();
  await cleanup?.();
});

type Row = Record<string, unknown>;
async function sql<T = Row>(statement: string): Promise<T[]> {
  const rs = await ch.reader.query({ query: statement, format: 'JSONEachRow' });
  return rs.json<T>();
}
async function api<T>(path: string): Promise<T> {
  const res = await app.inject({ url: path, headers: { authorization: `Bearer ${READ}` } });
  expect(res.statusCode, `${path}: ${res.body}`).toBe(200);
  return res.json<T>();
}

/** Resolve a dashboard's variables for a range as Grafana does (query variables run through the plugin). */
async function variables(
  d: Dashboard,
  range: { fromMs: number; toMs: number },
  chosen: Record<string, string | string[]> = {},
): Promise<GrafanaQueryContext['vars']> {
  const vars: GrafanaQueryContext['vars'] = {};
  for (const v of d.templating.list) {
    if (v.name in chosen) vars[v.name] = chosen[v.name];
    else if (v.type === 'textbox') vars[v.name] = v.query;
    else if (v.type === 'query') {
      const rows = await sql(expandGrafanaSql(v.query, { ...range, intervalS: 60, vars }));
      const values = rows.map((r) => String(Object.values(r)[0]));
      vars[v.name] = v.multi ? ['$__all'] : (values[0] ?? '');
      if (v.multi) expect(values.length, `${d.title}: values of $${v.name}`).toBeGreaterThan(1);
    }
  }
  return vars;
}

async function run(
  d: Dashboard,
  title: string,
  range: { fromMs: number; toMs: number; intervalS?: number },
  vars: GrafanaQueryContext['vars'],
): Promise<Row[]> {
  const t = panel(d, title).targets[0];
  return sql(expandGrafanaSql(t.rawSql!, { intervalS: 60, ...range, vars }));
}

interface Stats {
  requests: number;
  rps: number;
  error_rate: number;
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
}
/** The API reports latency in ms rounded to the microsecond (@gatescope/query `toStats`). */
const us = (v: unknown) => Math.round(Number(v) * 1000) / 1000;
function expectSameStats(grafana: Row, apiStats: Stats, what: string) {
  expect(Number(grafana.requests), `${what}: requests`).toBe(apiStats.requests);
  expect(Number(grafana.rps), `${what}: rps`).toBeCloseTo(apiStats.rps, 9);
  expect(Number(grafana.error_rate), `${what}: error_rate`).toBeCloseTo(apiStats.error_rate, 12);
  for (const q of ['p50_ms', 'p95_ms', 'p99_ms'] as const)
    expect(us(grafana[q]), `${what}: ${q}`).toBe(apiStats[q]);
}

const iso = (ms: number) => new Date(ms).toISOString();
// 24 h (hourly rollup, as the API plans it by itself) and 3 h 5 min with unaligned ends (per-minute rollup;
// the API is asked for source=rollup, since at this density it would read raw rows instead).
const RANGES = [
  { name: '24 h', fromMs: HOUR0 - 24 * H, toMs: HOUR0, table: '1h', apiSource: '' },
  {
    name: '3 h 5 min',
    fromMs: HOUR0 - 5 * H + 7.5 * 60_000,
    toMs: HOUR0 - 2 * H + 12.25 * 60_000,
    table: '1m',
    apiSource: '&source=rollup',
  },
];

describe('Grafana dashboards', () => {
  it('are the three the compose Grafana provisions, with the database a variable, never a literal', () => {
    expect(
      readdirSync(dir)
        .filter((f) => f.endsWith('.json'))
        .sort(),
    ).toEqual(['gatescope-health.json', 'ingress-overview.json', 'route-detail.json']);
    const provider = parse(readFileSync(join(dir, 'provisioning/dashboards/gatescope.yaml'), 'utf8')) as {
      providers: { options: { path: string } }[];
    };
    expect(provider.providers[0].options.path).toBe('/var/lib/grafana/dashboards');
    for (const d of [overview, routeDetail]) {
      expect(d.templating.list.find((v) => v.name === 'database')?.query).toBe('gatescope');
      for (const p of d.panels)
        for (const t of p.targets) {
          expect(t.rawSql, `${d.title} / ${p.title}`).not.toMatch(/\bgatescope\./);
          expect(t.rawSql).toMatch(/\$\{database\}\./);
        }
    }
    expect(overview.templating.list.map((v) => v.name)).toEqual(
      expect.arrayContaining(['gateway', 'authority', 'route', 'rollup']),
    );
  });

  it('pick the rollup the API picks: hourly from 12 h on, per minute below', async () => {
    for (const r of RANGES) {
      const vars = await variables(overview, r);
      expect(vars.rollup, r.name).toBe(r.table);
      const summary = await api<{ source: { table: string } }>(
        `/api/v1/summary?from=${iso(r.fromMs)}&to=${iso(r.toMs)}${r.apiSource}`,
      );
      expect(summary.source.table.endsWith(`_${r.table}`), r.name).toBe(true);
    }
  });

  it('run every panel against the engine and return rows, with every filter at All and at one value', async () => {
    const r = RANGES[0];
    for (const d of [overview, routeDetail]) {
      const choices: GrafanaQueryContext['vars'][] = [
        {},
        { gateway: ['gw-1'], authority: ['app0.example.com'], route: [CANARY] },
      ];
      for (const chosen of choices) {
        const vars = await variables(d, r, d === routeDetail ? { route: CANARY } : chosen);
        for (const p of d.panels) {
          const rows = await run(d, p.title, { ...r, intervalS: 3600 }, vars);
          expect(rows.length, `${d.title} / ${p.title}`).toBeGreaterThan(0);
        }
      }
    }
  });

  for (const r of RANGES) {
    const q = () => `from=${iso(r.fromMs)}&to=${iso(r.toMs)}${r.apiSource}`;

    it(`Ingress overview = /api/v1/summary and /api/v1/routes over ${r.name}`, async () => {
      const all = await variables(overview, r);
      const [total] = await run(overview, 'Requests, rate, 5xx, latency', r, all);
      expectSameStats(total, await api<Stats>(`/api/v1/summary?${q()}`), 'all traffic');
      expect(Number(total.requests)).toBeGreaterThan(1000);

      // Filtered: a gateway, an authority and a route, each as the API takes them.
      const one = { gateway: ['gw-1'], authority: ['app0.example.com'], route: [CANARY, 'route-05'] };
      const [filtered] = await run(overview, 'Requests, rate, 5xx, latency', r, { ...all, ...one });
      const apiFiltered = await api<Stats>(
        `/api/v1/summary?${q()}&gateway=gw-1&authority=app0.example.com&route=${CANARY}&route=route-05`,
      );
      expect(apiFiltered.requests).toBeGreaterThan(0);
      expectSameStats(filtered, apiFiltered, 'filtered');

      const top = await run(overview, 'Top routes', r, all);
      const routes = await api<{ routes: (Stats & { route: string })[] }>(`/api/v1/routes?${q()}&limit=20`);
      expect(top.map((t) => t.route)).toEqual(routes.routes.map((x) => x.route));
      top.forEach((t, i) => expectSameStats(t, routes.routes[i], `route ${String(t.route)}`));
    });

    it(`Route detail's canary split = /api/v1/routes/{route}/split over ${r.name}`, async () => {
      const vars = await variables(routeDetail, r, { route: CANARY });
      const split = await run(routeDetail, 'Canary split', r, vars);
      const fromApi = await api<{ clusters: (Stats & { upstream_cluster: string; share: number })[] }>(
        `/api/v1/routes/${CANARY}/split?${q()}`,
      );
      expect(split.map((s) => s.upstream_cluster)).toEqual(fromApi.clusters.map((c) => c.upstream_cluster));
      expect(split).toHaveLength(2);
      split.forEach((s, i) => {
        const c = fromApi.clusters[i];
        expect(Number(s.share)).toBeCloseTo(c.share, 12);
        expect(Number(s.requests)).toBe(c.requests);
        expect(Number(s.error_rate)).toBeCloseTo(c.error_rate, 12);
        for (const k of ['p50_ms', 'p95_ms', 'p99_ms'] as const) expect(us(s[k])).toBe(c[k]);
      });
    });
  }

  it('latency over time = /api/v1/timeseries step by step (hourly steps over 24 h)', async () => {
    const r = RANGES[0];
    const vars = await variables(overview, r);
    const points = await run(overview, 'Latency p50', { ...r, intervalS: 3600 }, vars);
    const ts = await api<{
      step_s: number;
      series: { labels: { metric: string }; points: [number, number][] }[];
    }>(`/api/v1/timeseries?from=${iso(r.fromMs)}&to=${iso(r.toMs)}&step=1h&metrics=p50_ms,p99_ms`);
    expect(ts.step_s).toBe(3600);
    const metric = (m: string) => new Map(ts.series.find((x) => x.labels.metric === m)!.points);
    const p50 = metric('p50_ms');
    const p99 = metric('p99_ms');
    expect(points.length).toBe(24);
    for (const p of points) {
      const time = String(p.time); // ISO (the client's date_time_output_format) or ClickHouse's default form
      const at = Date.parse(time.includes('T') ? time : `${time.replace(' ', 'T')}Z`);
      expect(p50.has(at), `a point at ${iso(at)}`).toBe(true);
      expect(us(p.p50_ms)).toBe(p50.get(at));
      expect(us(p.p99_ms)).toBe(p99.get(at));
    }
  });

  it("link the route page of gatescope's UI and each other", () => {
    expect(routeDetail.links.map((l) => l.url)).toContain(
      '${gatescope_url}/#/route?name=${route:percentencode}&from=${__from:date:iso}&to=${__to:date:iso}',
    );
    expect(JSON.stringify(overview.panels)).toContain('/d/gatescope-route?');
  });
});

describe('gatescope health dashboard (Prometheus)', () => {
  const exprs = health.panels.flatMap((p) => p.targets.map((t) => ({ panel: p.title, expr: t.expr! })));

  it('has valid PromQL in every panel (promtool check rules)', () => {
    const rulesDir = mkdtempSync(join(tmpdir(), 'gs-health-rules-'));
    const file = join(rulesDir, 'rules.yml');
    const rules = exprs.map((e, i) => ({
      record: `gatescope:check_${i}`,
      expr: e.expr.replaceAll('$__rate_interval', '1m'),
    }));
    writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboard', rules }] }));
    const r = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
    expect(r.error, 'promtool must be installed (test/setup/system-deps.sh)').toBeUndefined();
    expect(r.stdout + r.stderr).toMatch(new RegExp(`SUCCESS: ${rules.length} rules found`));
  });

  it('reads only metrics gatescope registers', () => {
    const registered = new Set<string>();
    const roots = ['services', 'packages'].map((p) => fileURLToPath(new URL(`../../${p}/`, import.meta.url)));
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (e.name === 'node_modules' || e.name === 'dist' || e.name === 'test') continue;
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (/\.ts$/.test(e.name) && !e.name.endsWith('.test.ts'))
          for (const m of readFileSync(p, 'utf8').matchAll(/name: '(gatescope_\w+)'|'(gatescope_\w+)'/g))
            registered.add(m[1] ?? m[2]);
      }
    };
    roots.forEach(walk);
    const used = new Set(exprs.flatMap((e) => [...e.expr.matchAll(/\b(gatescope_\w+)/g)].map((m) => m[1])));
    const missing = [...used]
      .map((m) => m.replace(/_(bucket|sum|count)$/, ''))
      .filter((m) => !registered.has(m));
    expect(missing).toEqual([]);
    expect(used.size).toBeGreaterThan(10);
  });
});
