/**
 * Attack suite, HTTP: every route the running all-in-one process has (its own start-up route table, not a list
 * written here) × every spelling class of its path (sent as raw bytes: fetch would normalise them) × no token,
 * a wrong token and each scope. Each answer must be exactly what the route's access demands: never a handler's
 * answer without the scope. Every response must carry the security headers, and no secret may reach the log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io, type Socket } from 'socket.io-client';
import { startGatescopeProcess, type GatescopeProcess } from '../support/gatescope-process.js';
import { errorCode, rawRequest, type RawResponse } from '../support/raw-http.js';
import { concretePath, spellings, tailOf, type Spelling } from './spellings.js';

type Scope = 'metrics' | 'read' | 'admin';
type Access = 'public' | Scope;
interface RouteRow {
  method: string;
  url: string;
  access: Access;
}

const SECRETS = {
  metrics: 'sec-metrics-9f81c2d7e6',
  read: 'sec-read-4b2a7e19c3d8',
  admin: 'sec-admin-71d3f0a9b5e2',
};
const WRONG = 'sec-wrong-0c5d8e2f1a6b';
const CREDENTIALS: { name: string; token?: string; scopes: Scope[] }[] = [
  { name: 'no token', scopes: [] },
  { name: 'wrong token', token: WRONG, scopes: [] },
  { name: 'metrics token', token: SECRETS.metrics, scopes: ['metrics'] },
  { name: 'read token', token: SECRETS.read, scopes: ['metrics', 'read'] },
  { name: 'admin token', token: SECRETS.admin, scopes: ['metrics', 'read', 'admin'] },
];

let gs: GatescopeProcess;
let routes: RouteRow[];

beforeAll(async () => {
  gs = await startGatescopeProcess({
    env: {
      GATESCOPE_TOKENS: `prom:${SECRETS.metrics}:metrics,grafana:${SECRETS.read}:read,ops:${SECRETS.admin}:admin`,
      GATESCOPE_RATE_LIMIT_PER_MINUTE: '10000000',
    },
  });
  const line = gs
    .log()
    .split('\n')
    .find((l) => l.includes('"http routes and their access'));
  routes = (JSON.parse(line!) as { routes: RouteRow[] }).routes;
});
afterAll(async () => {
  await gs?.stop();
});

/** Run `jobs` with at most `n` at a time. */
async function pool<T>(jobs: (() => Promise<T>)[], n: number): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < jobs.length) {
        const i = next++;
        results[i] = await jobs[i]();
      }
    }),
  );
  return results;
}

function expectSecurityHeaders(res: RawResponse, what: string): void {
  expect(res.headers['x-content-type-options'], what).toBe('nosniff');
  expect(res.headers['x-frame-options'], what).toBe('DENY');
  expect(res.headers['referrer-policy'], what).toBe('no-referrer');
  expect(res.headers['content-security-policy'], what).toMatch(/frame-ancestors 'none'/);
  expect(res.headers['access-control-allow-origin'], what).toBeUndefined();
}

describe('every route × every spelling × every credential', () => {
  it('the process lists its routes with their access, and the table is the whole API', () => {
    const key = (r: RouteRow) => `${r.method} ${r.url} ${r.access}`;
    expect(routes.map(key)).toEqual(
      expect.arrayContaining([
        'GET /healthz public',
        'GET /readyz public',
        'GET / public',
        'GET /metrics metrics',
        'GET /openapi.json read',
        'GET /docs read',
        'GET /api/v1/summary read',
        'GET /api/v1/routes/:route/split read',
        'POST /api/v1/sql admin',
      ]),
    );
    expect(
      routes.filter((r) => r.url.startsWith('/assets/') && r.access === 'public').length,
    ).toBeGreaterThan(1);
    // Nothing but the UI, liveness and readiness is public.
    const publicUrls = routes.filter((r) => r.access === 'public').map((r) => r.url);
    for (const url of publicUrls) expect(url).toMatch(/^\/(healthz|readyz|index\.html|assets\/.+)?$/);
  });

  it('answers each request exactly as the matched route (or the not-found rule) demands', async () => {
    const protectedFirstSegments = new Set(
      routes.filter((r) => r.access !== 'public').map((r) => r.url.split('/')[1].toLowerCase()),
    );
    interface Case {
      route: RouteRow;
      spelling: Spelling;
      credential: (typeof CREDENTIALS)[number];
    }
    const cases: Case[] = [];
    const routePaths = new Set(routes.map((r) => `${r.method} ${concretePath(r.url)}`));
    for (const route of routes) {
      const path = concretePath(route.url);
      for (const spelling of spellings(path, gs.http.replace(/\/$/, ''), SECRETS.read, tailOf(route.url))) {
        // A spelling that is another route's own path (`/docs` + `/` = `/docs/`) is that route's case.
        if (spelling.name !== 'canonical' && routePaths.has(`${route.method} ${spelling.target}`)) continue;
        for (const credential of CREDENTIALS) cases.push({ route, spelling, credential });
      }
    }
    const responses = await pool(
      cases.map(
        ({ route, spelling, credential }) =>
          () =>
            rawRequest({
              port: gs.httpPort,
              method: route.method,
              target: spelling.target,
              headers: {
                ...(credential.token ? { Authorization: `Bearer ${credential.token}` } : {}),
                ...(route.method === 'POST' ? { 'Content-Type': 'application/json' } : {}),
              },
              body: route.method === 'POST' ? JSON.stringify({ query: 'SELECT 1' }) : undefined,
            }),
      ),
      12,
    );

    const problems: string[] = [];
    const handlerAnswers = { withScope: 0, spaIndex: 0 };
    cases.forEach(({ route, spelling, credential }, i) => {
      const res = responses[i];
      const what = `${route.method} ${JSON.stringify(spelling.target)} (${spelling.name}, route ${route.url} ${route.access}) with ${credential.name}`;
      const code = errorCode(res);
      const head = route.method === 'HEAD'; // no body, so no error code to compare
      const fail = (expected: string) =>
        problems.push(`${what}: expected ${expected}, got ${res.status} ${code ?? res.body.slice(0, 80)}`);
      const expectAuthRefusal = (needed: Scope) => {
        if (!credential.token) {
          if (res.status !== 401 || (!head && code !== 'ERR_AUTH_REQUIRED')) fail('401 ERR_AUTH_REQUIRED');
        } else if (credential.token === WRONG) {
          if (res.status !== 401 || (!head && code !== 'ERR_AUTH_INVALID')) fail('401 ERR_AUTH_INVALID');
        } else if (!credential.scopes.includes(needed)) {
          if (res.status !== 403 || (!head && code !== 'ERR_AUTH_FORBIDDEN')) fail('403 ERR_AUTH_FORBIDDEN');
        } else return false;
        return true;
      };
      try {
        expectSecurityHeaders(res, what);
      } catch (err) {
        problems.push((err as Error).message);
      }
      // A miss under a wildcard route's prefix (`/docs/static/index.html%00`) is that wildcard route's request.
      const wildcard = routes.find(
        (r) =>
          r.method === route.method && r.url.endsWith('*') && spelling.target.startsWith(r.url.slice(0, -1)),
      );
      const reach =
        spelling.reach.kind === 'miss' && wildcard ? ({ kind: 'route' } as const) : spelling.reach;
      const access = reach === spelling.reach ? route.access : wildcard!.access;
      if (reach.kind === 'refused') {
        if (res.status !== 400 || (!head && code !== reach.code)) fail(`400 ${reach.code}`);
      } else if (reach.kind === 'route') {
        if (access !== 'public' && expectAuthRefusal(access)) return;
        // The handler answered (with the scope, or on a public route): anything but an auth refusal.
        if (res.status === 401 || code?.startsWith('ERR_AUTH')) fail("the handler's answer");
        handlerAnswers.withScope++;
      } else {
        const firstSegment = route.url.split('/')[1].toLowerCase();
        const ui =
          (route.method === 'GET' || route.method === 'HEAD') && !protectedFirstSegments.has(firstSegment);
        if (ui) {
          if (res.status !== 200 || !/text\/html/.test(res.headers['content-type'] ?? ''))
            fail('the UI index.html');
          handlerAnswers.spaIndex++;
        } else if (!expectAuthRefusal('read')) {
          if (res.status !== 404 || (!head && code !== 'ERR_NOT_FOUND')) fail('404 ERR_NOT_FOUND');
        }
      }
    });
    console.log(
      `route × spelling × credential: ${cases.length} requests, ${routes.length} routes; ` +
        `${handlerAnswers.withScope} reached a handler with the scope, ${handlerAnswers.spaIndex} got the UI`,
    );
    if (problems.length) console.log([...new Set(problems.map((p) => p.replace(/ with .*/, '')))].join('\n'));
    expect(problems.slice(0, 40)).toEqual([]);
    // The matrix really exercised both sides.
    expect(handlerAnswers.withScope).toBeGreaterThan(100);
    expect(cases.length).toBeGreaterThan(3000);
  });

  it("the issue's examples: encoded SQL paths and an absolute-form target run nothing without admin", async () => {
    const sql = (target: string, token?: string) =>
      rawRequest({
        port: gs.httpPort,
        method: 'POST',
        target,
        headers: {
          'Content-Type': 'application/json',
          ...(token ? { Authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify({ query: 'SELECT 42 AS answer' }),
      });
    const noToken = await sql('/%61pi/v1/sql');
    expect([noToken.status, errorCode(noToken)]).toEqual([401, 'ERR_AUTH_REQUIRED']);
    const readToken = await sql('/api/v1/%73ql', SECRETS.read);
    expect([readToken.status, errorCode(readToken)]).toEqual([403, 'ERR_AUTH_FORBIDDEN']);
    const absolute = await sql(`http://x/api/v1/sql`);
    expect([absolute.status, errorCode(absolute)]).toEqual([400, 'ERR_REQUEST_TARGET']);
    const admin = await sql('/api/v1/%73ql', SECRETS.admin);
    expect(admin.status).toBe(200);
    expect(JSON.parse(admin.body).data).toEqual([{ answer: 42 }]);
  });

  it('refuses foreign browser origins in token mode too, and never sends CORS headers', async () => {
    const res = await rawRequest({
      port: gs.httpPort,
      target: '/api/v1/summary',
      headers: { Authorization: `Bearer ${SECRETS.read}`, Origin: 'http://attacker.example' },
    });
    expect([res.status, errorCode(res)]).toEqual([403, 'ERR_ORIGIN_NOT_ALLOWED']);
    const preflight = await rawRequest({
      port: gs.httpPort,
      method: 'OPTIONS',
      target: '/api/v1/sql',
      headers: { Origin: `http://127.0.0.1:${gs.httpPort}`, 'Access-Control-Request-Method': 'POST' },
    });
    expect(preflight.status).toBe(401);
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
    const same = await rawRequest({
      port: gs.httpPort,
      target: '/api/v1/summary',
      headers: { Authorization: `Bearer ${SECRETS.read}`, Origin: `http://127.0.0.1:${gs.httpPort}` },
    });
    expect(same.status).toBe(200);
  });

  it('puts the security headers on malformed requests too', async () => {
    const malformed = await rawRequest({
      port: gs.httpPort,
      target: '/healthz',
      headers: { 'Bad Header': 'x' },
    });
    expect(malformed.status).toBe(400);
    expectSecurityHeaders(malformed, 'malformed request');
  });
});

describe('live socket', () => {
  const connect = (token?: string) =>
    io(`${gs.http}live`, {
      transports: ['websocket'],
      auth: token ? { token } : {},
      reconnection: false,
      forceNew: true,
    });
  const outcome = (s: Socket) =>
    new Promise<{ hello?: { principal: string }; error?: { code: string; status: number } }>((resolve) => {
      s.once('hello', (hello: { principal: string }) => resolve({ hello }));
      s.once('connect_error', (err: Error & { data?: { code: string; status: number } }) =>
        resolve({ error: err.data }),
      );
    });

  it('needs a read token on connect, like the API', async () => {
    for (const [token, expected] of [
      [undefined, { error: { code: 'ERR_AUTH_REQUIRED', status: 401 } }],
      [WRONG, { error: { code: 'ERR_AUTH_INVALID', status: 401 } }],
      [SECRETS.metrics, { error: { code: 'ERR_AUTH_FORBIDDEN', status: 403 } }],
      [SECRETS.read, { hello: expect.objectContaining({ principal: 'grafana' }) }],
    ] as const) {
      const s = connect(token);
      try {
        expect(await outcome(s), String(token)).toEqual(expected);
      } finally {
        s.disconnect();
      }
    }
  });

  it('checks every event: unknown events are refused and do nothing', async () => {
    const s = connect(SECRETS.admin);
    try {
      await outcome(s);
      const ack = (event: string, arg: unknown) => s.timeout(10_000).emitWithAck(event, arg);
      for (const event of ['sql', 'admin', 'subscribe ', 'SUBSCRIBE', 'hasOwnProperty']) {
        expect(await ack(event, { query: 'SELECT 1' }), event).toMatchObject({
          ok: false,
          error: { code: 'ERR_LIVE_UNKNOWN_EVENT' },
        });
      }
      expect(await ack('subscribe', {})).toMatchObject({ ok: true });
    } finally {
      s.disconnect();
    }
  });
});

describe('after the suite', () => {
  it('the process is alive and no secret reached its log', async () => {
    expect((await fetch(`${gs.http}healthz`)).status).toBe(200);
    const log = gs.log();
    for (const secret of [...Object.values(SECRETS), WRONG]) {
      expect(log.includes(secret), `${secret} in the log`).toBe(false);
      expect(log.includes(encodeURIComponent(secret))).toBe(false);
    }
    expect(log).toContain('token=[REDACTED]'); // the spellings that put one in the URL were logged, masked
  });
});
