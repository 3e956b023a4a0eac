/**
 * The Alerts and Ingest pages against the real all-in-one process (as `npm start` runs it): alert rules from a
 * provisioning file, evaluated every second over real ALS traffic, webhooks to a real receiver on loopback; the
 * delivery ledger of two gateway nodes, one of which stops. Debian's Chromium via playwright-core, signed in
 * with a read token (sees everything, changes nothing) and an admin token. Screenshots land in test-results/.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { encodeStreamAccessLogsMessage } from '@gatescope/als';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alsClient } from '../support/als-client.js';
import { startGatescopeProcess, type GatescopeProcess } from '../support/gatescope-process.js';
import { startWebhookReceiver } from '../support/webhook-receiver.js';

const CHROMIUM = process.env.GATESCOPE_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = resolve(import.meta.dirname, '../../test-results');
const READ = 'ops-read-token-5c1e7a';
const ADMIN = 'ops-admin-token-9d2f30';
const RULE = 'checkout-5xx';

let gs: GatescopeProcess;
let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
let context: BrowserContext;
let page: Page;
let als: ReturnType<typeof alsClient>;
const streams: Record<string, ReturnType<ReturnType<typeof alsClient>['open']>> = {};
const violations: string[] = [];

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  receiver = await startWebhookReceiver();
  const dir = mkdtempSync(join(tmpdir(), 'gs-ui-ops-'));
  const alertsFile = join(dir, 'alerts.yaml');
  writeFileSync(
    alertsFile,
    `receivers:
  - name: oncall
    url: ${receiver.url('/oncall')}
    allow_private_network: true
    group_wait: 0s
    group_interval: 1s
    repeat_interval: 1h
rules:
  - name: ${RULE}
    metric: error_rate
    filter: { authority: shop.example.com }
    group_by: [route]
    op: ">"
    threshold: 0.2
    window: 1m
    for: 1s
    min_requests: 20
    labels: { severity: page }
    annotations: { summary: "{{ $labels.route }} 5xx at {{ $value }}" }
    receivers: [oncall]
`,
  );
  gs = await startGatescopeProcess({
    env: {
      GATESCOPE_TOKENS: `viewer:${READ}:read,ops:${ADMIN}:admin`,
      GATESCOPE_ALERTS_FILE: alertsFile,
      GATESCOPE_ALERTS_INTERVAL: '1s',
      GATESCOPE_STALE_AFTER: '3s',
      GATESCOPE_BATCH_MAX_DELAY_MS: '100',
    },
  });
  als = alsClient(gs.alsPort);
  await als.ready();
  // gw-b, for the Ingest page: 40 good entries and 7 dated ten days ahead, outside the clock-skew window. Those
  // gather for up to a minute before they are dead-lettered (start_time_out_of_range): sent first, they have
  // settled by the time the Ingest test looks.
  send('gw-b', 'catalog', 40);
  send('gw-b', 'catalog', 7, { startS: Math.floor(Date.now() / 1000) + 10 * 86_400 });
  context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'gatescope-chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
  });
});

afterAll(async () => {
  for (const s of Object.values(streams)) s.call.cancel();
  als?.close();
  await context?.close();
  await gs?.stop();
  await receiver?.close();
});

// ---- traffic --------------------------------------------------------------------------------------------------
let seq = 0;
/** `count` entries of one route from one gateway node, started a second ago (or `startS`). */
function message(
  node: string,
  route: string,
  count: number,
  o: { code?: (i: number) => number; startS?: number; first?: boolean } = {},
): Buffer {
  const startS = o.startS ?? Math.floor(Date.now() / 1000) - 1;
  const entries = Array.from({ length: count }, (_, i) => ({
    commonProperties: {
      startTime: { seconds: startS, nanos: (i % 1000) * 1e6 },
      duration: { seconds: 0, nanos: 12_000_000 },
      routeName: route,
      upstreamCluster: `outbound|8080||${route}.default.svc.cluster.local`,
    },
    protocolVersion: 'HTTP11',
    request: {
      requestMethod: 'GET',
      authority: 'shop.example.com',
      path: `/${route}/${i}`,
      requestId: `ui-ops-${++seq}`,
    },
    response: { responseCode: { value: o.code?.(i) ?? 200 } },
  }));
  return encodeStreamAccessLogsMessage({
    ...(o.first ? { identifier: { node: { id: node, cluster: 'edge' }, logName: 'als' } } : {}),
    httpLogs: { logEntry: entries },
  });
}
/** Send on the node's stream (opened with its identifier on first use). */
function send(
  node: string,
  route: string,
  count: number,
  o: { code?: (i: number) => number; startS?: number } = {},
) {
  const first = !streams[node];
  streams[node] ??= als.open();
  streams[node].call.write(message(node, route, count, { ...o, first }));
}

async function api<T>(path: string, token = ADMIN): Promise<T> {
  const res = await fetch(new URL(path, gs.http), { headers: { authorization: `Bearer ${token}` } });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as T;
}

const shot = (name: string) => page.screenshot({ path: join(SHOTS, `ui-${name}.png`), fullPage: true });
const open = (hash: string) => page.goto(`${gs.http}#/${hash}`);
async function signIn(token: string): Promise<void> {
  const login = page.locator('#login');
  if ((await login.count()) === 0) {
    if (await page.locator('#signout').isVisible()) await page.locator('#signout').click();
    await login.waitFor({ timeout: 15_000 });
  }
  await page.locator('#login-token').fill(token);
  await page.locator('#login-submit').click();
  await login.waitFor({ state: 'detached', timeout: 15_000 });
}
/** No page scrolls sideways at 1280 px. */
async function fitsViewport(): Promise<void> {
  const { scroll, client } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    client: document.documentElement.clientWidth,
  }));
  expect(scroll, 'page wider than the viewport').toBeLessThanOrEqual(client);
}
const rowText = (table: string, attr: string, value: string) =>
  page.locator(`${table} tbody tr[data-${attr}="${value}"]`).first();

describe('Alerts page', () => {
  it('shows the provisioned rule, a firing alert with its value and a working link, then its resolution and the deliveries', async () => {
    await page.goto(gs.http);
    await signIn(READ);
    await open('alerts?range=1h&refresh=5s');
    expect(await page.locator('#nav a[data-page="alerts"]').count()).toBe(1);
    const rule = rowText('#rules-table', 'rule', RULE);
    await rule.waitFor({ timeout: 20_000 });
    const ruleText = await rule.innerText();
    expect(ruleText).toContain('error_rate > 20.0 %');
    expect(ruleText).toContain('authority=shop.example.com · per route');
    expect(ruleText).toContain('severity=page');
    expect(ruleText).toContain('oncall');
    expect(ruleText).toMatch(/\bfile\b/);
    expect(await page.locator('#receivers-table').innerText()).toContain('oncall');
    expect(await page.locator('#no-active').count()).toBe(1);

    // Real 5xx traffic: half of checkout fails; catalog is fine.
    send('gw-a', 'checkout', 100, { code: (i) => (i % 2 === 0 ? 503 : 200) });
    send('gw-a', 'catalog', 60);
    const firing = page.locator('#active-table tbody tr[data-state="firing"][data-rule="' + RULE + '"]');
    await firing.waitFor({ timeout: 45_000 }).catch(async (e: Error) => {
      const dump = {
        alerts: await api('/api/v1/alerts'),
        history: await api('/api/v1/alerts/history?range=1h'),
        routes: await api('/api/v1/routes?range=1h'),
        page: await page.locator('#app').innerText(),
        log: gs
          .log()
          .split('\n')
          .filter((l) => /alert|error|warn/i.test(l))
          .slice(-20),
      };
      throw new Error(`${e.message}\n${JSON.stringify(dump, null, 1)}`);
    });
    const alerts = await api<{ alerts: { state: string; value: number; labels: Record<string, string> }[] }>(
      '/api/v1/alerts',
    );
    const active = alerts.alerts.find((a) => a.state === 'firing')!;
    expect(active.labels.route).toBe('checkout');
    expect(active.value).toBeCloseTo(0.5, 5);
    // The value the page shows is the API's, in the metric's unit; one series only (catalog is healthy).
    expect(Number(await firing.getAttribute('data-value'))).toBeCloseTo(active.value, 9);
    expect(await firing.locator('.alert-value').innerText()).toBe('50.0 %');
    expect(await firing.innerText()).toContain('route=checkout');
    expect(await page.locator('#active-table tbody tr').count()).toBe(1);
    expect(await page.locator('#card-firing .value').innerText()).toBe('1');
    await fitsViewport();
    await shot('alerts-firing');

    // The link opens the route's page for the alert's span, which shows the failing traffic.
    const link = firing.locator('a.alert-link');
    const hrefValue = (await link.getAttribute('href'))!;
    expect(hrefValue).toMatch(/^#\/route\?/);
    await link.click();
    await page.waitForFunction(() => location.hash.startsWith('#/route?'));
    const q = new URLSearchParams(page.url().split('?')[1]);
    expect(q.get('name')).toBe('checkout');
    expect(Number(q.get('from'))).toBeLessThan(Date.now());
    expect(Number(q.get('to'))).toBeGreaterThan(Number(q.get('from')));
    expect(await page.locator('h1').innerText()).toContain('checkout');
    await page.waitForFunction(
      () => Number(document.querySelector('#detail-rps')?.getAttribute('data-points')) > 0,
      null,
      {
        timeout: 20_000,
      },
    );
    await page.goBack();

    // Recovery: enough good requests bring the window's 5xx rate under 20 %.
    send('gw-a', 'checkout', 600);
    await rowText('#history-table', 'to', 'resolved').waitFor({ timeout: 45_000 });
    await page.locator('#no-active').waitFor({ timeout: 20_000 });
    const changes = await page
      .locator('#history-table tbody tr')
      .evaluateAll((rows) =>
        rows.map((r) => `${(r as HTMLElement).dataset.rule}:${(r as HTMLElement).dataset.to}`),
      );
    expect(changes).toContain(`${RULE}:firing`);
    expect(changes).toContain(`${RULE}:resolved`);
    // Both webhooks were delivered, and the page lists each attempt.
    await page.waitForFunction(
      () =>
        ['firing', 'resolved'].every(
          (s) =>
            document.querySelector(`#deliveries-table tr[data-status="${s}"][data-outcome="delivered"]`) !==
            null,
        ),
      null,
      { timeout: 30_000 },
    );
    expect(receiver.on('/oncall').map((r) => r.json.status)).toEqual(['firing', 'resolved']);
    expect(await page.locator('#deliveries-table').innerText()).toContain('200');
    await fitsViewport();
    await shot('alerts-resolved');
    expect(violations).toEqual([]);
  }, 180_000);

  it('a read token sees the rules but cannot change them; an admin token adds and deletes one', async () => {
    await open('alerts?range=1h');
    await rowText('#rules-table', 'rule', RULE).waitFor({ timeout: 20_000 });
    // File rules cannot be deleted from the UI at all.
    expect(await rowText('#rules-table', 'rule', RULE).locator('.delete-rule').count()).toBe(0);
    const create = async (name: string) => {
      await page.locator('#rule-new summary').click();
      await page.locator('#rule-form input[name="name"]').fill(name);
      await page.locator('#rule-form input[name="metric"]').fill('p99_ms');
      await page.locator('#rule-form input[name="threshold"]').fill('500');
      await page.locator('#rule-form input[name="group_by"]').fill('route');
      await page.locator('#rule-create').click();
    };
    await create('ui-made');
    const notice = page.locator('#rule-notice .error');
    await notice.waitFor({ timeout: 15_000 });
    expect(await notice.innerText()).toMatch(/ERR_AUTH_FORBIDDEN.*admin/s);
    expect(await page.locator('#login').count()).toBe(0);
    const names = async () =>
      (await api<{ rules: { name: string }[] }>('/api/v1/alerts/rules')).rules.map((r) => r.name).sort();
    expect(await names()).toEqual([RULE]);

    await signIn(ADMIN);
    await open('alerts?range=1h');
    await rowText('#rules-table', 'rule', RULE).waitFor({ timeout: 20_000 });
    await create('ui-made');
    const made = rowText('#rules-table', 'rule', 'ui-made');
    await made.waitFor({ timeout: 15_000 });
    expect(await made.innerText()).toContain('p99_ms > 500 ms');
    expect(await made.innerText()).toMatch(/\bapi\b/);
    expect(await names()).toEqual([RULE, 'ui-made'].sort());
    page.once('dialog', (d) => void d.accept());
    await made.locator('.delete-rule').click();
    await made.waitFor({ state: 'detached', timeout: 15_000 });
    expect(await names()).toEqual([RULE]);
    await signIn(READ);
    expect(violations).toEqual([]);
  }, 180_000);
});

describe('Ingest page', () => {
  interface Node {
    node_id: string;
    entries_received: number;
    entries_stored: number;
    entries_dropped: Record<string, number>;
    messages_rejected: Record<string, number>;
    status: string;
  }
  const nodes = async () => (await api<{ nodes: Node[] }>('/api/v1/ingest/nodes?range=1h', READ)).nodes;

  it('lists the nodes sending, turns a node that stops stale, shows drops by reason and links to the traffic', async () => {
    // gw-b (beforeAll) sent 40 good entries and 7 dated ten days ahead; now a message that is not protobuf, on a
    // stream of its own (refused).
    const bad = als.open();
    bad.call.write(message('gw-b', 'catalog', 1, { first: true }));
    bad.call.write(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]));
    await bad.done;
    for (let i = 0; ; i++) {
      const b = (await nodes()).find((n) => n.node_id === 'gw-b');
      if (b && b.entries_stored === 41 && b.entries_dropped.start_time_out_of_range === 7) break;
      if (i > 300) throw new Error(`gw-b never settled: ${JSON.stringify(b)}`);
      await new Promise((r) => setTimeout(r, 300));
    }

    await open('ingest?range=1h&refresh=5s');
    const a = rowText('#nodes-table', 'node', 'gw-a');
    const b = rowText('#nodes-table', 'node', 'gw-b');
    await a.waitFor({ timeout: 20_000 });
    await b.waitFor();
    const api1 = await nodes();
    for (const [row, id] of [
      [a, 'gw-a'],
      [b, 'gw-b'],
    ] as const) {
      const n = api1.find((x) => x.node_id === id)!;
      expect(await row.getAttribute('data-status')).toBe('live');
      expect(Number(await row.getAttribute('data-received'))).toBe(n.entries_received);
      expect(await row.locator('.badge.node-live').count()).toBe(1);
    }
    // Everything gw-a sent was stored.
    const gwA = api1.find((x) => x.node_id === 'gw-a')!;
    expect(gwA.entries_received).toBeGreaterThan(0);
    expect(Number(await a.getAttribute('data-stored'))).toBe(gwA.entries_received);
    // Drops and refusals by reason, per node and in the totals.
    const reason = (r: string) => b.locator(`.reason[data-reason="${r}"]`);
    expect(await reason('start_time_out_of_range').getAttribute('data-count')).toBe('7');
    expect(await reason('start_time_out_of_range').innerText()).toContain('start time out of range');
    expect(await reason('malformed_protobuf').getAttribute('data-count')).toBe('1');
    expect(await page.locator('#ingest-drops [data-reason="start_time_out_of_range"]').count()).toBe(1);
    expect(await page.locator('#ingest-drops').innerText()).toMatch(/start time out of range\s+7/);
    expect(await page.locator('#ingest-rejections').innerText()).toMatch(/malformed protobuf\s+1/);
    // Received vs stored, per minute: two lines.
    await page.waitForFunction(() => document.querySelector('#nodes-table .trend svg') !== null, null, {
      timeout: 15_000,
    });
    const strokes = await a
      .locator('.trend svg polyline')
      .evaluateAll((lines) => [...new Set(lines.map((l) => l.getAttribute('stroke')))]);
    expect(strokes).toHaveLength(2);
    await fitsViewport();
    await shot('ingest-live');

    // gw-b stops: its stream closes; after GATESCOPE_STALE_AFTER (3 s) it is stale, gw-a stays live.
    streams['gw-b'].call.cancel();
    delete streams['gw-b'];
    await page
      .locator('#nodes-table tbody tr[data-node="gw-b"][data-status="stale"]')
      .waitFor({ timeout: 30_000 });
    expect(await b.locator('.badge.node-stale').count()).toBe(1);
    expect(await a.getAttribute('data-status')).toBe('live');
    expect(await page.locator('#card-stale .value').innerText()).toBe('1');
    await fitsViewport();
    await shot('ingest-stale');

    // The node's traffic.
    await a.locator('a.node-traffic').click();
    await page.waitForFunction(() => location.hash.startsWith('#/overview?'));
    expect(new URLSearchParams(page.url().split('?')[1]).get('gateway')).toBe('gw-a');
    await page.waitForFunction(
      () => Number(document.querySelector('#totals')?.getAttribute('data-requests')) > 0,
      null,
      {
        timeout: 20_000,
      },
    );
    expect(violations).toEqual([]);
  }, 180_000);
});
