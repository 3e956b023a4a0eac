/* eslint-disable @typescript-eslint/no-explicit-any -- the tests read JSON bodies (API answers, webhooks) */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verify } from '@gatescope/alerts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeTrafficMessage } from '../fixtures/als.js';
import { alsClient } from '../support/als-client.js';
import { startGatescopeProcess, type GatescopeProcess } from '../support/gatescope-process.js';
import { startWebhookReceiver } from '../support/webhook-receiver.js';

// The all-in-one process as `npm start` runs it, alerting from a provisioning file, fed real ALS traffic; a real
// HTTP receiver on loopback checks what arrives (Alertmanager v4 body, Standard Webhooks signature).
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const ADMIN = 'admintoken-0123';
const READER = 'readtoken-0123';
let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
let gs: GatescopeProcess;
let dataDir: string;
let alertsFile: string;
let als: ReturnType<typeof alsClient>;
let stream: ReturnType<ReturnType<typeof alsClient>['open']>['call'];

const env = () => ({
  GATESCOPE_ALERTS_FILE: alertsFile,
  GATESCOPE_ALERTS_INTERVAL: '1s',
  GATESCOPE_BATCH_MAX_DELAY_MS: '100',
  GATESCOPE_TOKENS: `ops:${ADMIN}:admin,viewer:${READER}:read`,
  GATESCOPE_EXTERNAL_URL: 'https://gatescope.example.com/',
});

async function api(path: string, init: { method?: string; body?: unknown; token?: string } = {}) {
  const res = await fetch(new URL(path, gs.http), {
    method: init.method ?? 'GET',
    headers: {
      authorization: `Bearer ${init.token ?? ADMIN}`,
      ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, any>) : {} };
}

async function until<T>(
  what: string,
  f: () => Promise<T | undefined> | T | undefined,
  ms = 30_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${gs.log().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function send(route: string, count: number, code: (i: number) => number, durationMs?: (i: number) => number) {
  stream.write(routeTrafficMessage({ route, count, code, durationMs }));
}

async function openStream() {
  als = alsClient(gs.alsPort);
  await als.ready();
  stream = als.open().call;
  stream.write(routeTrafficMessage({ route: 'warmup', count: 1, identifier: true }));
}

beforeAll(async () => {
  receiver = await startWebhookReceiver();
  dataDir = mkdtempSync(join(tmpdir(), 'gs-e2e-alerts-'));
  alertsFile = join(dataDir, 'alerts.yaml');
  writeFileSync(
    alertsFile,
    `receivers:
  - name: oncall
    url: ${receiver.url('/oncall')}
    secret: ${SECRET}
    allow_private_network: true
    group_wait: 0s
    group_interval: 1s
    repeat_interval: 1h
rules:
  - name: route-5xx
    metric: error_rate
    filter: { authority: shop.example.com }
    group_by: [route]
    op: ">"
    threshold: 0.2
    window: 1m
    for: 0s
    min_requests: 20
    labels: { severity: page }
    annotations:
      summary: "{{ $labels.route }} 5xx at {{ $value | humanizePercentage }}"
    receivers: [oncall]
`,
  );
  gs = await startGatescopeProcess({ dataDir, env: env() });
  await openStream();
});

afterAll(async () => {
  stream?.end();
  als?.close();
  await gs?.stop();
  await receiver?.close();
});

describe('alerting, end to end', () => {
  it('fires one signed Alertmanager webhook for the failing route, then one resolved', async () => {
    send('checkout', 100, (i) => (i % 2 === 0 ? 503 : 200)); // 50 % 5xx
    send('catalog', 100, () => 200);
    const firing = await until('the firing webhook', () =>
      receiver.on('/oncall').find((r) => r.json.status === 'firing'),
    );
    // Signature per Standard Webhooks, over the exact body.
    expect(
      verify(
        SECRET,
        {
          id: String(firing.headers['webhook-id']),
          timestamp: String(firing.headers['webhook-timestamp']),
          signature: String(firing.headers['webhook-signature']),
        },
        firing.body,
      ),
    ).toBe(true);
    expect(
      verify(
        SECRET,
        {
          id: String(firing.headers['webhook-id']),
          timestamp: String(firing.headers['webhook-timestamp']),
          signature: String(firing.headers['webhook-signature']),
        },
        firing.body.replace('checkout', 'checkoux'),
      ),
    ).toBe(false);
    const body = firing.json as any;
    expect(body).toMatchObject({
      version: '4',
      status: 'firing',
      receiver: 'oncall',
      truncatedAlerts: 0,
      groupLabels: { alertname: 'route-5xx' },
      commonLabels: { alertname: 'route-5xx', route: 'checkout', severity: 'page' },
      externalURL: 'https://gatescope.example.com/',
    });
    expect(body.groupKey).toBe('{}/{receiver="oncall"}:{alertname="route-5xx"}');
    expect(body.alerts).toHaveLength(1);
    const alert = body.alerts[0];
    expect(alert.labels).toEqual({ alertname: 'route-5xx', route: 'checkout', severity: 'page' });
    expect(alert.annotations.summary).toBe('checkout 5xx at 50%');
    expect(alert.endsAt).toBe('0001-01-01T00:00:00Z');
    expect(alert.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    const link = new URL(alert.generatorURL);
    expect(link.origin + link.pathname).toBe('https://gatescope.example.com/');
    const linkParams = new URLSearchParams(link.hash.split('?')[1]);
    expect(link.hash.startsWith('#/route?')).toBe(true);
    expect(linkParams.get('name')).toBe('checkout');
    expect(linkParams.get('authority')).toBe('shop.example.com');
    expect(Number(linkParams.get('to')) - Number(linkParams.get('from'))).toBeGreaterThanOrEqual(60_000);

    // One number: the value listed is what the API says for the same window and filter.
    const active = await api('/api/v1/alerts', { token: READER });
    expect(active.status).toBe(200);
    const listed = active.body.alerts.find((a: any) => a.labels.route === 'checkout');
    expect(listed).toMatchObject({ rule: 'route-5xx', state: 'firing', value: 0.5 });
    const evaluatedAt = Date.parse(listed.evaluated_at);
    const summary = await api(
      `/api/v1/summary?route=checkout&authority=shop.example.com&source=rollup&from=${evaluatedAt - 60_000}&to=${evaluatedAt}`,
      { token: READER },
    );
    expect(summary.body.error_rate).toBe(listed.value);

    // Evaluations keep running: still exactly one firing webhook (repeat_interval is 1h).
    await sleep(3_000);
    expect(receiver.on('/oncall').filter((r) => r.json.status === 'firing')).toHaveLength(1);

    // Recovery: enough good requests bring the window's error rate under the threshold.
    send('checkout', 400, () => 200); // 50 / 500 = 10 %
    const resolved = await until('the resolved webhook', () =>
      receiver.on('/oncall').find((r) => r.json.status === 'resolved'),
    );
    const r = resolved.json as any;
    expect(r.alerts).toHaveLength(1);
    expect(r.alerts[0].status).toBe('resolved');
    expect(r.alerts[0].fingerprint).toBe(alert.fingerprint);
    expect(Date.parse(r.alerts[0].endsAt)).toBeGreaterThan(Date.parse(alert.startsAt));
    await sleep(2_000);
    expect(receiver.on('/oncall')).toHaveLength(2);
    expect(resolved.headers['webhook-id']).not.toBe(firing.headers['webhook-id']);

    const history = await api('/api/v1/alerts/history?rule=route-5xx', { token: READER });
    const moves = history.body.history.map((h: any) => `${h.labels.route}:${h.from}->${h.to}`).reverse();
    expect(moves).toEqual(['checkout:inactive->firing', 'checkout:firing->resolved']);
    const deliveries = await api('/api/v1/alerts/deliveries?receiver=oncall', { token: READER });
    expect(
      deliveries.body.deliveries.map((d: any) => `${d.status}:${d.outcome}:${d.http_status}`).sort(),
    ).toEqual(['firing:delivered:200', 'resolved:delivered:200']);
  });

  it('retries 503s with backoff until delivered, does not retry a 400, records every attempt', async () => {
    receiver.script('/flaky', [503, 503]);
    receiver.script('/broken', [400, 400, 400]);
    for (const [name, path] of [
      ['flaky', '/flaky'],
      ['broken', '/broken'],
    ]) {
      const res = await api('/api/v1/alerts/receivers', {
        method: 'POST',
        body: { name, url: receiver.url(path), allow_private_network: true, group_wait: '0s' },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(res.body).toMatchObject({
        name,
        url_origin: `http://127.0.0.1:${receiver.port}`,
        has_secret: false,
      });
      expect(JSON.stringify(res.body)).not.toContain(path);
    }
    const rule = {
      name: 'search-slow',
      metric: 'p99_ms',
      filter: { route: 'search' },
      op: '>',
      threshold: 500,
      window: '1m',
      min_requests: 10,
      receivers: ['flaky', 'broken'],
    };
    // Read scope may list, not change.
    expect((await api('/api/v1/alerts/rules', { method: 'POST', body: rule, token: READER })).status).toBe(
      403,
    );
    const created = await api('/api/v1/alerts/rules', { method: 'POST', body: rule });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    send(
      'search',
      50,
      () => 200,
      (i) => (i < 5 ? 2_000 : 20),
    ); // p99 ≈ 2 s

    const flaky = await until('three attempts at the flaky receiver', () =>
      receiver.on('/flaky').length >= 3 ? receiver.on('/flaky') : undefined,
    );
    expect(flaky.map((r) => r.answered)).toEqual([503, 503, 200]);
    // One notification: the same webhook-id on every attempt, spaced by the backoff.
    expect(new Set(flaky.map((r) => r.headers['webhook-id'])).size).toBe(1);
    expect(flaky[1].at - flaky[0].at).toBeGreaterThanOrEqual(450);
    expect(flaky[2].at - flaky[1].at).toBeGreaterThanOrEqual(900);
    await sleep(1_500);
    expect(receiver.on('/broken').map((r) => r.answered)).toEqual([400]);

    const attempts = await until('the recorded attempts', async () => {
      const d = (await api('/api/v1/alerts/deliveries', { token: READER })).body.deliveries as any[];
      const mine = d.filter((x) => x.receiver === 'flaky' || x.receiver === 'broken');
      return mine.length >= 4 ? mine : undefined;
    });
    expect(attempts.map((d) => `${d.receiver}#${d.attempt}:${d.outcome}:${d.http_status}`).sort()).toEqual([
      'broken#1:failed:400',
      'flaky#1:retry:503',
      'flaky#2:retry:503',
      'flaky#3:delivered:200',
    ]);
  });

  it('refuses receivers on private addresses unless allowed, at save time and after DNS', async () => {
    const literal = await api('/api/v1/alerts/receivers', {
      method: 'POST',
      body: { name: 'sneaky', url: receiver.url('/sneaky') },
    });
    expect(literal.status).toBe(400);
    expect(literal.body.error.code).toBe('ERR_ALERT_RECEIVER_ADDRESS');
    expect(literal.body.error.message).toMatch(/127\.0\.0\.1, a loopback address.*allow_private_network/);
    for (const url of [
      'http://[::ffff:7f00:1]:9/x',
      'http://169.254.169.254/latest/meta-data',
      'http://10.1.2.3/',
    ]) {
      const r = await api('/api/v1/alerts/receivers', { method: 'POST', body: { name: 'sneaky', url } });
      expect(r.status, url).toBe(400);
    }
    // A name is checked where it resolves, when the webhook is sent: localhost is loopback.
    const named = await api('/api/v1/alerts/receivers', {
      method: 'POST',
      body: { name: 'by-name', url: `http://localhost:${receiver.port}/by-name`, group_wait: '0s' },
    });
    expect(named.status).toBe(201);
    await api('/api/v1/alerts/rules', {
      method: 'POST',
      body: {
        name: 'errors-anywhere',
        metric: 'class:5xx',
        op: '>=',
        threshold: 1,
        filter: { route: 'ledger' },
        receivers: ['by-name'],
      },
    });
    send('ledger', 30, () => 500);
    const refused = await until('the refused attempt', async () => {
      const d = (await api('/api/v1/alerts/deliveries?receiver=by-name', { token: READER })).body
        .deliveries as any[];
      return d.length ? d : undefined;
    });
    expect(refused[0]).toMatchObject({ outcome: 'refused', attempt: 1 });
    expect(refused[0].error).toMatch(/localhost resolves to (127\.0\.0\.1|::1), a loopback address/);
    expect(receiver.on('/by-name')).toHaveLength(0);
  });

  it('keeps rules, receivers and alert state across a restart: a firing alert is not announced again', async () => {
    send('payments', 100, () => 502);
    await until('the payments alert', () =>
      receiver
        .on('/oncall')
        .find((r) => (r.json as any).alerts?.some((a: any) => a.labels.route === 'payments')),
    );
    const before = receiver.on('/oncall').length;
    stream.end();
    als.close();
    expect(await gs.stop()).toBe(0);
    gs = await startGatescopeProcess({ dataDir, env: env() });
    await openStream();

    const rules = (await api('/api/v1/alerts/rules', { token: READER })).body.rules as any[];
    expect(rules.map((r) => `${r.name}:${r.origin}`).sort()).toEqual([
      'errors-anywhere:api',
      'route-5xx:file',
      'search-slow:api',
    ]);
    const receivers = (await api('/api/v1/alerts/receivers', { token: READER })).body.receivers as any[];
    expect(receivers.map((r) => r.name).sort()).toEqual(['broken', 'by-name', 'flaky', 'oncall']);
    expect(JSON.stringify(receivers)).not.toContain(SECRET);
    expect(receivers.find((r) => r.name === 'oncall').has_secret).toBe(true);

    // The evaluator runs again (new evaluations) and the payments alert is still firing, not re-sent.
    const active = await until('a post-restart evaluation', async () => {
      const a = (await api('/api/v1/alerts', { token: READER })).body.alerts as any[];
      const p = a.find((x) => x.labels.route === 'payments');
      return p && Date.parse(p.evaluated_at) > Date.now() - 1500 ? p : undefined;
    });
    expect(active.state).toBe('firing');
    await sleep(2_500);
    expect(receiver.on('/oncall')).toHaveLength(before);
  });

  it('says what is wrong with a bad rule', async () => {
    const bad = await api('/api/v1/alerts/rules', {
      method: 'POST',
      body: { name: 'bad', metric: 'p42_ms', op: '!=', threshold: 'x', receivers: ['nobody'] },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('ERR_ALERT_CONFIG');
    expect(bad.body.error.message).toMatch(/op/);
    const bad2 = await api('/api/v1/alerts/rules', {
      method: 'POST',
      body: { name: 'bad', metric: 'p42_ms', op: '>', threshold: 1, receivers: ['nobody'] },
    });
    expect(bad2.body.error.message).toMatch(/"p42_ms" is not a metric/);
    const bad3 = await api('/api/v1/alerts/rules', {
      method: 'POST',
      body: { name: 'bad', metric: 'p99_ms', op: '>', threshold: 1, receivers: ['nobody'] },
    });
    expect(bad3.body.error.message).toMatch(/receiver "nobody", which is not defined/);
    const provisioned = await api('/api/v1/alerts/rules/route-5xx', { method: 'DELETE' });
    expect(provisioned.status).toBe(409);
  });
});
