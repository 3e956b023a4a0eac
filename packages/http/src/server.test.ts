import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '@gatescope/config';
import { errorCode, rawRequest } from '../../../test/support/raw-http.js';
import { createHttpApp, routeTable, withAccess } from './index.js';

const READ = 'read-secret-0001';
const ADMIN = 'admin-secret-0001';
const METRICS = 'metrics-secret-01';

function config(
  over: Partial<Config['auth']> & Partial<Config['http']> = {},
): Pick<Config, 'auth' | 'http' | 'host'> {
  return {
    host: '127.0.0.1',
    auth: {
      tokens: over.tokens ?? [
        { name: 'reader', token: READ, scopes: ['read'] },
        { name: 'ops', token: ADMIN, scopes: ['admin'] },
        { name: 'prom', token: METRICS, scopes: ['metrics'] },
      ],
      allowUnauthenticated: false,
      rateLimitPerMinute: over.rateLimitPerMinute ?? 10_000,
    },
    http: { allowedHosts: over.allowedHosts ?? [], metricsPublic: false, tls: undefined },
  };
}

const webRoot = mkdtempSync(join(tmpdir(), 'gatescope-http-web-'));
writeFileSync(join(webRoot, 'index.html'), '<!doctype html><title>ui</title>');
mkdirSync(join(webRoot, 'assets'));
writeFileSync(join(webRoot, 'assets', 'app.js'), 'console.log(1)');
afterAll(() => rmSync(webRoot, { recursive: true, force: true }));

async function build(cfg = config()): Promise<FastifyInstance> {
  const app = await createHttpApp({ config: cfg, logger: false, webRoot });
  app.get('/ping', { config: { access: 'public' } }, async () => ({ pong: true }));
  app.get('/api/data', { config: { access: 'read' } }, async (req) => ({ who: req.auth?.principal }));
  app.post('/api/admin', { config: { access: 'admin' } }, async (req) => ({ who: req.auth?.principal }));
  app.get('/stats', { config: { access: 'metrics' } }, async () => 'ok');
  return app;
}

describe('route access is declared, or the server does not start', () => {
  it('refuses at boot a route that declares nothing, naming it and the fix', async () => {
    const app = await createHttpApp({ config: config(), logger: false });
    expect(() => app.get('/forgotten', async () => 'oops')).toThrow(
      /Route GET \/forgotten declares no valid access: add config: \{ access: 'public' \| 'metrics' \| 'read' \| 'admin' \}/,
    );
    expect(() => app.get('/typo', { config: { access: 'pubic' as never } }, async () => 'oops')).toThrow(
      /declares no valid access/,
    );
    await app.close();
  });
  it('gives a third-party plugin the access of withAccess, and lists every route with its access', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatescope-http-files-'));
    writeFileSync(join(dir, 'secret.txt'), 'classified');
    const app = await build();
    await app.register(withAccess('admin', fastifyStatic), {
      root: dir,
      wildcard: false,
      decorateReply: false,
    });
    await app.ready();
    expect(routeTable(app)).toEqual(
      expect.arrayContaining([
        { method: 'GET', url: '/secret.txt', access: 'admin' },
        { method: 'GET', url: '/assets/app.js', access: 'public' },
        { method: 'GET', url: '/', access: 'public' },
        { method: 'HEAD', url: '/api/data', access: 'read' },
        { method: 'POST', url: '/api/admin', access: 'admin' },
      ]),
    );
    const read = await app.inject({ url: '/secret.txt', headers: { authorization: `Bearer ${READ}` } });
    expect(read.statusCode).toBe(403);
    const admin = await app.inject({ url: '/secret.txt', headers: { authorization: `Bearer ${ADMIN}` } });
    expect(admin.body).toBe('classified');
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('on a real port', () => {
  let app: FastifyInstance;
  let port: number;
  const get = (target: string, headers: Record<string, string> = {}, method = 'GET') =>
    rawRequest({ port, target, headers, method });
  beforeAll(async () => {
    app = await build();
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as AddressInfo).port;
  });
  afterAll(() => app?.close());

  it('decides on the matched route: an encoded spelling of a path gets that route and its scope', async () => {
    expect((await get('/%61pi/data')).status).toBe(401);
    const r = await get('/%61pi/d%61ta', { Authorization: `Bearer ${READ}` });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ who: 'reader' });
    const post = await rawRequest({
      port,
      method: 'POST',
      target: '/api/%61dmin',
      headers: { Authorization: `Bearer ${READ}` },
    });
    expect([post.status, errorCode(post)]).toEqual([403, 'ERR_AUTH_FORBIDDEN']);
  });
  it('refuses absolute-form and asterisk-form targets before routing', async () => {
    for (const target of [`http://127.0.0.1:${port}/api/data`, 'https://x/api/admin', '*']) {
      const r = await get(target, { Authorization: `Bearer ${ADMIN}` });
      expect([r.status, errorCode(r)], target).toEqual([400, 'ERR_REQUEST_TARGET']);
    }
  });
  it('wants a read token on unknown paths, and serves the UI only outside protected prefixes', async () => {
    for (const target of [
      '/api/nope',
      '//api/data',
      '/API/data',
      '/api/data/',
      '/x/../api/data',
      '/api%2Fdata',
    ]) {
      expect((await get(target)).status, target).toBe(401);
      expect((await get(target, { Authorization: `Bearer ${METRICS}` })).status, target).toBe(403);
      const r = await get(target, { Authorization: `Bearer ${READ}` });
      expect([r.status, errorCode(r)], target).toEqual([404, 'ERR_NOT_FOUND']);
    }
    const ui = await get('/overview/deep/link');
    expect(ui.status).toBe(200);
    expect(ui.body).toContain('<title>ui</title>');
    expect((await get('/overview', {}, 'POST')).status).toBe(401);
  });
  it('scopes: metrics < read < admin', async () => {
    expect((await get('/stats', { Authorization: `Bearer ${METRICS}` })).status).toBe(200);
    expect((await get('/stats', { Authorization: `Bearer ${READ}` })).status).toBe(200);
    expect((await get('/api/data', { Authorization: `Bearer ${METRICS}` })).status).toBe(403);
    expect((await get('/api/data', { Authorization: `Bearer ${ADMIN}` })).status).toBe(200);
  });
  it('refuses credentials in the query string, on public routes too', async () => {
    for (const target of ['/ping?token=abc', `/api/data?access_token=${READ}`, '/?%74oken=x']) {
      const r = await get(target, { Authorization: `Bearer ${READ}` });
      expect([r.status, errorCode(r)], target).toEqual([400, 'ERR_TOKEN_IN_URL']);
    }
  });
  it('puts the security headers on every kind of response', async () => {
    const responses = [
      await get('/ping'),
      await get('/assets/app.js'),
      await get('/'),
      await get('/deep/link'),
      await get('/api/data'),
      await get('/api/data', { Authorization: `Bearer ${METRICS}` }),
      await get('/api/nope', { Authorization: `Bearer ${READ}` }),
      await get('http://x/ping'),
      await get('/ping?token=1'),
      await get('/api/d%zzata'),
      await rawRequest({ port, target: '/ping', omitHost: true, headers: { 'Bad Header': 'x' } }),
    ];
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200, 401, 403, 404, 400, 400, 400, 400]);
    for (const r of responses) {
      expect(r.headers['x-content-type-options'], JSON.stringify(r)).toBe('nosniff');
      expect(r.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
      expect(r.headers['x-frame-options']).toBe('DENY');
      expect(r.headers['referrer-policy']).toBe('no-referrer');
    }
  });
});

describe('rate limit', () => {
  it('counts per token name, and failed attempts per client address', async () => {
    const app = await build(config({ rateLimitPerMinute: 3 }));
    const call = (token?: string) =>
      app.inject({ url: '/api/data', headers: token ? { authorization: `Bearer ${token}` } : {} });
    for (let i = 0; i < 3; i++) expect((await call(READ)).statusCode).toBe(200);
    const limited = await call(READ);
    expect(limited.statusCode).toBe(429);
    expect(limited.json().error.code).toBe('ERR_RATE_LIMITED');
    expect(limited.headers['retry-after']).toBeDefined();
    expect((await call(ADMIN)).statusCode).toBe(200); // its own budget
    for (let i = 0; i < 3; i++) expect((await call('wrong-token-xyz')).statusCode).toBe(401);
    expect((await call('another-wrong-one')).statusCode).toBe(429); // guessing is limited by address
    expect((await app.inject('/ping')).statusCode).toBe(200); // public routes are not limited
    await app.close();
  });
});

describe('tokenless mode', () => {
  it('answers loopback Hosts and refuses other names (421) and foreign Origins (403)', async () => {
    const app = await build(config({ tokens: [], allowedHosts: ['gs.internal'] }));
    const at = (host: string, origin?: string) =>
      app.inject({ url: '/api/data', headers: { host, ...(origin ? { origin } : {}) } });
    expect((await at('127.0.0.1:8080')).json()).toEqual({ who: 'anonymous' });
    expect((await at('gs.internal')).statusCode).toBe(200);
    const rebound = await at('attacker.example:8080', 'http://attacker.example:8080');
    expect(rebound.statusCode).toBe(421);
    expect(rebound.json().error.message).toMatch(/GATESCOPE_ALLOWED_HOSTS/);
    expect(rebound.headers['x-content-type-options']).toBe('nosniff');
    const csrf = await at('127.0.0.1:8080', 'http://attacker.example');
    expect([csrf.statusCode, csrf.json().error.code]).toEqual([403, 'ERR_ORIGIN_NOT_ALLOWED']);
    // Public routes too: without tokens, only the addresses above are answered at all.
    expect((await app.inject({ url: '/ping', headers: { host: 'attacker.example' } })).statusCode).toBe(421);
    await app.close();
  });
});
