import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { ClickHouse } from '@gatescope/clickhouse';
import { buildCollector, type Collector } from '@gatescope/collector';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ISTIO_HTTP_STREAM } from '../../../test/fixtures/als.js';
import { sendWithPythonClient } from '../../../test/support/als-client.js';
import { makeTestCertificates, type TestCertificates } from '../../../test/support/certificates.js';
import {
  alsClient,
  collectorConfig,
  countRows,
  message,
  httpEntry,
  metric,
  until,
  openTestEngine,
} from './helpers.js';

let ch: ClickHouse;
let certs: TestCertificates;
beforeAll(async () => {
  certs = makeTestCertificates();
  ch = await openTestEngine('gs-tls-');
});
afterAll(async () => {
  await ch?.close();
});

const ISTIO_ENTRIES = ISTIO_HTTP_STREAM.reduce((n, f) => n + f.expected.http.length, 0);

/** Sends the Istio fixture stream with the independent Python client; resolves with its final statuses. */
async function sendIstio(port: number, tls: Parameters<typeof sendWithPythonClient>[2]) {
  const client = await sendWithPythonClient(
    `127.0.0.1:${port}`,
    [ISTIO_HTTP_STREAM.map((f) => f.bytes)],
    tls,
  );
  return client;
}

describe('TLS on the gRPC port', () => {
  let collector: Collector;
  let registry: Registry;
  let port: number;
  beforeAll(async () => {
    registry = new Registry();
    collector = await buildCollector({
      config: collectorConfig({ tls: { certFile: certs.serverCert, keyFile: certs.serverKey } }),
      clickhouse: ch,
      registry,
    });
    port = await collector.listen('127.0.0.1', 0);
  });
  afterAll(async () => {
    await collector.close(5_000);
  });

  it('serves a client that trusts the CA (Python grpcio), and stores its entries', async () => {
    const client = await sendIstio(port, { ca: certs.ca });
    await until(
      async () =>
        (await metric(registry, 'gatescope_als_entries_received_total', { type: 'http' })) === ISTIO_ENTRIES,
      'entries over TLS',
    );
    expect(await client.finish()).toMatch(/s0 OK/);
  });

  it('is not plaintext: a plaintext client gets nothing through', async () => {
    const c = alsClient(port, grpc.credentials.createInsecure(), {
      'grpc.initial_reconnect_backoff_ms': 100,
    });
    const s = c.open();
    s.call.write(
      message([httpEntry({ request: { requestMethod: 'GET', path: '/', requestId: 'plaintext' } })]),
    );
    const deadline = new Promise<'pending'>((r) => setTimeout(() => r('pending'), 3_000));
    const outcome = await Promise.race([s.done, deadline]);
    if (outcome !== 'pending') expect(outcome.error?.code).toBe(grpc.status.UNAVAILABLE);
    s.call.cancel();
    c.close();
    expect(await countRows(ch, "request_id = 'plaintext'")).toBe(0);
  });
});

describe('mutual TLS on the gRPC port', () => {
  let collector: Collector;
  let registry: Registry;
  let port: number;
  beforeAll(async () => {
    registry = new Registry();
    collector = await buildCollector({
      config: collectorConfig({
        tls: { certFile: certs.serverCert, keyFile: certs.serverKey, clientCaFile: certs.ca },
      }),
      clickhouse: ch,
      registry,
    });
    port = await collector.listen('127.0.0.1', 0);
  });
  afterAll(async () => {
    await collector.close(5_000);
  });

  it('refuses a client without a certificate, and one whose certificate another CA signed', async () => {
    const none = await sendIstio(port, { ca: certs.ca });
    expect(await none.finish()).toMatch(/s0 UNAVAILABLE/);
    const stranger = await sendIstio(port, {
      ca: certs.ca,
      cert: certs.strangerCert,
      key: certs.strangerKey,
    });
    expect(await stranger.finish()).toMatch(/s0 UNAVAILABLE/);
    expect(await metric(registry, 'gatescope_als_messages_received_total')).toBe(0);
  });

  it('serves a client with a certificate from the client CA (Python grpcio and grpc-js)', async () => {
    const python = await sendIstio(port, { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey });
    await until(
      async () =>
        (await metric(registry, 'gatescope_als_entries_received_total', { type: 'http' })) === ISTIO_ENTRIES,
      'entries over mTLS',
    );
    expect(await python.finish()).toMatch(/s0 OK/);

    const credentials = grpc.credentials.createSsl(
      readFileSync(certs.ca),
      readFileSync(certs.clientKey),
      readFileSync(certs.clientCert),
    );
    // TLS by name, as clients should (the server certificate holds DNS:localhost): grpc-js sends the target host
    // as the TLS server name, and Node 26 refuses an IP address there (DEP0123, now an error), so a grpc-js TLS
    // client aimed at 127.0.0.1 never connects on Node 26.
    const c = alsClient(port, credentials, { 'grpc.ssl_target_name_override': 'localhost' });
    const s = c.open();
    s.call.write(
      message([httpEntry({ request: { requestMethod: 'GET', path: '/', requestId: 'mtls-grpc-js' } })], {
        nodeId: 'mtls',
      }),
    );
    await until(
      async () => (await countRows(ch, "request_id = 'mtls-grpc-js'")) === 1,
      'grpc-js row over mTLS',
    );
    s.call.cancel();
    c.close();
  });
});

describe('TLS configuration errors', () => {
  it('a key that does not match the certificate fails at listen, naming the variables', async () => {
    const collector = await buildCollector({
      config: collectorConfig({ tls: { certFile: certs.serverCert, keyFile: certs.clientKey } }),
      clickhouse: ch,
    });
    await expect(collector.listen('127.0.0.1', 0)).rejects.toThrow(
      /GATESCOPE_ALS_TLS_CERT_FILE \/ GATESCOPE_ALS_TLS_KEY_FILE do not hold a usable PEM/,
    );
    await collector.close(1_000);
  });
});
