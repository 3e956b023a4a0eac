import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from '@gatescope/auth';
import { engineHandshake } from '../../../test/support/raw-http.js';
import { client, emitAck, harness, once, testConfig, type Harness } from './helpers.js';

let h: Harness;
let url: string;
let live: Awaited<ReturnType<Harness['start']>>['live'];
beforeAll(async () => {
  h = await harness();
  ({ url, live } = await h.start(
    testConfig({
      tokens: [
        { name: 'grafana', token: 'read-secret-1234', scopes: ['read'] },
        { name: 'ops', token: 'admin-secret-1234', scopes: ['read', 'admin'] },
        { name: 'prometheus', token: 'metrics-secret-1234', scopes: ['metrics'] },
      ],
    }),
  ));
});
afterAll(async () => {
  await h?.close();
});

const refused = async (token?: string) => {
  const s = client(url, token);
  try {
    return await once<Error & { data?: { code: string; status: number } }>(s, 'connect_error');
  } finally {
    s.disconnect();
  }
};

describe('connect', () => {
  it('refuses a socket without a token, with the same code and message as the API', async () => {
    const err = await refused();
    expect(err.data).toEqual({ code: 'ERR_AUTH_REQUIRED', status: 401 });
    expect(err.message).toMatch(/auth\.token/);
  });

  it('refuses a wrong token', async () => {
    const err = await refused('not-a-real-token');
    expect(err.data).toEqual({ code: 'ERR_AUTH_INVALID', status: 401 });
  });

  it('refuses a token without the read scope (a Prometheus scrape token)', async () => {
    const err = await refused('metrics-secret-1234');
    expect(err.data).toEqual({ code: 'ERR_AUTH_FORBIDDEN', status: 403 });
  });

  it('accepts a read token and serves stats', async () => {
    const s = client(url, 'read-secret-1234');
    try {
      const hello = await once<{ principal: string }>(s, 'hello');
      expect(hello.principal).toBe('grafana');
      expect(await emitAck(s, 'subscribe', {})).toMatchObject({ ok: true });
      await once(s, 'stats');
    } finally {
      s.disconnect();
    }
  });
});

describe('every event', () => {
  it('refuses events the live socket does not know, and handles nothing for them', async () => {
    const s = client(url, 'admin-secret-1234');
    try {
      await once(s, 'hello');
      for (const event of ['subscribe_all', 'constructor', '__proto__', 'toString', 'admin:sql']) {
        expect(await emitAck(s, event, {}), event).toEqual({
          ok: false,
          error: { code: 'ERR_LIVE_UNKNOWN_EVENT', message: expect.stringMatching(/subscribe, unsubscribe/) },
        });
      }
      // Without an ack the refusal comes as a live_error event.
      const error = once<{ code: string }>(s, 'live_error');
      s.emit('nope', {});
      expect((await error).code).toBe('ERR_LIVE_UNKNOWN_EVENT');
    } finally {
      s.disconnect();
    }
  });

  it('checks the scope on each event, against the principal at that moment', async () => {
    const s = client(url, 'read-secret-1234');
    try {
      await once(s, 'hello');
      const server = [...live.namespace.sockets.values()].find(
        (x) => (x.data.auth as Principal).principal === 'grafana',
      )!;
      // Take the read scope away from this socket's principal: the next events must be refused.
      (server.data.auth as Principal).scopes = ['metrics'];
      for (const event of ['subscribe', 'tail']) {
        expect(await emitAck(s, event, {}), event).toEqual({
          ok: false,
          error: {
            code: 'ERR_AUTH_FORBIDDEN',
            message: `Token "grafana" lacks the "read" scope needed for "${event}"`,
          },
        });
      }
      let stats = 0;
      s.on('stats', () => stats++);
      await new Promise((r) => setTimeout(r, 600));
      expect(stats).toBe(0);
    } finally {
      s.disconnect();
    }
  });
});

describe('handshake Host and Origin', () => {
  it('without tokens: only loopback/listed Hosts and same-origin (or listed) Origins, polling and WebSocket', async () => {
    const open = await h.start(testConfig({ tokens: [], allowedHosts: ['gatescope.internal'] }));
    const port = (open.server.address() as AddressInfo).port;
    for (const transport of ['polling', 'websocket'] as const) {
      const ok = transport === 'polling' ? 200 : 101;
      const allowed: Record<string, string>[] = [
        {},
        { Host: `localhost:${port}` },
        { Host: 'gatescope.internal' },
        { Origin: `http://127.0.0.1:${port}` },
        { Host: 'gatescope.internal:8080', Origin: 'https://gatescope.internal' },
      ];
      for (const headers of allowed) {
        const r = await engineHandshake(port, transport, headers);
        expect(r.status, `${transport} ${JSON.stringify(headers)}`).toBe(ok);
      }
      const refusedHeaders: Record<string, string>[] = [
        { Host: `attacker.example:${port}` },
        { Host: `attacker.example:${port}`, Origin: `http://attacker.example:${port}` },
        { Origin: 'http://attacker.example' },
        { Origin: 'null' },
      ];
      for (const headers of refusedHeaders) {
        const r = await engineHandshake(port, transport, headers);
        // engine.io's own refusal statuses: 403 for polling, 400 for a WebSocket upgrade; the message says why.
        expect(r.status, `${transport} ${JSON.stringify(headers)}`).toBe(transport === 'polling' ? 403 : 400);
        expect(r.body).toMatch(/ERR_(HOST|ORIGIN)_NOT_ALLOWED: .*GATESCOPE_ALLOWED_HOSTS/);
      }
    }
    const polling = await engineHandshake(port, 'polling', {});
    expect(polling.headers['x-content-type-options']).toBe('nosniff');
    expect(polling.headers['content-security-policy']).toBe("default-src 'none'; frame-ancestors 'none'");
  });

  it('with tokens: Host is not checked, a foreign Origin still is', async () => {
    const port = Number(new URL(url).port);
    expect((await engineHandshake(port, 'polling', { Host: 'gatescope.example.com' })).status).toBe(200);
    expect((await engineHandshake(port, 'websocket', { Origin: 'http://attacker.example' })).status).toBe(
      400,
    );
    expect((await engineHandshake(port, 'polling', { Origin: 'http://attacker.example' })).status).toBe(403);
  });
});

it('without configured tokens everyone on an allowed Host is let in (gatescope then only binds loopback)', async () => {
  const open = await h.start(testConfig({ tokens: [] }));
  const s = client(open.url);
  try {
    expect((await once<{ principal: string }>(s, 'hello')).principal).toBe('anonymous');
  } finally {
    s.disconnect();
  }
});
