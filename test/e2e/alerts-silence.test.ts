/* eslint-disable @typescript-eslint/no-explicit-any -- the tests read JSON bodies (webhooks, API answers) */
/**
 * "Silence is an alert" (issue 14) with real components: the all-in-one process as `npm start` runs it, two
 * gateway nodes streaming real ALS (one an Istio ingress gateway), a provisioning file with an
 * `ingest_silence_seconds` rule and a real HTTP receiver on loopback. The Istio node stops; one signed webhook
 * names it (and not the node that keeps streaming); it resumes and the alert resolves.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verify } from '@gatescope/alerts';
import { encodeStreamAccessLogsMessage } from '@gatescope/als';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ISTIO_LOG_NAME, ISTIO_NODE_CLUSTER, ISTIO_NODE_ID, routeTrafficMessage } from '../fixtures/als.js';
import { alsClient } from '../support/als-client.js';
import { startGatescopeProcess, type GatescopeProcess } from '../support/gatescope-process.js';
import { startWebhookReceiver } from '../support/webhook-receiver.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const READER = 'silence-read-0123';
let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
let gs: GatescopeProcess;
let als: ReturnType<typeof alsClient>;
let steady: ReturnType<ReturnType<typeof alsClient>['open']>['call'];
let steadyTimer: NodeJS.Timeout | undefined;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(what: string, f: () => T | undefined, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${gs.log().slice(-3000)}`);
    await sleep(200);
  }
}

let seq = 0;
/** A message from the steady node `edge-b` (identified on its stream's first message only, as Envoy does). */
function steadyMessage(identify: boolean): Buffer {
  const n = ++seq;
  return encodeStreamAccessLogsMessage({
    ...(identify && { identifier: { node: { id: 'edge-b', cluster: 'edge' }, logName: 'als' } }),
    httpLogs: {
      logEntry: [
        {
          commonProperties: {
            startTime: { seconds: Math.floor(Date.now() / 1000), nanos: 0 },
            duration: { seconds: 0, nanos: 5_000_000 },
            routeName: 'steady',
          },
          request: { requestMethod: 'GET', authority: 'edge.example.com', path: `/s/${n}` },
          response: { responseCode: 200 },
        },
      ],
    },
  });
}

/** The Istio node streams `count` messages, `everyMs` apart, on a new stream, then ends it. */
async function istioStreams(count: number, everyMs = 300) {
  const call = als.open().call;
  for (let i = 0; i < count; i++) {
    call.write(routeTrafficMessage({ route: 'checkout', count: 5, identifier: i === 0 }));
    await sleep(everyMs);
  }
  call.end();
}

beforeAll(async () => {
  receiver = await startWebhookReceiver();
  const dataDir = mkdtempSync(join(tmpdir(), 'gs-e2e-silence-'));
  const alertsFile = join(dataDir, 'alerts.yaml');
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
  - name: gateway-silent
    metric: ingest_silence_seconds
    op: ">"
    threshold: 3
    window: 1m
    for: 2s
    # Not a gate for silence: a silent node sends nothing, and must page all the same.
    min_requests: 1000000
    labels: { severity: page }
    annotations:
      summary: "{{ $labels.node_id }} has sent nothing for {{ $value }}s"
    receivers: [oncall]
`,
  );
  gs = await startGatescopeProcess({
    dataDir,
    env: {
      GATESCOPE_ALERTS_FILE: alertsFile,
      GATESCOPE_ALERTS_INTERVAL: '1s',
      GATESCOPE_STALE_AFTER: '2s',
      GATESCOPE_BATCH_MAX_DELAY_MS: '100',
      GATESCOPE_TOKENS: `viewer:${READER}:read`,
    },
  });
  als = alsClient(gs.alsPort);
  await als.ready();
  steady = als.open().call;
  steady.write(steadyMessage(true));
  steadyTimer = setInterval(() => steady.write(steadyMessage(false)), 400);
});

afterAll(async () => {
  if (steadyTimer) clearInterval(steadyTimer);
  steady?.end();
  als?.close();
  await gs?.stop();
  await receiver?.close();
});

describe('silence is an alert', () => {
  it('fires one signed webhook naming the node that stopped, and resolves when it resumes', async () => {
    // Streaming: silence stays under a second, nothing fires.
    await istioStreams(10);
    expect(receiver.on('/oncall')).toHaveLength(0);

    // Stopped: more than 3 s of silence held for 2 s.
    const stoppedAt = Date.now();
    const firing = await until('the firing webhook', () =>
      receiver.on('/oncall').find((r) => (r.json as any).status === 'firing'),
    );
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(5_000);
    const header = (k: string) => String(firing.headers[k]);
    const sig = {
      id: header('webhook-id'),
      timestamp: header('webhook-timestamp'),
      signature: header('webhook-signature'),
    };
    expect(verify(SECRET, sig, firing.body)).toBe(true);
    expect(verify(SECRET, sig, firing.body.replace('gateway-silent', 'gateway-silenced'))).toBe(false);
    const body = firing.json as any;
    expect(body).toMatchObject({ version: '4', status: 'firing', receiver: 'oncall' });
    // Only the node that stopped: the steady one is live and silent for well under 3 s.
    expect(body.alerts).toHaveLength(1);
    const alert = body.alerts[0];
    expect(alert.labels).toEqual({
      alertname: 'gateway-silent',
      severity: 'page',
      node_id: ISTIO_NODE_ID,
      node_cluster: ISTIO_NODE_CLUSTER,
      log_name: ISTIO_LOG_NAME,
    });
    const seconds = Number(/for ([\d.]+)s$/.exec(alert.annotations.summary)?.[1]);
    expect(alert.annotations.summary.startsWith(`${ISTIO_NODE_ID} has sent nothing for `)).toBe(true);
    expect(seconds).toBeGreaterThan(3);
    expect(seconds).toBeLessThan((Date.now() - stoppedAt) / 1000 + 2);
    // The link opens the Ingest page (the delivery ledger shows the node), over the alert's time range.
    const link = new URL(alert.generatorURL);
    expect(link.hash.startsWith('#/ingest?')).toBe(true);
    const linkParams = new URLSearchParams(link.hash.split('?')[1]);
    const from = Number(linkParams.get('from'));
    const to = Number(linkParams.get('to'));
    expect(to - from).toBeGreaterThanOrEqual(60_000); // the rule's 1m window before the alert started, at least
    expect(from).toBeLessThan(Date.parse(alert.startsAt));
    expect(to).toBeGreaterThanOrEqual(Date.parse(alert.startsAt));

    // The API lists the same alert with the same number's unit (seconds).
    const res = await fetch(new URL('/api/v1/alerts', gs.http), {
      headers: { authorization: `Bearer ${READER}` },
    });
    const listed = ((await res.json()) as any).alerts.filter((a: any) => a.rule === 'gateway-silent');
    expect(listed.map((a: any) => [a.labels.node_id, a.state])).toEqual([[ISTIO_NODE_ID, 'firing']]);
    expect(listed[0].value).toBeGreaterThan(3);
    expect(listed[0].link.startsWith('/#/ingest?')).toBe(true);

    // Still one firing webhook while the silence lasts (repeat_interval is 1h).
    await sleep(2_500);
    expect(receiver.on('/oncall')).toHaveLength(1);

    // Resumes: the next evaluation sees a fresh last message and resolves the alert.
    const resumed = istioStreams(15);
    const resolved = await until('the resolved webhook', () =>
      receiver.on('/oncall').find((r) => (r.json as any).status === 'resolved'),
    );
    await resumed;
    const r = resolved.json as any;
    expect(r.alerts).toHaveLength(1);
    expect(r.alerts[0]).toMatchObject({ status: 'resolved', fingerprint: alert.fingerprint });
    expect(r.alerts[0].labels.node_id).toBe(ISTIO_NODE_ID);
    expect(
      verify(
        SECRET,
        {
          id: String(resolved.headers['webhook-id']),
          timestamp: String(resolved.headers['webhook-timestamp']),
          signature: String(resolved.headers['webhook-signature']),
        },
        resolved.body,
      ),
    ).toBe(true);
    expect(receiver.on('/oncall')).toHaveLength(2);
  });
});
