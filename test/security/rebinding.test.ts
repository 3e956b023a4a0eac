/**
 * Attack suite, DNS rebinding and cross-origin calls against the tokenless default (loopback, everyone admin):
 * every route of the running all-in-one process, and socket.io's handshake over polling and WebSocket, with
 * the Host and Origin a rebinding page or a foreign page would send. Then the real thing: Chromium told that
 * an attacker's name resolves to 127.0.0.1.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { io } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatescopeProcess, type GatescopeProcess } from '../support/gatescope-process.js';
import { engineHandshake, errorCode, rawRequest } from '../support/raw-http.js';
import { concretePath } from './spellings.js';

const CHROMIUM = process.env.GATESCOPE_CHROMIUM ?? '/usr/bin/chromium';

let gs: GatescopeProcess;
let routes: { method: string; url: string; access: string }[];
let port: number;

beforeAll(async () => {
  gs = await startGatescopeProcess({ env: { GATESCOPE_ALLOWED_HOSTS: 'gatescope.internal' } });
  port = gs.httpPort;
  const line = gs
    .log()
    .split('\n')
    .find((l) => l.includes('"http routes and their access'));
  routes = JSON.parse(line!).routes;
});
afterAll(async () => {
  await gs?.stop();
});

const request = (method: string, target: string, headers: Record<string, string>) =>
  rawRequest({
    port,
    method,
    target,
    headers: { ...headers, ...(method === 'POST' ? { 'Content-Type': 'application/json' } : {}) },
    body: method === 'POST' ? JSON.stringify({ query: 'SELECT 1' }) : undefined,
  });

const GOOD_HOSTS = () => [
  `127.0.0.1:${port}`,
  `localhost:${port}`,
  'LOCALHOST',
  `[::1]:${port}`,
  '127.3.2.1',
  'gatescope.internal',
  `gatescope.internal:${port}`,
];
const BAD_HOSTS = () => [
  `attacker.example:${port}`,
  'attacker.example',
  `localhost.attacker.example:${port}`,
  `127.0.0.1.nip.io:${port}`,
  `gatescope.internal.attacker.example`,
  `xn--gatescope-internal.example`,
];

describe('without tokens, every route', () => {
  it('answers loopback and listed Hosts, and refuses every other name with 421 before anything else', async () => {
    const problems: string[] = [];
    for (const route of routes) {
      const target = concretePath(route.url);
      for (const host of GOOD_HOSTS()) {
        const res = await request(route.method, target, { Host: host });
        if (res.status === 421 || res.status === 403)
          problems.push(`${route.method} ${target} Host ${host}: ${res.status}`);
      }
      for (const host of BAD_HOSTS()) {
        const res = await request(route.method, target, { Host: host });
        if (res.status !== 421 || (route.method !== 'HEAD' && errorCode(res) !== 'ERR_HOST_NOT_ALLOWED'))
          problems.push(`${route.method} ${target} Host ${host}: expected 421, got ${res.status}`);
        if (res.headers['x-content-type-options'] !== 'nosniff')
          problems.push(`${target} ${host}: no headers`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('refuses what a rebinding page sends, SQL included, and says what to configure', async () => {
    const rebound = await request('POST', '/api/v1/sql', {
      Host: `attacker.example:${port}`,
      Origin: `http://attacker.example:${port}`,
    });
    expect(rebound.status).toBe(421);
    expect(JSON.parse(rebound.body).error.message).toMatch(/GATESCOPE_ALLOWED_HOSTS.*GATESCOPE_TOKENS/);
    expect(gs.log()).toMatch(/"code":"ERR_HOST_NOT_ALLOWED".*"msg":"request refused"/);
  });

  it('refuses foreign Origins (403) on every route and accepts its own and the listed ones', async () => {
    const problems: string[] = [];
    for (const route of routes) {
      const target = concretePath(route.url);
      for (const origin of [
        'http://attacker.example',
        'null',
        `http://127.0.0.1:${port + 1}`,
        'https://evil.example',
      ]) {
        const res = await request(route.method, target, { Origin: origin });
        if (res.status !== 403 || (route.method !== 'HEAD' && errorCode(res) !== 'ERR_ORIGIN_NOT_ALLOWED'))
          problems.push(`${route.method} ${target} Origin ${origin}: expected 403, got ${res.status}`);
      }
      for (const origin of [`http://127.0.0.1:${port}`, 'https://gatescope.internal']) {
        const res = await request(route.method, target, { Origin: origin });
        if (res.status === 403 || res.status === 421)
          problems.push(`${route.method} ${target} Origin ${origin}: refused (${res.status})`);
      }
    }
    expect(problems).toEqual([]);
  });
});

describe('without tokens, the socket.io handshake', () => {
  const handshake = (transport: 'polling' | 'websocket', headers: Record<string, string>) =>
    engineHandshake(port, transport, headers);

  for (const transport of ['polling', 'websocket'] as const) {
    it(`${transport}: refuses rebinding Hosts and foreign Origins, accepts loopback and listed ones`, async () => {
      const ok = transport === 'polling' ? 200 : 101;
      for (const host of GOOD_HOSTS())
        expect((await handshake(transport, { Host: host })).status, host).toBe(ok);
      expect(
        (await handshake(transport, { Origin: `http://localhost:${port}`, Host: `localhost:${port}` }))
          .status,
      ).toBe(ok);
      const refusals: Record<string, string>[] = [
        ...BAD_HOSTS().map((host) => ({ Host: host })),
        { Host: `attacker.example:${port}`, Origin: `http://attacker.example:${port}` },
        { Origin: 'http://attacker.example' },
        { Origin: 'null' },
      ];
      for (const headers of refusals) {
        const res = await handshake(transport, headers);
        // engine.io answers refusals itself: 403 on polling, 400 on a WebSocket upgrade, with our message.
        expect(res.status, JSON.stringify(headers)).toBe(transport === 'polling' ? 403 : 400);
        expect(res.body).toMatch(/ERR_(HOST|ORIGIN)_NOT_ALLOWED/);
      }
    });
  }

  it('lets the UI on loopback in, as anonymous', async () => {
    const s = io(`${gs.http}live`, {
      transports: ['polling', 'websocket'],
      reconnection: false,
      forceNew: true,
    });
    try {
      const hello = await new Promise<{ principal: string }>((resolve, reject) => {
        s.once('hello', resolve);
        s.once('connect_error', reject);
      });
      expect(hello.principal).toBe('anonymous');
    } finally {
      s.disconnect();
    }
  });
});

describe('a browser whose DNS says the attacker name is 127.0.0.1', () => {
  it('gets 421 for the page, the API and the socket, while the same browser on 127.0.0.1 gets the UI', async () => {
    const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'gatescope-rebind-')), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--host-resolver-rules=MAP rebind.attacker.example 127.0.0.1',
      ],
    });
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      const attacked = await page.goto(`http://rebind.attacker.example:${port}/`);
      expect(attacked?.status()).toBe(421);
      expect(await page.content()).toContain('GATESCOPE_ALLOWED_HOSTS');
      // From the attacker's (now same-origin) page: the API and a WebSocket.
      const fromPage = await page.evaluate(async () => {
        const api = await fetch('/api/v1/sql', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: 'SELECT 1' }),
        });
        const ws = await new Promise<string>((resolve) => {
          const socket = new WebSocket(`ws://${location.host}/socket.io/?EIO=4&transport=websocket`);
          socket.onopen = () => resolve('open');
          socket.onerror = () => resolve('refused');
        });
        return { api: api.status, ws };
      });
      expect(fromPage).toEqual({ api: 421, ws: 'refused' });
      const own = await page.goto(`http://127.0.0.1:${port}/`);
      expect(own?.status()).toBe(200);
      await page.locator('#app').waitFor();
    } finally {
      await context.close();
    }
  });
});
