// Micro benchmark: decode + Native block encode of Istio-shaped ALS entries with @gatescope/als,
// next to protobufjs decoding the same bytes. Run after building: `node packages/als/bench.mjs`.
import { AccessLogDecoder, accessLogProtoRoot, encodeStreamAccessLogsMessage } from './dist/index.js';

let PathTemplater;
try {
  ({ PathTemplater } = await import('@gatescope/path-template'));
} catch {
  PathTemplater = undefined;
}

const ENTRIES_PER_MESSAGE = Number(process.env.ENTRIES ?? 100);
const SECONDS = Number(process.env.SECONDS ?? 2);

function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const dur = (ms) => ({ seconds: Math.floor(ms / 1000), nanos: Math.round((ms % 1000) * 1e6) });
const sock = (address, port_value) => ({ socket_address: { address, port_value } });

function message(seed) {
  const r = rng(seed);
  const pick = (xs) => xs[Math.floor(r() * xs.length)];
  const routes = [
    [
      'frontend-canary',
      [
        'outbound|80||frontend.default.svc.cluster.local',
        'outbound|80||frontendv2.default.svc.cluster.local',
      ],
      ['/products/', '/cart/', '/static/app.'],
    ],
    ['api', ['outbound|8080||api.default.svc.cluster.local'], ['/v1/orders/', '/v1/users/']],
    ['greeter-grpc', ['outbound|50051||greeter.default.svc.cluster.local'], ['/helloworld.Greeter/SayHello']],
  ];
  const log_entry = [];
  for (let i = 0; i < ENTRIES_PER_MESSAGE; i++) {
    const [route, clusters, paths] = pick(routes);
    const total = 1 + r() * 100;
    const ms = 1714564800000 + i * 3;
    log_entry.push({
      common_properties: {
        downstream_remote_address: sock(
          `198.51.${Math.floor(r() * 255)}.${Math.floor(r() * 255)}`,
          1024 + Math.floor(r() * 60000),
        ),
        downstream_local_address: sock('10.0.0.7', 8443),
        tls_properties: {
          tls_version: 'TLSv1_3',
          tls_cipher_suite: { value: 0x1301 },
          tls_sni_hostname: 'shop.example.com',
        },
        start_time: { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 + 456789 },
        time_to_last_rx_byte: dur(0.05),
        time_to_first_upstream_tx_byte: dur(0.4),
        time_to_last_upstream_tx_byte: dur(0.41),
        time_to_first_upstream_rx_byte: dur(total * 0.8),
        time_to_last_upstream_rx_byte: dur(total * 0.95),
        time_to_first_downstream_tx_byte: dur(total * 0.81),
        time_to_last_downstream_tx_byte: dur(total),
        duration: dur(total),
        upstream_remote_address: sock(`10.244.${Math.floor(r() * 8)}.${Math.floor(r() * 250)}`, 8080),
        upstream_local_address: sock('10.0.0.7', 30000 + Math.floor(r() * 30000)),
        upstream_cluster: pick(clusters),
        route_name: route,
        upstream_request_attempt_count: 1,
        stream_id: `9f1c7e2a-3b4d-4e5f-8a9b-${String(i).padStart(12, '0')}`,
        access_log_type: 'DownstreamEnd',
      },
      protocol_version: 'HTTP2',
      request: {
        request_method: 'GET',
        scheme: 'https',
        authority: 'shop.example.com',
        path: pick(paths) + Math.floor(r() * 100000) + '?ref=home',
        user_agent:
          'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
        referer: 'https://shop.example.com/',
        forwarded_for: '198.51.100.23',
        request_id: `9f1c7e2a-3b4d-4e5f-8a9b-${String(i).padStart(12, '0')}`,
        request_headers_bytes: 734,
        request_body_bytes: 0,
      },
      response: {
        response_code: { value: 200 },
        response_headers_bytes: 212,
        response_body_bytes: Math.floor(r() * 50000),
        response_trailers: route === 'greeter-grpc' ? { 'grpc-status': '0' } : undefined,
        response_code_details: 'via_upstream',
      },
    });
  }
  return encodeStreamAccessLogsMessage({ http_logs: { log_entry } });
}

const messages = Array.from({ length: 16 }, (_, i) => message(i + 1));
const bytesPerEntry = messages.reduce((a, m) => a + m.length, 0) / (messages.length * ENTRIES_PER_MESSAGE);

function run(name, fn) {
  // warm up
  const warmEnd = performance.now() + 500;
  let i = 0;
  while (performance.now() < warmEnd) fn(messages[i++ % messages.length]);
  let entries = 0;
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  let now = t0;
  while (now < end) {
    for (let k = 0; k < 16; k++) {
      fn(messages[i++ % messages.length]);
      entries += ENTRIES_PER_MESSAGE;
    }
    now = performance.now();
  }
  const usPerEntry = ((now - t0) * 1000) / entries;
  return { name, usPerEntry, entriesPerSec: 1e6 / usPerEntry };
}

const stubTemplater = { template: (_route, path) => path };
const results = [];
for (const [label, templater] of [
  ['@gatescope/als decode -> Native (identity templater)', stubTemplater],
  ...(PathTemplater ? [['@gatescope/als decode -> Native (PathTemplater)', new PathTemplater({})]] : []),
]) {
  const decoder = new AccessLogDecoder({ pathTemplater: templater });
  const state = {
    identity: {
      nodeId: 'router~10.0.0.7~istio-ingressgateway',
      nodeCluster: 'istio-ingressgateway.istio-system',
      logName: 'envoy.access_loggers.http_grpc',
    },
  };
  results.push(
    run(label, (m) => {
      decoder.decode(m, state);
      if (decoder.pendingBytes > 8 << 20) decoder.takeHttp();
    }),
  );
  if (templater === stubTemplater) {
    // What the collector's decoder worker does: one Native block per message.
    results.push(
      run('@gatescope/als decode + takeHttp() per message', (m) => {
        decoder.decode(m, state);
        decoder.takeHttp();
      }),
    );
  }
}
const Msg = accessLogProtoRoot().lookupType('envoy.service.accesslog.v3.StreamAccessLogsMessage');
results.push(run('protobufjs decode only (same bytes)', (m) => Msg.decode(m)));
results.push(
  run('protobufjs decode + toObject + JSON.stringify', (m) =>
    JSON.stringify(Msg.toObject(Msg.decode(m), { longs: String, enums: String })),
  ),
);

console.log(
  `node ${process.version}, ${ENTRIES_PER_MESSAGE} entries/message, ${bytesPerEntry.toFixed(0)} protobuf bytes/entry`,
);
for (const r of results) {
  console.log(
    `${r.name.padEnd(58)} ${r.usPerEntry.toFixed(2).padStart(7)} µs/entry ${Math.round(r.entriesPerSec).toLocaleString('en-US').padStart(12)} entries/s`,
  );
}
