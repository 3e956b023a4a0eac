/**
 * Cross-checks encodeStreamAccessLogsMessage against Google's own encoder: `protoc --encode`
 * on the text-format equivalent of a message must produce bytes that decode to the same rows.
 * Skipped (with a message) when protoc is not installed (Debian: apt-get install protobuf-compiler).
 */
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { FIXTURE_PATH_TEMPLATER } from '../../../test/fixtures/als.js';
import { AccessLogDecoder } from './decoder.js';
import {
  ALS_PROTO_FILE,
  STREAM_ACCESS_LOGS_MESSAGE,
  encodeStreamAccessLogsMessage,
  envoyProtoIncludeDirs,
} from './proto.js';

const protoc = spawnSync('protoc', ['--version']);
const haveProtoc = protoc.status === 0;
if (!haveProtoc)
  console.warn(
    'protoc not found: skipping the protoc --encode cross-check (apt-get install protobuf-compiler)',
  );

const TEXT = `
identifier { node { id: "router~10.0.0.7~gw" cluster: "gw.istio-system" } log_name: "envoy.access_loggers.http_grpc" }
http_logs {
  log_entry {
    common_properties {
      downstream_remote_address { socket_address { address: "2001:db8::1" port_value: 61000 } }
      downstream_local_address { socket_address { address: "10.0.0.7" port_value: 8443 } }
      tls_properties { tls_version: TLSv1_3 tls_cipher_suite { value: 4865 } tls_sni_hostname: "shop.example.com" }
      start_time { seconds: 1714564800 nanos: 123456789 }
      time_to_last_rx_byte { nanos: 52000 }
      duration { seconds: 1 nanos: 500000 }
      upstream_remote_address { socket_address { address: "10.244.1.23" port_value: 8080 } }
      upstream_cluster: "outbound|80||frontendv2.default.svc.cluster.local"
      response_flags { upstream_retry_limit_exceeded: true unauthorized_details { reason: EXTERNAL_SERVICE } }
      route_name: "frontend-canary"
      upstream_request_attempt_count: 2
    }
    protocol_version: HTTP2
    request { request_method: POST scheme: "https" authority: "shop.example.com" path: "/caf\\303\\251?x=1" request_headers_bytes: 734 request_body_bytes: 12 }
    response {
      response_code { value: 503 }
      response_body_bytes: 18446744073709551615
      response_trailers { key: "grpc-status" value: "14" }
      response_code_details: "via_upstream"
    }
  }
}
`;

const OBJECT = {
  identifier: {
    node: { id: 'router~10.0.0.7~gw', cluster: 'gw.istio-system' },
    log_name: 'envoy.access_loggers.http_grpc',
  },
  http_logs: {
    log_entry: [
      {
        common_properties: {
          downstream_remote_address: { socket_address: { address: '2001:db8::1', port_value: 61000 } },
          downstream_local_address: { socket_address: { address: '10.0.0.7', port_value: 8443 } },
          tls_properties: {
            tls_version: 'TLSv1_3',
            tls_cipher_suite: { value: 4865 },
            tls_sni_hostname: 'shop.example.com',
          },
          start_time: { seconds: 1714564800, nanos: 123456789 },
          time_to_last_rx_byte: { nanos: 52000 },
          duration: { seconds: 1, nanos: 500000 },
          upstream_remote_address: { socket_address: { address: '10.244.1.23', port_value: 8080 } },
          upstream_cluster: 'outbound|80||frontendv2.default.svc.cluster.local',
          response_flags: {
            upstream_retry_limit_exceeded: true,
            unauthorized_details: { reason: 'EXTERNAL_SERVICE' },
          },
          route_name: 'frontend-canary',
          upstream_request_attempt_count: 2,
        },
        protocol_version: 'HTTP2',
        request: {
          request_method: 'POST',
          scheme: 'https',
          authority: 'shop.example.com',
          path: '/café?x=1',
          request_headers_bytes: 734,
          request_body_bytes: 12,
        },
        response: {
          response_code: { value: 503 },
          response_body_bytes: '18446744073709551615',
          response_trailers: { 'grpc-status': '14' },
          response_code_details: 'via_upstream',
        },
      },
    ],
  },
};

describe.skipIf(!haveProtoc)('protoc --encode cross-check', () => {
  it('our encoder and protoc produce identical bytes and identical rows', () => {
    const args = [
      ...envoyProtoIncludeDirs().map((d) => `-I${d}`),
      `--encode=${STREAM_ACCESS_LOGS_MESSAGE}`,
      ALS_PROTO_FILE,
    ];
    const fromProtoc = execFileSync('protoc', args, { input: TEXT });
    const ours = encodeStreamAccessLogsMessage(OBJECT);
    expect(ours.equals(fromProtoc)).toBe(true);

    const rows = (bytes: Buffer) => {
      const d = new AccessLogDecoder({ pathTemplater: FIXTURE_PATH_TEMPLATER });
      d.decode(bytes, {});
      return d.takeHttp();
    };
    const a = rows(fromProtoc);
    expect(a.rows).toBe(1);
    expect(a.data.equals(rows(ours).data)).toBe(true);
  });
});
