// Realistic Istio-ingress-shaped ALS traffic for benchmarks: pre-encoded StreamAccessLogsMessages, and the raw gRPC
// client the benchmark and load clients send them with.
import * as grpc from '@grpc/grpc-js';
import { encodeStreamAccessLogsMessage, STREAM_ACCESS_LOGS_PATH } from '@gatescope/als';

const same = (b) => b;
/** A raw-bytes AccessLogService client, as any other gRPC client would be (no generated code). */
export const AlsClient = grpc.makeGenericClientConstructor(
  {
    StreamAccessLogs: {
      path: STREAM_ACCESS_LOGS_PATH,
      requestStream: true,
      responseStream: false,
      requestSerialize: same,
      requestDeserialize: same,
      responseSerialize: same,
      responseDeserialize: same,
    },
  },
  'AccessLogService',
);

const ROUTES = [
  ['productpage', 'outbound|9080||productpage.default.svc.cluster.local', '/productpage'],
  ['reviews', 'outbound|9080||reviews.default.svc.cluster.local', '/api/v1/products/{n}/reviews'],
  ['ratings', 'outbound|9080||ratings.default.svc.cluster.local', '/api/v1/products/{n}/ratings'],
  ['frontend', 'outbound|80||frontend.default.svc.cluster.local', '/product/{id}'],
  ['frontend', 'outbound|80||frontendv2.default.svc.cluster.local', '/product/{id}'],
  ['cart', 'outbound|7070||cartservice.default.svc.cluster.local', '/hipstershop.CartService/GetCart'],
  ['checkout', 'outbound|5050||checkoutservice.default.svc.cluster.local', '/cart/checkout'],
  ['static', 'outbound|80||static.default.svc.cluster.local', '/static/js/main.{hash}.js'],
];
const AGENTS = [
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  'grpc-go/1.64.0',
  'curl/8.5.0',
];
const ids = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
let n = 0;
const rnd = (k) => Math.floor(Math.random() * k);
const randomId = () => Array.from({ length: 10 }, () => ids[rnd(36)]).join('');

/**
 * `count` routes: the eight above, then the same shapes under more names (`<route>-<k>`, cluster `…-<k>`), as a
 * gateway in front of many services has.
 */
export function routeCatalogue(count = ROUTES.length) {
  return Array.from({ length: count }, (_, i) => {
    const [route, cluster, path] = ROUTES[i % ROUTES.length];
    const k = Math.floor(i / ROUTES.length);
    return k === 0
      ? [route, cluster, path]
      : [`${route}-${k}`, cluster.replace('.default.', `-${k}.default.`), path];
  });
}

/**
 * `count` distinct paths with query strings for one route's path shape, as a real gateway sees them (ids, search
 * terms, paging, tracking parameters).
 */
function pathsFor(pathShape, count) {
  const params = ['page', 'q', 'sort', 'utm_source', 'currency', 'lang'];
  return Array.from({ length: count }, (_, i) => {
    const base = pathShape
      .replace('{n}', String(i % 500))
      .replace('{id}', randomId())
      .replace('{hash}', ((i * 2654435761) % 2 ** 32).toString(16));
    const p = params[i % params.length];
    return `${base}?${p}=${(i * 7919) % 10_000}${i % 3 === 0 ? '&ref=home' : ''}`;
  });
}

/**
 * The cardinality of realistic traffic, fixed up front so that a benchmark can print it: `paths` distinct paths
 * with query strings (spread over the routes) and `clients` distinct client addresses.
 */
export function cardinality({ routes = 48, paths = 5_000, clients = 4_000 } = {}) {
  const catalogue = routeCatalogue(routes);
  const perRoute = Math.max(1, Math.round(paths / routes));
  return {
    routes: catalogue.map(([route, cluster, shape]) => [route, cluster, shape, pathsFor(shape, perRoute)]),
    clients: Array.from({ length: clients }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`),
    counts: { routes, paths: perRoute * routes, clients },
  };
}

/**
 * One entry; `routes` picks from a catalogue (routeCatalogue, or cardinality().routes whose 4th element lists the
 * route's paths), `clients` from client addresses; `requestId`, `startSeconds` and `authority` pin those fields.
 */
export function entry(now = Date.now(), options = {}) {
  n++;
  const routes = options.routes ?? ROUTES;
  const [route, cluster, pathShape, paths] = routes[rnd(routes.length)];
  const path = paths
    ? paths[rnd(paths.length)]
    : pathShape
        .replace('{n}', String(rnd(500)))
        .replace('{id}', randomId())
        .replace('{hash}', ((n * 2654435761) % 2 ** 32).toString(16));
  const failing = rnd(100) === 0;
  const ms = Math.exp(Math.log(20) + 0.8 * (Math.random() + Math.random() + Math.random() - 1.5));
  const start = now - rnd(5000);
  return {
    commonProperties: {
      downstreamRemoteAddress: {
        socketAddress: {
          address: options.clients
            ? options.clients[rnd(options.clients.length)]
            : `10.${rnd(255)}.${rnd(255)}.${rnd(255)}`,
          portValue: 30000 + rnd(30000),
        },
      },
      downstreamLocalAddress: { socketAddress: { address: '10.0.0.7', portValue: 8080 } },
      upstreamRemoteAddress: failing
        ? undefined
        : { socketAddress: { address: `10.4.${rnd(8)}.${rnd(40)}`, portValue: 9080 } },
      upstreamLocalAddress: failing
        ? undefined
        : { socketAddress: { address: '10.0.0.7', portValue: 40000 + rnd(20000) } },
      upstreamCluster: failing ? '' : cluster,
      routeName: route,
      startTime: {
        seconds: options.startSeconds ?? Math.floor(start / 1000),
        nanos: (start % 1000) * 1e6 + rnd(1e6),
      },
      timeToLastRxByte: { nanos: 200_000 + rnd(100_000) },
      timeToFirstUpstreamTxByte: { nanos: 400_000 + rnd(100_000) },
      timeToLastUpstreamTxByte: { nanos: 450_000 + rnd(100_000) },
      timeToFirstUpstreamRxByte: { nanos: Math.floor(ms * 0.9e6) },
      timeToLastUpstreamRxByte: { nanos: Math.floor(ms * 0.95e6) },
      timeToFirstDownstreamTxByte: { nanos: Math.floor(ms * 0.92e6) },
      timeToLastDownstreamTxByte: { nanos: Math.floor(ms * 1e6) },
      duration: { nanos: Math.floor(ms * 1e6) },
      responseFlags: failing ? { noHealthyUpstream: true } : undefined,
      tlsProperties: { tlsVersion: 'TLSv1_3', tlsSniHostname: 'shop.example.com', tlsCipherSuite: 4865 },
      upstreamRequestAttemptCount: 1,
    },
    protocolVersion: rnd(2) ? 'HTTP2' : 'HTTP11',
    request: {
      requestMethod: rnd(10) ? 'GET' : 'POST',
      scheme: 'https',
      authority: options.authority ?? 'shop.example.com',
      path,
      userAgent: AGENTS[rnd(AGENTS.length)],
      referer: 'https://shop.example.com/',
      forwardedFor: '203.0.113.9',
      requestId: options.requestId ?? `${n.toString(16).padStart(8, '0')}-9c1b-4d5e-8f90-2b7c9d8f5a11`,
      requestHeadersBytes: 600 + rnd(200),
      requestBodyBytes: rnd(10) ? 0 : 300,
    },
    response: {
      responseCode: failing ? 503 : rnd(50) === 0 ? 404 : 200,
      responseHeadersBytes: 250,
      responseBodyBytes: 2000 + rnd(20000),
      responseCodeDetails: failing ? 'no_healthy_upstream' : 'via_upstream',
    },
  };
}

export function identifier(i) {
  return {
    node: {
      id: `router~10.0.0.${7 + i}~istio-ingressgateway-6b7c9d8f5-x2x4z.istio-system~istio-system.svc.cluster.local`,
      cluster: 'istio-ingressgateway.istio-system',
    },
    logName: 'envoy.access_loggers.http_grpc',
  };
}

/** `count` distinct pre-encoded messages of `perMessage` entries each (no identifier). */
export function encodedMessages(count, perMessage) {
  return Array.from({ length: count }, () =>
    encodeStreamAccessLogsMessage({
      httpLogs: { logEntry: Array.from({ length: perMessage }, () => entry()) },
    }),
  );
}
export const firstMessage = (i, perMessage) =>
  encodeStreamAccessLogsMessage({
    identifier: identifier(i),
    httpLogs: { logEntry: Array.from({ length: perMessage }, () => entry()) },
  });

// ---- stamped messages: unique request ids and current start times at the cost of a few byte writes ----------
const ID_MARK = 'QQQQQQQQQQQQQQQQ';
const MARK_SECONDS = 1_999_999_999;
const varint = (v) => {
  const out = [];
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
};
/** Timestamp.seconds (field 1, varint) of MARK_SECONDS: 5 bytes after the tag, as any date until 2106. */
const SECONDS_MARK = Buffer.concat([Buffer.from([0x08]), varint(MARK_SECONDS)]);

function offsetsOf(buf, needle) {
  const at = [];
  for (let i = buf.indexOf(needle); i >= 0; i = buf.indexOf(needle, i + needle.length)) at.push(i);
  return at;
}

/**
 * `count` distinct pre-encoded messages of `perMessage` entries over `routes` routes, each entry with a request id
 * and a start second to be filled in at send time by `stamp` (so a pool of a few hundred messages serves millions
 * of entries, every one unique and current). With `shape` (from `cardinality()`), paths and client addresses come
 * from its catalogues; without, the route catalogue's own path shapes and random addresses.
 */
export function stampedPool(count, perMessage, routes = 48, shape = undefined) {
  const catalogue = shape?.routes ?? routeCatalogue(routes);
  return Array.from({ length: count }, () => {
    const bytes = encodeStreamAccessLogsMessage({
      httpLogs: {
        logEntry: Array.from({ length: perMessage }, () =>
          entry(Date.now(), {
            routes: catalogue,
            clients: shape?.clients,
            requestId: `gs-${ID_MARK}`,
            startSeconds: MARK_SECONDS,
          }),
        ),
      },
    });
    const ids = offsetsOf(bytes, Buffer.from(ID_MARK));
    const times = offsetsOf(bytes, SECONDS_MARK).map((i) => i + 1);
    if (ids.length !== perMessage || times.length !== perMessage)
      throw new Error('stampedPool: a marker was not found exactly once per entry');
    return { bytes, ids, times };
  });
}

/**
 * A copy of a pooled message with request ids `<prefix><counter>` (16 hex digits in all) from `firstId` on and every
 * start_time in second `nowSeconds` (sub-second parts as pooled).
 */
export function stamp(pooled, prefix, firstId, nowSeconds) {
  const out = Buffer.from(pooled.bytes);
  const secs = varint(nowSeconds);
  for (const t of pooled.times) secs.copy(out, t);
  pooled.ids.forEach((at, i) => {
    const hex = (firstId + i).toString(16).padStart(16 - prefix.length, '0');
    out.write(prefix + hex, at, 'latin1');
  });
  return out;
}

/** The identifier message that opens a stream, with no entries. */
export const identifierMessage = (i) => encodeStreamAccessLogsMessage({ identifier: identifier(i) });
