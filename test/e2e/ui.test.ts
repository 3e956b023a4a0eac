/**
 * Browser tests: the all-in-one pieces in-process on port 0 (embedded ClickHouse, collector, query API serving the
 * built UI, live server), demo ALS traffic over real gRPC, Debian's Chromium driven by playwright-core.
 * Screenshots land in test-results/ as artefacts.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createClickHouse, migrate, type ClickHouse } from '@gatescope/clickhouse';
import { buildCollector, type Collector } from '@gatescope/collector';
import { loadConfig } from '@gatescope/config';
import { startDemoTraffic, type DemoTraffic } from '@gatescope/demo-traffic';
import { attachLive, type LiveServer } from '@gatescope/live';
import { webRoot } from '@gatescope/web';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

const CHROMIUM = process.env.GATESCOPE_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = resolve(import.meta.dirname, '../../test-results');

let dir: string;
let ch: ClickHouse;
let collector: Collector;
let live: LiveServer;
let closeHttp: () => Promise<void>;
let base: string;
let alsPort: number;
let demo: DemoTraffic | undefined;
let context: BrowserContext;
let page: Page;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gatescope-e2e-'));
  mkdirSync(SHOTS, { recursive: true });
  const config = loadConfig({
    GATESCOPE_DATA_DIR: dir,
    GATESCOPE_HTTP_PORT: '0',
    GATESCOPE_ALS_PORT: '0',
    GATESCOPE_LOG_LEVEL: 'silent',
  });
  ch = await createClickHouse({ database: config.clickhouse.database, dataDir: dir });
  await migrate(ch, { retentionDays: config.retentionDays, rollupRetentionDays: config.rollupRetentionDays });
  collector = await buildCollector({ config, clickhouse: ch });
  alsPort = await collector.listen('127.0.0.1', 0);

  const { buildApp } = await import('@gatescope/api');
  const app = await buildApp({ config, clickhouse: ch, webRoot });
  live = attachLive({ httpServer: app.server, config, clickhouse: ch, alsPort });
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  closeHttp = () => app.close();

  context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'gatescope-chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1440, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  page = context.pages()[0] ?? (await context.newPage());
  // Every Content-Security-Policy violation on any page, from the browser itself (event and console).
  await context.addInitScript(() => {
    (window as unknown as { cspViolations: string[] }).cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      (window as unknown as { cspViolations: string[] }).cspViolations.push(
        `${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`,
      ),
    );
  });
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) cspConsole.push(m.text());
  });
});

const cspConsole: string[] = [];
afterEach(async () => {
  const fromPage = await page.evaluate(
    () => (window as unknown as { cspViolations?: string[] }).cspViolations ?? [],
  );
  expect([...fromPage, ...cspConsole.splice(0)], 'CSP violations').toEqual([]);
});

afterAll(async () => {
  await demo?.stop();
  await context?.close();
  await collector?.close(10_000);
  await live?.close();
  await closeHttp?.();
  await ch?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const shot = (name: string) => page.screenshot({ path: join(SHOTS, `ui-${name}.png`), fullPage: true });
const attr = (selector: string, name: string) => page.locator(selector).first().getAttribute(name);

describe('web UI', () => {
  it('with no traffic, the overview tells how to point Envoy/Istio at the ALS port and how to run the demo', async () => {
    await page.goto(`${base}/#/overview`);
    const empty = page.locator('#empty-state');
    await empty.waitFor({ timeout: 15_000 });
    const text = await empty.innerText();
    expect(text).toContain(`port_value: ${alsPort}`);
    expect(text).toContain('envoy.access_loggers.http_grpc');
    expect(text).toContain('envoyHttpAls');
    expect(text).toContain('npm run demo');
    await shot('overview-empty');
    const loadMs = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
      return nav.loadEventEnd - nav.startTime;
    });
    console.log(`UI page load from localhost: ${loadMs.toFixed(0)} ms`);
  });

  it('overview charts draw and move when ALS traffic arrives', async () => {
    demo = startDemoTraffic({ target: `127.0.0.1:${alsPort}`, rps: 150, seed: 7 });
    await page.waitForFunction(
      () => Number(document.querySelector('#totals')?.getAttribute('data-requests')) > 0,
      null,
      { timeout: 20_000 },
    );
    expect(await page.locator('#empty-state').count()).toBe(0);
    await page.waitForFunction(
      () => Number(document.querySelector('#chart-rps')?.getAttribute('data-points')) >= 2,
      null,
      { timeout: 20_000 },
    );
    // uPlot draws on a canvas: the chart picture changes as new seconds arrive.
    const chart = page.locator('#chart-rps canvas').first();
    const before = await chart.screenshot();
    const lastBefore = Number(await attr('#chart-rps', 'data-last'));
    await page.waitForFunction(
      (l) => Number(document.querySelector('#chart-rps')?.getAttribute('data-last')) > l,
      lastBefore,
      { timeout: 10_000 },
    );
    await page.waitForTimeout(1500);
    const after = await chart.screenshot();
    expect(Buffer.compare(before, after)).not.toBe(0);
    for (const id of ['#chart-errors', '#chart-latency', '#chart-status']) {
      expect(await page.locator(`${id} canvas`).count()).toBeGreaterThan(0);
    }
    const rps = await page.locator('#totals .card .value').first().innerText();
    expect(Number.parseFloat(rps)).toBeGreaterThan(0);
    await shot('overview-live');
    await page.locator('#theme').click();
    expect(await page.locator('html').getAttribute('data-theme')).toBe('dark');
    await page.waitForFunction(
      () => Number(document.querySelector('#chart-rps')?.getAttribute('data-points')) > 0,
    );
    await page.waitForTimeout(300);
    await shot('overview-live-dark');
    await page.locator('#theme').click();
    // Wall display: no navigation, bigger charts.
    await page.goto(`${base}/#/overview?kiosk=1`);
    await page.reload();
    await page.locator('#chart-rps canvas').first().waitFor();
    expect(await page.locator('header.top').isVisible()).toBe(false);
    await page.waitForFunction(
      () => Number(document.querySelector('#chart-rps')?.getAttribute('data-points')) > 0,
    );
    await shot('overview-kiosk');
  });

  it('routes table updates live with health colours', async () => {
    await page.goto(`${base}/#/routes`);
    const canary = page.locator('#routes-table tbody tr[data-route="frontend-canary"]');
    await canary.waitFor({ timeout: 15_000 });
    const n1 = Number(await canary.getAttribute('data-requests'));
    await page.waitForFunction(
      (n) =>
        Number(
          document
            .querySelector('#routes-table tr[data-route="frontend-canary"]')
            ?.getAttribute('data-requests'),
        ) > n,
      n1,
      { timeout: 15_000 },
    );
    expect(await page.locator('#routes-table tbody tr[data-route]').count()).toBeGreaterThanOrEqual(6);
    expect(await canary.locator('.badge').innerText()).toMatch(/healthy|degraded|failing/);
    expect(await canary.locator('svg.spark polyline').count()).toBe(1);
    // Sorting is URL state.
    await page.locator('#routes-table th', { hasText: 'p99' }).click();
    await page.waitForFunction(() => location.hash.includes('sort=p99_ms'));
    await shot('routes');
  });

  it('route detail shows the canary split: frontend and frontendv2 near 50/50', async () => {
    await collector.flush();
    await page.goto(`${base}/#/route?name=frontend-canary&range=15m`);
    const rows = page.locator('#split tr[data-cluster*="frontend"]');
    await rows.nth(1).waitFor({ timeout: 20_000 });
    const clusters = await rows.evaluateAll((trs) =>
      trs.map((tr) => [tr.getAttribute('data-cluster'), Number(tr.getAttribute('data-share'))] as const),
    );
    const names = clusters.map(([c]) => c).sort();
    expect(names).toEqual([
      'outbound|80||frontend.default.svc.cluster.local',
      'outbound|80||frontendv2.default.svc.cluster.local',
    ]);
    const [a, b] = clusters.map(([, s]) => s);
    expect(a / (a + b)).toBeGreaterThan(0.4);
    expect(a / (a + b)).toBeLessThan(0.6);
    await page.waitForFunction(
      () => Number(document.querySelector('#detail-rps')?.getAttribute('data-points')) > 0,
      null,
      { timeout: 15_000 },
    );
    await page.locator('#detail-clusters canvas').first().waitFor({ timeout: 15_000 });
    await shot('route-detail');
  });

  it('the live tail streams requests and pauses', async () => {
    await page.goto(`${base}/#/tail`);
    await page.locator('#tail-rows tr').first().waitFor({ timeout: 15_000 });
    await page.locator('#tail-pause').click();
    await page.waitForTimeout(500);
    const n = await page.locator('#tail-rows tr:not(.detail)').count();
    await page.waitForTimeout(2500);
    expect(await page.locator('#tail-rows tr:not(.detail)').count()).toBe(n);
    await shot('tail');
  });

  it('the requests explorer lists requests behind a chart point', async () => {
    const now = Date.now();
    await page.goto(`${base}/#/requests?route=frontend-canary&from=${now - 60_000}&to=${now}`);
    await page.locator('#request-rows tr').first().waitFor({ timeout: 15_000 });
    expect(await page.locator('#request-rows').innerText()).toContain('frontend');
    await page.locator('html').evaluate((el) => (el.dataset.theme = 'light'));
    await shot('requests-light');
  });
  it('serves the API docs under their own policy, without violations', async () => {
    await page.goto(`${base}/docs/`);
    await page.locator('.swagger-ui .opblock').first().waitFor({ timeout: 15_000 });
    expect(await page.locator('.swagger-ui .opblock').count()).toBeGreaterThanOrEqual(8);
    await shot('docs');
  });
  // Last: with the embedded engine, the SQL endpoint's per-query settings (readonly) currently leak into chdb's
  // shared session and block later inserts (reported to the lead); nothing after this depends on new inserts.
  it('the SQL console returns rows', async () => {
    await page.goto(`${base}/#/sql`);
    await page.locator('#sql-run').click();
    await page.locator('#sql-result table.data, #sql-result .error').first().waitFor({ timeout: 20_000 });
    expect(
      await page.locator('#sql-result .error').count(),
      await page.locator('#sql-result').innerText(),
    ).toBe(0);
    const text = await page.locator('#sql-result').innerText();
    expect(text).toContain('frontend-canary');
    expect(await page.locator('#sql-result table.data tbody tr').count()).toBeGreaterThanOrEqual(6);
    await shot('sql');
  });
});
