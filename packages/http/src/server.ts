import { FastifyOtelInstrumentation } from '@fastify/otel';
import { tracingEnabled } from '@gatescope/telemetry';
import { existsSync, readFileSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { join, resolve } from 'node:path';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import fastifyStatic from '@fastify/static';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from 'fastify';
import { authenticate, bearerToken } from '@gatescope/auth';
import type { Config, TokenScope } from '@gatescope/config';
import { declareAccess, withAccess, type Access, type RouteAccess } from './access.js';
import { HELMET_OPTIONS, NON_DOCUMENT_HEADERS } from './headers.js';
import { checkHostAndOrigin, hostPolicyFor } from './host-policy.js';
import { firstSegment, secretInQuery } from './paths.js';

/**
 * The HTTP boundary every gatescope HTTP port shares (the all-in-one, the API and the live server alone).
 *
 * Each request, before any handler, in this order:
 * 1. the request target must be a path (origin-form): absolute-form (`GET http://x/api/v1/sql`) and `*` get 400;
 * 2. `Host` (tokenless mode) and `Origin` (every mode) must pass `checkHostAndOrigin`: 421 / 403;
 * 3. no credential in the query string (`?token=`): 400, it would already sit in logs and browser history;
 * 4. the access the *matched route* declared (`config.access`, enforced at registration by `declareAccess`):
 *    `public` passes; otherwise the bearer token must carry the scope (401 missing/invalid, 403 scope), counted
 *    by the rate limit under the token's name, or the client address when there is no valid token.
 * A request that matched no route needs a `read` token and gets 404, except a GET/HEAD whose path, however
 * spelled, is not under a protected route's first segment: that is the UI's index.html (public).
 * Refusals are `{ error: { code, message } }` and carry the security headers like every other response.
 */
export interface HttpAppOptions {
  config: Pick<Config, 'auth' | 'http' | 'host'>;
  /** A pino logger (`createLogger` in @gatescope/runtime), or false for none. */
  logger: FastifyBaseLogger | false;
  /** The built web UI: its files are public routes, and its index.html the fallback for browser paths. */
  webRoot?: string;
  bodyLimit?: number;
  ajv?: FastifyServerOptions['ajv'];
  /** What a 404 suggests. Default: the API documentation. */
  notFoundHint?: string;
}

/** The route table of an app built here, for the start-up log and for tests. */
export const ROUTE_TABLE = Symbol.for('gatescope.http.routeTable');

type ErrorCode = string;
const RATE_KEY = Symbol('gatescope.http.rateKey');
type KeyedRequest = FastifyRequest & { [RATE_KEY]?: string };

function refuse(reply: FastifyReply, status: number, code: ErrorCode, message: string): FastifyReply {
  return reply.code(status).send({ error: { code, message } });
}

/** Responses written to the socket before fastify has a request (malformed HTTP): fastify-like, with headers. */
function clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || !socket.writable) return;
  const status =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
  const body = JSON.stringify({
    error: { code: 'ERR_BAD_REQUEST', message: `Malformed HTTP request (${err.code ?? 'parse error'})` },
  });
  const headers = Object.entries({
    ...NON_DOCUMENT_HEADERS,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    Connection: 'close',
  })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${headers}\r\n${body}`);
}

export async function createHttpApp(opts: HttpAppOptions): Promise<FastifyInstance> {
  const { config } = opts;
  const tls = config.http.tls;
  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    ...(tls ? { https: { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) } } : {}),
    requestIdHeader: 'x-request-id',
    bodyLimit: opts.bodyLimit,
    ajv: opts.ajv,
    clientErrorHandler,
    // A path that is not valid percent-encoding never reaches the router; answer like every other refusal.
    frameworkErrors: (err, _req, reply) => {
      void refuse(
        (reply as FastifyReply).headers(NON_DOCUMENT_HEADERS),
        400,
        'ERR_BAD_URL',
        `${err.message}: percent-encode the path as UTF-8`,
      );
    },
  }) as unknown as FastifyInstance;

  // Request spans (@fastify/otel: a `request` span per request, a child per hook and handler; a caller's
  // `traceparent` is continued), only when tracing is on: without it not even the hooks are added. Probes and
  // scrapes are left out.
  if (tracingEnabled()) {
    const otel = new FastifyOtelInstrumentation({
      ignorePaths: (r: { url: string }) => /^\/(healthz|readyz|metrics)(\?|$)/.test(r.url),
    });
    await app.register(otel.plugin());
  }

  const table: RouteAccess[] = [];
  (app as FastifyInstance & { [ROUTE_TABLE]: RouteAccess[] })[ROUTE_TABLE] = table;
  app.addHook('onRoute', declareAccess(table));

  await app.register(helmet, HELMET_OPTIONS);
  await app.register(rateLimit, {
    global: false,
    max: config.auth.rateLimitPerMinute,
    timeWindow: 60_000,
    keyGenerator: (req) => (req as KeyedRequest)[RATE_KEY] ?? `ip:${req.ip}`,
  });
  const limiter = app.createRateLimit();

  const policy = hostPolicyFor(config);
  // First segments of every protected route (`api`, `docs`, …): a miss under one of them is never the UI.
  let protectedSegments: Set<string> | undefined;
  const isProtectedPath = (target: string) => {
    protectedSegments ??= new Set(
      table.filter((r) => r.access !== 'public').map((r) => firstSegment(r.url.replace(/[:*].*$/, 'x'))),
    );
    return protectedSegments.has(firstSegment(target));
  };
  const indexFile = opts.webRoot ? join(resolve(opts.webRoot), 'index.html') : undefined;
  const indexHtml = indexFile && existsSync(indexFile) ? readFileSync(indexFile) : undefined;
  const servesIndex = (req: FastifyRequest) =>
    !!indexHtml && (req.method === 'GET' || req.method === 'HEAD') && !isProtectedPath(req.raw.url ?? '/');

  /** Check the token for `access`; answers the refusal itself (then returns the sent reply). */
  async function authorize(
    req: FastifyRequest,
    reply: FastifyReply,
    access: TokenScope,
  ): Promise<FastifyReply | undefined> {
    const outcome = authenticate(config.auth, bearerToken(req.headers.authorization), access);
    (req as KeyedRequest)[RATE_KEY] =
      outcome.ok && outcome.principal !== 'anonymous' ? `token:${outcome.principal}` : `ip:${req.ip}`;
    const limit = await limiter(req);
    if (!limit.isAllowed && limit.isExceeded) {
      void reply.header('retry-after', limit.ttlInSeconds);
      return refuse(
        reply,
        429,
        'ERR_RATE_LIMITED',
        `Rate limit of ${limit.max} requests per minute exceeded: retry in ${limit.ttlInSeconds} s`,
      );
    }
    if (!outcome.ok) return refuse(reply, outcome.status, outcome.code, outcome.message);
    req.auth = { principal: outcome.principal, scopes: outcome.scopes, restriction: outcome.restriction };
    return undefined;
  }

  app.addHook('onRequest', async (req, reply) => {
    const target = req.raw.url ?? '';
    if (!target.startsWith('/')) {
      return refuse(
        reply,
        400,
        'ERR_REQUEST_TARGET',
        `Request target "${target.slice(0, 100)}" refused: send the path only ("${req.method} /api/v1/…"), not an absolute URL or "*"`,
      );
    }
    const verdict = checkHostAndOrigin(policy, req.headers);
    if (!verdict.ok) {
      req.log.warn(
        { code: verdict.code, host: req.headers.host, origin: req.headers.origin },
        'request refused',
      );
      return refuse(reply, verdict.status, verdict.code, verdict.message);
    }
    const secret = secretInQuery(target);
    if (secret) {
      return refuse(
        reply,
        400,
        'ERR_TOKEN_IN_URL',
        `Credentials are never taken from URLs (they end up in logs, proxies and browser history): remove "${secret}=" ` +
          'and send "Authorization: Bearer <token>"',
      );
    }
    const access: Access = req.is404
      ? servesIndex(req)
        ? 'public'
        : 'read'
      : (req.routeOptions.config.access ?? 'admin');
    if (access === 'public') return;
    return authorize(req, reply, access);
  });

  if (indexHtml && opts.webRoot) {
    await app.register(withAccess('public', fastifyStatic), {
      root: resolve(opts.webRoot),
      // One route per built file: no wildcard, so everything else reaches the not-found handler below.
      wildcard: false,
      index: ['index.html'],
    });
  }

  app.setNotFoundHandler(async (req, reply) => {
    if (servesIndex(req))
      return reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(indexHtml);
    // Reached from a route that handed over (a static plugin's miss) without the guard's token check: check now.
    if (!req.auth) {
      const refused = await authorize(req, reply, 'read');
      if (refused) return refused;
    }
    const path = (req.raw.url ?? '').split('?', 1)[0].slice(0, 200);
    return refuse(
      reply,
      404,
      'ERR_NOT_FOUND',
      `No route ${req.method} ${path}: ${opts.notFoundHint ?? 'see /docs for the API'}`,
    );
  });

  app.addHook('onReady', async function () {
    this.log.info(
      { routes: table },
      'http routes and their access (public, metrics, read, admin); any other path needs a token',
    );
  });
  return app;
}

/** The route table of an app made by `createHttpApp`. */
export function routeTable(app: FastifyInstance): readonly RouteAccess[] {
  return (app as FastifyInstance & { [ROUTE_TABLE]?: RouteAccess[] })[ROUTE_TABLE] ?? [];
}
