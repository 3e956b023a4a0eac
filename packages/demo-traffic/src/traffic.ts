/**
 * Realistic ingress traffic for the demo: what an Istio ingress gateway in front of a small shop logs.
 * Pure (a seeded random source in, StreamAccessLogsMessage-shaped plain objects out) so it is unit-tested
 * without a network; `generator.ts` streams it over gRPC.
 */
export const FRONTEND_V1 = 'outbound|80||frontend.default.svc.cluster.local';
export const FRONTEND_V2 = 'outbound|80||frontendv2.default.svc.cluster.local';
export const DEMO_NODE_ID =
  'router~10.0.0.7~istio-ingressgateway-6b7c9d8f5-x2x4z.istio-system~istio-system.svc.cluster.local';
export const DEMO_NODE_CLUSTER = 'istio-ingressgateway.istio-system';
export const DEMO_LOG_NAME = 'envoy.access_loggers.http_grpc';

export type Random = () => number;

/** A small deterministic PRNG (mulberry32) so tests can pin the mix. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Log-normal latency with the given median (ms) and spread; a long right tail like real services. */
function latency(rnd: Random, medianMs: number, sigma = 0.5): number {
  const u = Math.max(1e-9, rnd());
  const v = rnd();
  const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  return medianMs * Math.exp(sigma * z);
}

const pick = <T>(rnd: Random, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
const hex = (rnd: Random, n: number) =>
  Array.from({ length: n }, () => Math.floor(rnd() * 16).toString(16)).join('');
const uuid = (rnd: Random) => `${hex(rnd, 8)}-${hex(rnd, 4)}-4${hex(rnd, 3)}-a${hex(rnd, 3)}-${hex(rnd, 12)}`;

const USER_AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148',
  'shop-android/5.12.0 okhttp/4.12.0',
  'curl/8.8.0',
];
const CLIENT_IPS = [
  '198.51.100.23',
  '203.0.113.7',
  '192.0.2.44',
  '198.51.100.102',
  '2001:db8::1f',
  '203.0.113.200',
];

type Kind = 'ok' | 'uh' | 'uf' | 'urx' | 'nr' | 'dc' | 'auth';

interface RouteSpec {
  route: string;
  weight: number;
  authority: string;
  method: () => string;
  path: (rnd: Random) => string;
  cluster: (rnd: Random) => string;
  /** Median latency by cluster. */
  medianMs: (cluster: string) => number;
  bodyBytes: () => number;
  protocol: 'HTTP11' | 'HTTP2';
}

const clusterOf = (svc: string) => `outbound|80||${svc}.default.svc.cluster.local`;

export const DEMO_ROUTES: readonly RouteSpec[] = [
  {
    route: 'frontend-canary',
    weight: 40,
    authority: 'shop.example.com',
    method: () => 'GET',
    path: (r) =>
      pick(r, [
        '/',
        '/products/' + (1000 + Math.floor(r() * 500)),
        '/category/shoes',
        '/category/bags',
        '/cart',
      ]),
    // The weighted 50/50 canary between frontend and frontendv2.
    cluster: (r) => (r() < 0.5 ? FRONTEND_V1 : FRONTEND_V2),
    medianMs: (c) => (c === FRONTEND_V2 ? 26 : 18), // v2 slightly slower
    bodyBytes: () => 18_000,
    protocol: 'HTTP2',
  },
  {
    route: 'api-products',
    weight: 18,
    authority: 'api.shop.example.com',
    method: () => 'GET',
    path: (r) => `/api/v1/products/${Math.floor(r() * 5000)}`,
    cluster: () => clusterOf('productcatalog'),
    medianMs: () => 9,
    bodyBytes: () => 2_400,
    protocol: 'HTTP2',
  },
  {
    route: 'api-cart',
    weight: 12,
    authority: 'api.shop.example.com',
    method: () => 'POST',
    path: (r) => `/api/v1/cart/${uuid(r)}/items`,
    cluster: () => clusterOf('cart'),
    medianMs: () => 14,
    bodyBytes: () => 640,
    protocol: 'HTTP2',
  },
  {
    route: 'api-search',
    weight: 10,
    authority: 'api.shop.example.com',
    method: () => 'GET',
    path: (r) => `/api/v1/search?q=${pick(r, ['shoes', 'red+bag', 'socks', 'hat'])}`,
    cluster: () => clusterOf('search'),
    medianMs: () => 45,
    bodyBytes: () => 9_800,
    protocol: 'HTTP2',
  },
  {
    route: 'api-checkout',
    weight: 4,
    authority: 'api.shop.example.com',
    method: () => 'POST',
    path: () => '/api/v1/checkout',
    cluster: () => clusterOf('checkout'),
    medianMs: () => 120,
    bodyBytes: () => 350,
    protocol: 'HTTP11',
  },
  {
    route: 'static',
    weight: 14,
    authority: 'static.shop.example.com',
    method: () => 'GET',
    path: (r) => `/assets/${pick(r, ['app', 'vendor', 'styles'])}.${hex(r, 8)}.${pick(r, ['js', 'css'])}`,
    cluster: () => clusterOf('static'),
    medianMs: () => 3,
    bodyBytes: () => 48_000,
    protocol: 'HTTP2',
  },
  {
    route: 'auth-login',
    weight: 2,
    authority: 'api.shop.example.com',
    method: () => 'POST',
    path: () => '/api/v1/login',
    cluster: () => clusterOf('auth'),
    medianMs: () => 60,
    bodyBytes: () => 120,
    protocol: 'HTTP11',
  },
];

const TOTAL_WEIGHT = DEMO_ROUTES.reduce((a, r) => a + r.weight, 0);

function pickRoute(rnd: Random): RouteSpec {
  let x = rnd() * TOTAL_WEIGHT;
  for (const r of DEMO_ROUTES) {
    x -= r.weight;
    if (x < 0) return r;
  }
  return DEMO_ROUTES[0];
}

function pickKind(rnd: Random, route: RouteSpec): Kind {
  const x = rnd();
  // A trickle of failures: upstream trouble mostly on checkout, scanners hitting unknown paths, impatient clients.
  const upstreamTrouble = route.route === 'api-checkout' ? 0.04 : 0.002;
  if (x < upstreamTrouble / 3) return 'uh';
  if (x < (2 * upstreamTrouble) / 3) return 'uf';
  if (x < upstreamTrouble) return 'urx';
  if (x < upstreamTrouble + 0.015) return 'nr';
  if (x < upstreamTrouble + 0.02) return 'dc';
  if (route.route === 'auth-login' && x < 0.3) return 'auth';
  return 'ok';
}

const dur = (ms: number) => {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
};
const ts = (ms: number) => {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
};

/**
 * One HTTPAccessLogEntry as Envoy logs it when the request completes at `nowMs` (so `start_time` is
 * `nowMs - duration`). Field names as in the .proto (snake_case).
 */
export function demoEntry(rnd: Random, nowMs: number): Record<string, unknown> {
  const spec = pickRoute(rnd);
  const kind = pickKind(rnd, spec);
  let cluster = spec.cluster(rnd);
  let route = spec.route;
  let authority = spec.authority;
  let path = spec.path(rnd);
  let code: number | undefined = 200;
  let details = 'via_upstream';
  let flags: Record<string, boolean> = {};
  let durationMs = latency(rnd, spec.medianMs(cluster));
  let upstreamHost: string | undefined = `10.244.${1 + Math.floor(rnd() * 4)}.${10 + Math.floor(rnd() * 40)}`;
  let bytesSent = Math.round(spec.bodyBytes() * (0.8 + rnd() * 0.4));
  switch (kind) {
    case 'uh':
      code = 503;
      details = 'no_healthy_upstream';
      flags = { no_healthy_upstream: true };
      cluster = '';
      upstreamHost = undefined;
      durationMs = 0.2 + rnd() * 0.3;
      bytesSent = 19;
      break;
    case 'uf':
      code = 503;
      details = 'upstream_reset_before_response_started{connection_failure}';
      flags = { upstream_connection_failure: true };
      durationMs = 1 + rnd() * 4;
      bytesSent = 91;
      break;
    case 'urx':
      code = 503;
      details = 'upstream_reset_before_response_started{remote_reset}';
      flags = { upstream_remote_reset: true, upstream_retry_limit_exceeded: true };
      durationMs *= 3;
      bytesSent = 87;
      break;
    case 'nr':
      code = 404;
      details = 'route_not_found';
      flags = { no_route_found: true };
      cluster = '';
      route = '';
      upstreamHost = undefined;
      authority = pick(rnd, ['203.0.113.50', 'shop.example.com']);
      path = pick(rnd, ['/wp-login.php', '/.env', '/admin/config.php', '/phpmyadmin/', '/.git/config']);
      durationMs = 0.05 + rnd() * 0.1;
      bytesSent = 0;
      break;
    case 'dc':
      code = undefined; // the client went away before a response was sent
      details = 'downstream_remote_disconnect';
      flags = { downstream_connection_termination: true };
      bytesSent = 0;
      break;
    case 'auth':
      code = 401;
      details = 'via_upstream';
      bytesSent = 64;
      break;
    case 'ok':
      if (spec.route === 'api-cart' && rnd() < 0.1) code = 201;
      if (spec.route === 'frontend-canary' && rnd() < 0.05) {
        code = 304;
        bytesSent = 0;
      }
      break;
  }
  const startMs = nowMs - durationMs;
  const ip = pick(rnd, CLIENT_IPS);
  const requestId = uuid(rnd);
  const common: Record<string, unknown> = {
    downstream_remote_address: {
      socket_address: { address: ip, port_value: 1024 + Math.floor(rnd() * 60000) },
    },
    downstream_local_address: { socket_address: { address: '10.0.0.7', port_value: 8443 } },
    start_time: ts(startMs),
    duration: dur(durationMs),
    time_to_last_rx_byte: dur(Math.min(durationMs, 0.1)),
    time_to_last_downstream_tx_byte: dur(durationMs),
    route_name: route,
    upstream_cluster: cluster,
    response_flags: flags,
    upstream_request_attempt_count: kind === 'urx' ? 3 : 1,
    tls_properties: { tls_version: 'TLSv1_3', tls_sni_hostname: authority },
  };
  if (upstreamHost) {
    common.upstream_remote_address = { socket_address: { address: upstreamHost, port_value: 8080 } };
    common.time_to_first_upstream_rx_byte = dur(durationMs * 0.9);
  }
  const response: Record<string, unknown> = {
    response_code_details: details,
    response_body_bytes: bytesSent,
    response_headers_bytes: code ? 210 : 0,
  };
  if (code !== undefined) response.response_code = { value: code };
  return {
    common_properties: common,
    protocol_version: spec.protocol,
    request: {
      request_method: spec.method(),
      scheme: 'https',
      authority,
      path,
      user_agent: pick(rnd, USER_AGENTS),
      forwarded_for: ip,
      request_id: requestId,
      request_headers_bytes: 600 + Math.floor(rnd() * 300),
      request_body_bytes: spec.method() === 'POST' ? 200 + Math.floor(rnd() * 600) : 0,
    },
    response,
  };
}

/** The identifier Envoy sends on the first message of each stream. */
export function demoIdentifier(): Record<string, unknown> {
  return {
    node: { id: DEMO_NODE_ID, cluster: DEMO_NODE_CLUSTER, user_agent_name: 'envoy' },
    log_name: DEMO_LOG_NAME,
  };
}
