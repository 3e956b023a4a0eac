/**
 * HTTPS on the HTTP port (GATESCOPE_TLS_CERT_FILE / GATESCOPE_TLS_KEY_FILE), with a certificate made by
 * openssl for this run: the all-in-one, the API alone and the live server alone. Clients verify the
 * certificate against it (no verification switched off).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { io } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GATESCOPE_MAIN,
  startGatescopeProcess,
  type GatescopeProcess,
} from '../support/gatescope-process.js';

const READ = 'tls-read-token-5e7d1c';
const METRICS = 'tls-metrics-token-8a2f';
const TOKENS = `viewer:${READ}:read,prom:${METRICS}:metrics`;
const built = (service: string) =>
  fileURLToPath(new URL(`../../services/${service}/dist/main.cjs`, import.meta.url));

let dir: string;
let cert: string;
let key: string;
let ca: Buffer;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gatescope-tls-'));
  cert = join(dir, 'cert.pem');
  key = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=gatescope-test',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  ca = readFileSync(cert);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const tlsEnv = () => ({
  GATESCOPE_TLS_CERT_FILE: cert,
  GATESCOPE_TLS_KEY_FILE: key,
  GATESCOPE_TOKENS: TOKENS,
});

/** GET over HTTPS, verifying the server against the test CA. */
function get(url: string, token?: string) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: string; subject: string }>(
    (resolve, reject) => {
      const req = request(url, { ca, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
        const subject = String((res.socket as TLSSocket).getPeerCertificate().subject.CN);
        let body = '';
        res.on('data', (c: Buffer) => (body += c));
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            headers: res.headers,
            body,
            subject,
          }),
        );
      });
      req.on('error', reject);
      req.end();
    },
  );
}

function liveHello(base: string, token: string, transports: ('polling' | 'websocket')[]) {
  const s = io(`${base}live`, {
    transports,
    auth: { token },
    ca: ca.toString('utf8'),
    reconnection: false,
    forceNew: true,
  });
  return new Promise<{ principal: string }>((resolve, reject) => {
    s.once('hello', (h: { principal: string }) => {
      s.disconnect();
      resolve(h);
    });
    s.once('connect_error', (err) => {
      s.disconnect();
      reject(err);
    });
  });
}

describe('the all-in-one over HTTPS', () => {
  let gs: GatescopeProcess;
  beforeAll(async () => {
    gs = await startGatescopeProcess({ env: tlsEnv() });
  });
  afterAll(() => gs?.stop());

  it('serves the UI, the API and the security headers over TLS with the configured certificate', async () => {
    expect(gs.http).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/$/);
    const health = await get(`${gs.http}healthz`);
    expect(health.status).toBe(200);
    expect(health.subject).toBe('gatescope-test');
    expect(health.headers['x-content-type-options']).toBe('nosniff');
    expect(health.headers['strict-transport-security']).toBeUndefined(); // left to the ingress: see SECURITY.md
    expect((await get(`${gs.http}`)).body).toContain('<main id="app">');
    expect((await get(`${gs.http}api/v1/summary`)).status).toBe(401);
    expect((await get(`${gs.http}api/v1/summary`, READ)).status).toBe(200);
  });

  it('carries the live socket over wss and https polling', async () => {
    expect((await liveHello(gs.http, READ, ['websocket'])).principal).toBe('viewer');
    expect((await liveHello(gs.http, READ, ['polling'])).principal).toBe('viewer');
  });

  it('does not answer plain HTTP on the TLS port', async () => {
    const answer = await new Promise<string>((resolve) => {
      const s = connect(gs.httpPort, '127.0.0.1', () =>
        s.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'),
      );
      let data = '';
      s.on('data', (c: Buffer) => (data += c.toString('latin1')));
      s.on('close', () => resolve(data));
      s.on('error', () => resolve(data));
      s.setTimeout(5_000, () => s.destroy());
    });
    expect(answer).not.toMatch(/HTTP\/1\.1 200/);
  });
});

describe('the API and the live server alone over HTTPS', () => {
  it('the API service', async () => {
    const api = await startGatescopeProcess({
      env: tlsEnv(),
      main: built('api'),
      upMessage: 'gatescope api is up',
    });
    try {
      expect(api.http).toMatch(/^https:/);
      expect((await get(`${api.http}readyz`)).status).toBe(200);
      expect((await get(`${api.http}api/v1/routes`, READ)).status).toBe(200);
      expect((await get(`${api.http}metrics`)).status).toBe(401);
    } finally {
      await api.stop();
    }
  });

  it('the live service: wss, and its /metrics behind the metrics scope', async () => {
    const live = await startGatescopeProcess({
      env: tlsEnv(),
      main: built('live'),
      upMessage: 'gatescope live server is up',
    });
    try {
      expect(live.http).toMatch(/^https:/);
      expect((await liveHello(live.http, READ, ['websocket'])).principal).toBe('viewer');
      expect((await get(`${live.http}metrics`)).status).toBe(401);
      const metrics = await get(`${live.http}metrics`, METRICS);
      expect(metrics.status).toBe(200);
      expect(metrics.body).toContain('gatescope_live_sockets');
      const missing = await get(`${live.http}nope`, READ);
      expect(missing.status).toBe(404);
      expect(missing.body).toContain('connect socket.io to namespace /live');
    } finally {
      await live.stop();
    }
  });
});

it('refuses to start with half a TLS configuration or an unreadable file, naming the variables', () => {
  const run = (env: Record<string, string>) =>
    spawnSync(process.execPath, [GATESCOPE_MAIN], {
      env: {
        ...process.env,
        GATESCOPE_DATA_DIR: dir,
        GATESCOPE_HTTP_PORT: '0',
        GATESCOPE_ALS_PORT: '0',
        ...env,
      },
      encoding: 'utf8',
      timeout: 30_000,
    });
  const half = run({ GATESCOPE_TLS_CERT_FILE: cert });
  expect(half.status).toBe(2);
  expect(half.stderr).toMatch(/GATESCOPE_TLS_CERT_FILE and GATESCOPE_TLS_KEY_FILE go together/);
  const missing = run({ GATESCOPE_TLS_CERT_FILE: cert, GATESCOPE_TLS_KEY_FILE: join(dir, 'nope.pem') });
  expect(missing.status).toBe(2);
  expect(missing.stderr).toMatch(/GATESCOPE_TLS_KEY_FILE \(.*nope\.pem\) cannot be read/);
});
