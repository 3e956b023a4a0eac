import { describe, expect, it } from 'vitest';
import {
  ALL_FIXTURES,
  FIXTURE_PATH_TEMPLATER,
  ISTIO_HTTP_STREAM,
  NO_IDENTIFIER_MESSAGE,
  TCP_STREAM,
  emptyEntriesMessage,
  makeTrafficMessage,
  seededRandom,
} from '../../../test/fixtures/als.js';
import { HTTP_REQUEST_COLUMNS, TCP_CONNECTION_COLUMNS } from './columns.js';
import {
  AccessLogDecoder,
  DecodeError,
  DEFAULT_DECODE_LIMITS,
  countEntries,
  RESPONSE_FLAG_CODES,
  tlsCipherName,
  type DecodeLimits,
  type StreamState,
} from './decoder.js';
import { accessLogProtoRoot, encodeStreamAccessLogsMessage } from './proto.js';
import { concatNativeBlocks } from './native-concat.js';
import { nativeRowDays, selectNativeRows } from './native-select.js';
import { readNative, readNativeBlocks, type Row } from './native-reader.js';

// ---- reference mapping, applied to protobufjs' decode --------------------------------------------------
const root = accessLogProtoRoot();
const MessageType = root.lookupType('envoy.service.accesslog.v3.StreamAccessLogsMessage');
const FlagsType = root.lookupType('envoy.data.accesslog.v3.ResponseFlags');
const METHOD_NAMES = ['', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];
const PROTOCOL_NAMES = ['', 'HTTP/1.0', 'HTTP/1.1', 'HTTP/2', 'HTTP/3'];
const TLS_NAMES = ['', 'TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/* eslint-disable @typescript-eslint/no-explicit-any */
type Obj = any;

const num = (v: unknown): number => (v == null ? 0 : Number(v));
const ms = (d: Obj): number | null => (d == null ? null : num(d.seconds) * 1000 + num(d.nanos) / 1e6);
function fmtTime(t: Obj): string {
  const us = t == null ? 0 : num(t.seconds) * 1e6 + Math.trunc(num(t.nanos) / 1000);
  const sec = Math.floor(us / 1e6);
  const iso = new Date(sec * 1000).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${String(us - sec * 1e6).padStart(6, '0')}`;
}
function ipPort(a: Obj): string {
  if (!a) return '';
  if (a.socketAddress) {
    const ip: string = a.socketAddress.address ?? '';
    return `${ip.includes(':') ? `[${ip}]` : ip}:${num(a.socketAddress.portValue)}`;
  }
  if (a.pipe) return a.pipe.path ?? '';
  if (a.envoyInternalAddress)
    return `envoy://${a.envoyInternalAddress.serverListenerName ?? ''}/${a.envoyInternalAddress.endpointId ?? ''}`;
  return '';
}
function flagsOf(f: Obj): string[] {
  if (!f) return [];
  const out: string[] = [];
  for (const field of FlagsType.fieldsArray.slice().sort((a, b) => a.id - b.id)) {
    const v = f[field.name];
    if (field.id === 13 ? v != null : v === true) out.push(RESPONSE_FLAG_CODES[field.id - 1]);
  }
  return out;
}
function common(c: Obj, identity: { nodeId: string; nodeCluster: string; logName: string }): Row {
  c = c ?? {};
  const duration = ms(c.duration) ?? ms(c.timeToLastDownstreamTxByte) ?? ms(c.timeToLastRxByte) ?? 0;
  const dr = c.downstreamRemoteAddress?.socketAddress;
  return {
    start_time: fmtTime(c.startTime),
    duration_ms: duration,
    response_flags: flagsOf(c.responseFlags),
    route_name: c.routeName ?? '',
    upstream_cluster: c.upstreamCluster ?? '',
    upstream_host: ipPort(c.upstreamRemoteAddress),
    upstream_local_address: ipPort(c.upstreamLocalAddress),
    upstream_transport_failure_reason: c.upstreamTransportFailureReason ?? '',
    upstream_request_attempt_count: Math.min(num(c.upstreamRequestAttemptCount), 65535),
    downstream_remote_address: dr ? (dr.address ?? '') : '',
    downstream_remote_port: dr ? Math.min(num(dr.portValue), 65535) : 0,
    downstream_local_address: ipPort(c.downstreamLocalAddress),
    tls_version: TLS_NAMES[num(c.tlsProperties?.tlsVersion)] ?? '',
    tls_sni: c.tlsProperties?.tlsSniHostname ?? '',
    tls_cipher_suite: c.tlsProperties?.tlsCipherSuite
      ? tlsCipherName(num(c.tlsProperties.tlsCipherSuite.value))
      : '',
    time_to_last_rx_byte_ms: ms(c.timeToLastRxByte),
    time_to_first_upstream_tx_byte_ms: ms(c.timeToFirstUpstreamTxByte),
    time_to_last_upstream_tx_byte_ms: ms(c.timeToLastUpstreamTxByte),
    time_to_first_upstream_rx_byte_ms: ms(c.timeToFirstUpstreamRxByte),
    time_to_last_upstream_rx_byte_ms: ms(c.timeToLastUpstreamRxByte),
    time_to_first_downstream_tx_byte_ms: ms(c.timeToFirstDownstreamTxByte),
    time_to_last_downstream_tx_byte_ms: ms(c.timeToLastDownstreamTxByte),
    connection_termination_details: c.connectionTerminationDetails ?? '',
    node_id: identity.nodeId,
    node_cluster: identity.nodeCluster,
    log_name: identity.logName,
  };
}
function pickColumns(row: Row, columns: readonly { name: string }[]): Row {
  const out: Row = {};
  for (const c of columns) {
    if (!(c.name in row)) throw new Error(`reference mapping lacks ${c.name}`);
    out[c.name] = row[c.name];
  }
  return out;
}
function referenceRows(bytes: Buffer, state: StreamState): { http: Row[]; tcp: Row[] } {
  const m: Obj = MessageType.toObject(MessageType.decode(bytes), { longs: String, enums: Number });
  if (m.identifier) {
    state.identity = {
      nodeId: m.identifier.node?.id ?? '',
      nodeCluster: m.identifier.node?.cluster ?? '',
      logName: m.identifier.logName ?? '',
    };
  }
  const identity = state.identity ?? { nodeId: 'unknown', nodeCluster: '', logName: '' };
  const http: Row[] = [];
  const tcp: Row[] = [];
  for (const e of m.httpLogs?.logEntry ?? []) {
    const req = e.request ?? {};
    const resp = e.response ?? {};
    const route = e.commonProperties?.routeName ?? '';
    const path = req.path ?? '';
    const row = {
      ...common(e.commonProperties, identity),
      response_code: Math.min(num(resp.responseCode?.value), 65535),
      response_code_details: resp.responseCodeDetails ?? '',
      authority: req.authority ?? '',
      method: METHOD_NAMES[num(req.requestMethod)] ?? '',
      scheme: req.scheme ?? '',
      path,
      path_template: FIXTURE_PATH_TEMPLATER.template(route, path),
      protocol: PROTOCOL_NAMES[num(e.protocolVersion)] ?? '',
      user_agent: req.userAgent ?? '',
      referer: req.referer ?? '',
      forwarded_for: req.forwardedFor ?? '',
      request_id: req.requestId ?? '',
      grpc_status: resp.responseTrailers?.['grpc-status'] ?? resp.responseHeaders?.['grpc-status'] ?? '',
      bytes_received: num(req.requestBodyBytes),
      bytes_sent: num(resp.responseBodyBytes),
      request_headers_bytes: num(req.requestHeadersBytes),
      response_headers_bytes: num(resp.responseHeadersBytes),
    };
    http.push(pickColumns(row, HTTP_REQUEST_COLUMNS));
  }
  for (const e of m.tcpLogs?.logEntry ?? []) {
    const row = {
      ...common(e.commonProperties, identity),
      received_bytes: num(e.connectionProperties?.receivedBytes),
      sent_bytes: num(e.connectionProperties?.sentBytes),
    };
    tcp.push(pickColumns(row, TCP_CONNECTION_COLUMNS));
  }
  return { http, tcp };
}

function decodeRows(
  decoder: AccessLogDecoder,
  bytes: Uint8Array,
  state: StreamState,
): { http: Row[]; tcp: Row[] } {
  const r = decoder.decode(bytes, state);
  const h = decoder.takeHttp();
  const t = decoder.takeTcp();
  expect(h.rows).toBe(r.http);
  expect(t.rows).toBe(r.tcp);
  return {
    http: readNative(h.data),
    tcp: readNative(t.data),
  };
}

// The mapping tests use identifiers of up to 17,000 bytes; the limits have tests of their own.
const newDecoder = () =>
  new AccessLogDecoder({
    pathTemplater: FIXTURE_PATH_TEMPLATER,
    initialBufferBytes: 64,
    limits: { maxIdentifierBytes: 32_768 },
  });

// ---- fixtures --------------------------------------------------------------------------------------------
describe('fixtures', () => {
  for (const stream of [ISTIO_HTTP_STREAM, TCP_STREAM, [NO_IDENTIFIER_MESSAGE]]) {
    it(`decodes the ${stream[0].name} stream to the expected rows, same as the protobufjs reference`, () => {
      const decoder = newDecoder();
      const state: StreamState = {};
      const refState: StreamState = {};
      for (const f of stream) {
        const got = decodeRows(decoder, f.bytes, state);
        expect(got, f.name).toEqual(f.expected);
        expect(referenceRows(f.bytes, refState), f.name).toEqual(f.expected);
      }
    });
  }

  it('the first Istio message is tens of KB (large node) and carries the identity', () => {
    expect(ISTIO_HTTP_STREAM[0].bytes.length).toBeGreaterThan(20_000);
    const state: StreamState = {};
    newDecoder().decode(ISTIO_HTTP_STREAM[0].bytes, state);
    expect(state.identity).toEqual({
      nodeId:
        'router~10.0.0.7~istio-ingressgateway-6b7c9d8f5-x2x4z.istio-system~istio-system.svc.cluster.local',
      nodeCluster: 'istio-ingressgateway.istio-system',
      logName: 'envoy.access_loggers.http_grpc',
    });
  });

  it('splits the canary 50/50 between frontend and frontendv2', () => {
    const rows = ISTIO_HTTP_STREAM[0].expected.http;
    const v2 = rows.filter(
      (r) => r.upstream_cluster === 'outbound|80||frontendv2.default.svc.cluster.local',
    ).length;
    const v1 = rows.filter(
      (r) => r.upstream_cluster === 'outbound|80||frontend.default.svc.cluster.local',
    ).length;
    expect([v1, v2]).toEqual([2, 2]);
  });

  it('accepts Uint8Array views that are not Buffers', () => {
    const f = ALL_FIXTURES[1];
    const copy = new Uint8Array(f.bytes.length + 10);
    copy.set(f.bytes, 5);
    const view = copy.subarray(5, 5 + f.bytes.length);
    const got = decodeRows(newDecoder(), view, {
      identity: {
        nodeId: ISTIO_HTTP_STREAM[0].expected.http[0].node_id as string,
        nodeCluster: 'istio-ingressgateway.istio-system',
        logName: 'envoy.access_loggers.http_grpc',
      },
    });
    expect(got).toEqual(f.expected);
  });
});

// ---- stream state ---------------------------------------------------------------------------------------
describe('stream identity', () => {
  it('keeps the identifier of the first message for later messages, per stream', () => {
    const decoder = newDecoder();
    const a: StreamState = {};
    const b: StreamState = {};
    decoder.decode(makeTrafficMessage({ entries: 2, identifier: true, nodeExtensions: 3 }).bytes, a);
    decoder.decode(makeTrafficMessage({ entries: 3, seed: 2 }).bytes, a);
    decoder.decode(makeTrafficMessage({ entries: 1, seed: 3 }).bytes, b);
    const rows = readNative(decoder.takeHttp().data);
    expect(rows.map((r) => r.node_id)).toEqual([
      ...Array(5).fill(
        'router~10.0.0.7~istio-ingressgateway-6b7c9d8f5-x2x4z.istio-system~istio-system.svc.cluster.local',
      ),
      'unknown',
    ]);
    expect(b.identity).toBeUndefined();
  });

  it('a new identifier on the stream replaces the old one', () => {
    const decoder = newDecoder();
    const s: StreamState = {};
    const msg = (id: string) =>
      encodeStreamAccessLogsMessage({
        identifier: { node: { id, cluster: 'c' }, log_name: 'l' },
        http_logs: { log_entry: [{}] },
      });
    decoder.decode(msg('one'), s);
    decoder.decode(msg('two'), s);
    expect(readNative(decoder.takeHttp().data).map((r) => r.node_id)).toEqual(['one', 'two']);
    expect(s.identity?.nodeId).toBe('two');
  });

  it('writes the identity on every row, inside and outside the window, and nothing of a failed message', () => {
    const nowS = 1_800_000_000;
    const d = new AccessLogDecoder({
      pathTemplater: FIXTURE_PATH_TEMPLATER,
      limits: { maxEntryAgeS: 86_400, maxEntryFutureS: 86_400 },
      now: () => nowS * 1000,
    });
    const entry = (seconds: number, requestId: string) => ({
      common_properties: { start_time: { seconds } },
      request: { request_id: requestId },
    });
    const message = (id: string, seconds: number[], identifier = true) =>
      encodeStreamAccessLogsMessage({
        ...(identifier && { identifier: { node: { id, cluster: `${id}-cluster` }, log_name: `${id}-log` } }),
        http_logs: { log_entry: seconds.map((t, i) => entry(t, `${id}-${i}`)) },
      });
    const a: StreamState = {};
    const b: StreamState = {};
    expect(d.decode(message('a', [nowS, nowS - 2 * 86_400, nowS - 1]), a)).toMatchObject({ http: 2 });
    expect(() => d.decode(Buffer.concat([message('b', [nowS, 0]), Buffer.from([0x0a])]), b)).toThrow();
    d.decode(message('b', [0, nowS]), b);
    d.decode(message('ignored', [nowS], false), a);
    const who = (r: Record<string, unknown>) =>
      `${r.request_id} ${r.node_id} ${r.node_cluster} ${r.log_name}`;
    expect(readNative(d.takeHttp().data).map(who)).toEqual([
      'a-0 a a-cluster a-log',
      'a-2 a a-cluster a-log',
      'b-1 b b-cluster b-log',
      'ignored-0 a a-cluster a-log',
    ]);
    expect(readNative(d.takeOutside().http.data).map(who)).toEqual([
      'a-1 a a-cluster a-log',
      'b-0 b b-cluster b-log',
    ]);
  });

  it('keeps the node id bytes exactly even when they are not valid UTF-8', () => {
    const good = encodeStreamAccessLogsMessage({
      identifier: { node: { id: 'AB', cluster: 'c' }, log_name: 'l' },
      http_logs: { log_entry: [{}] },
    });
    const bad = Buffer.from(good);
    const at = bad.indexOf(Buffer.from('AB'));
    bad[at] = 0xff;
    const decoder = newDecoder();
    decoder.decode(bad, {});
    const data = decoder.takeHttp().data;
    expect(data.includes(Buffer.from([0x02, 0xff, 0x42]))).toBe(true);
  });
});

// ---- differential testing against protobufjs on random entries ------------------------------------------
function randomMessages(seed: number, count: number): Buffer[] {
  const rnd = seededRandom(seed);
  const maybe = <T>(p: number, f: () => T): T | undefined => (rnd() < p ? f() : undefined);
  const int = (n: number) => Math.floor(rnd() * n);
  const STRINGS = [
    '',
    'a',
    '/x/y',
    'ünï©ødé 日本',
    'Bad!!!',
    'x'.repeat(130),
    'y'.repeat(17000),
    'outbound|80||frontend.default.svc.cluster.local',
  ];
  const s = () => (rnd() < 0.7 ? STRINGS[int(STRINGS.length)] : `s${int(1e6)}`);
  const u64 = () => (rnd() < 0.05 ? '18446744073709551615' : rnd() < 0.5 ? int(1000) : int(2 ** 40));
  const d = () => ({ seconds: maybe(0.7, () => int(100)), nanos: maybe(0.9, () => int(1e9)) });
  const addr = () => {
    const k = rnd();
    if (k < 0.6)
      return {
        socket_address: {
          address: maybe(0.95, () =>
            rnd() < 0.3 ? `2001:db8::${int(999)}` : `10.${int(255)}.${int(255)}.${int(255)}`,
          ),
          port_value: maybe(0.9, () => (rnd() < 0.05 ? 70000 : int(65536))),
        },
      };
    if (k < 0.75) return { pipe: { path: s() } };
    if (k < 0.85)
      return { envoy_internal_address: { server_listener_name: s(), endpoint_id: maybe(0.5, s) } };
    return {};
  };
  const flags = () => {
    const f: Record<string, unknown> = {};
    for (const field of FlagsType.fieldsArray) {
      if (rnd() < 0.1) f[field.name] = field.id === 13 ? { reason: int(2) } : rnd() < 0.8;
    }
    return f;
  };
  const map = () => {
    const m: Record<string, string> = {};
    if (rnd() < 0.5) m['grpc-status'] = String(int(17));
    if (rnd() < 0.5) m['content-type'] = 'application/grpc';
    if (rnd() < 0.2) m['grpc-statuss'] = '99';
    return m;
  };
  const commonProps = () => ({
    downstream_remote_address: maybe(0.8, addr),
    downstream_local_address: maybe(0.8, addr),
    downstream_direct_remote_address: maybe(0.3, addr),
    upstream_remote_address: maybe(0.7, addr),
    upstream_local_address: maybe(0.5, addr),
    tls_properties: maybe(0.4, () => ({
      tls_version: maybe(0.9, () => int(5)),
      tls_cipher_suite: maybe(0.8, () => ({
        value: maybe(0.9, () => [0x1301, 0xc02f, 0xabcd, 0x0a][int(4)]),
      })),
      tls_sni_hostname: maybe(0.7, s),
      ja3_fingerprint: maybe(0.3, s),
      peer_certificate_properties: maybe(0.3, () => ({ subject: s(), subject_alt_name: [{ uri: s() }] })),
    })),
    start_time: maybe(0.95, () => ({ seconds: 1_600_000_000 + int(3e8), nanos: maybe(0.9, () => int(1e9)) })),
    time_to_last_rx_byte: maybe(0.5, d),
    time_to_first_upstream_tx_byte: maybe(0.5, d),
    time_to_last_upstream_tx_byte: maybe(0.5, d),
    time_to_first_upstream_rx_byte: maybe(0.5, d),
    time_to_last_upstream_rx_byte: maybe(0.5, d),
    time_to_first_downstream_tx_byte: maybe(0.5, d),
    time_to_last_downstream_tx_byte: maybe(0.5, d),
    duration: maybe(0.5, d),
    upstream_cluster: maybe(0.7, s),
    response_flags: maybe(0.4, flags),
    metadata: maybe(0.2, () => ({
      filter_metadata: { 'istio.mixer': { fields: { a: { string_value: s() } } } },
    })),
    upstream_transport_failure_reason: maybe(0.2, s),
    route_name: maybe(0.8, s),
    custom_tags: maybe(0.2, () => ({ tag: s() })),
    upstream_request_attempt_count: maybe(0.6, () => (rnd() < 0.05 ? 100000 : int(5))),
    connection_termination_details: maybe(0.2, s),
    stream_id: maybe(0.3, s),
    downstream_wire_bytes_sent: maybe(0.3, u64),
    access_log_type: maybe(0.3, () => int(14)),
  });
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const n = 1 + int(20);
    const msg: Record<string, unknown> = {};
    if (rnd() < 0.3)
      msg.identifier = {
        node: { id: maybe(0.9, s), cluster: maybe(0.9, s), user_agent_name: 'envoy' },
        log_name: maybe(0.9, s),
      };
    if (rnd() < 0.75) {
      const entries = [];
      for (let j = 0; j < n; j++) {
        entries.push({
          common_properties: maybe(0.95, commonProps),
          protocol_version: maybe(0.8, () => int(5)),
          request: maybe(0.9, () => ({
            request_method: maybe(0.9, () => (rnd() < 0.03 ? 42 : int(10))),
            scheme: maybe(0.8, s),
            authority: maybe(0.8, s),
            port: maybe(0.2, () => ({ value: int(65536) })),
            path: maybe(0.9, s),
            user_agent: maybe(0.7, s),
            referer: maybe(0.3, s),
            forwarded_for: maybe(0.5, s),
            request_id: maybe(0.8, s),
            original_path: maybe(0.1, s),
            request_headers_bytes: maybe(0.8, u64),
            request_body_bytes: maybe(0.8, u64),
            request_headers: maybe(0.3, map),
            upstream_header_bytes_sent: maybe(0.3, u64),
          })),
          response: maybe(0.85, () => ({
            response_code: maybe(0.85, () => ({
              value: maybe(0.95, () => (rnd() < 0.02 ? 70000 : int(600))),
            })),
            response_headers_bytes: maybe(0.8, u64),
            response_body_bytes: maybe(0.8, u64),
            response_headers: maybe(0.4, map),
            response_trailers: maybe(0.3, map),
            response_code_details: maybe(0.7, s),
            downstream_header_bytes_sent: maybe(0.3, u64),
          })),
        });
      }
      msg.http_logs = { log_entry: entries };
    } else {
      const entries = [];
      for (let j = 0; j < n; j++) {
        entries.push({
          common_properties: maybe(0.95, commonProps),
          connection_properties: maybe(0.8, () => ({
            received_bytes: maybe(0.9, u64),
            sent_bytes: maybe(0.9, u64),
          })),
        });
      }
      msg.tcp_logs = { log_entry: entries };
    }
    out.push(encodeStreamAccessLogsMessage(msg));
  }
  return out;
}

describe('differential against protobufjs', () => {
  it('matches the reference mapping on thousands of random entries', () => {
    const messages = randomMessages(42, 400);
    const decoder = newDecoder();
    const state: StreamState = {};
    const refState: StreamState = {};
    let entries = 0;
    for (const bytes of messages) {
      const got = decodeRows(decoder, bytes, state);
      const want = referenceRows(bytes, refState);
      expect(got).toEqual(want);
      entries += got.http.length + got.tcp.length;
    }
    expect(entries).toBeGreaterThan(3000);
    expect(state.identity).toEqual(refState.identity);
  });

  it('accumulates many messages into one buffer and takes them as one batch', () => {
    const messages = randomMessages(7, 50);
    const decoder = newDecoder();
    const state: StreamState = {};
    const refState: StreamState = {};
    const want = { http: [] as Row[], tcp: [] as Row[] };
    for (const bytes of messages) {
      decoder.decode(bytes, state);
      const r = referenceRows(bytes, refState);
      want.http.push(...r.http);
      want.tcp.push(...r.tcp);
    }
    expect(decoder.pendingHttpRows).toBe(want.http.length);
    expect(decoder.pendingTcpRows).toBe(want.tcp.length);
    const h = decoder.takeHttp();
    const t = decoder.takeTcp();
    expect(decoder.pendingBytes).toBe(0);
    expect(readNative(h.data)).toEqual(want.http);
    expect(readNative(t.data)).toEqual(want.tcp);
  });

  it('writes full 64-bit byte counters exactly', () => {
    const bytes = encodeStreamAccessLogsMessage({
      tcp_logs: {
        log_entry: [
          {
            connection_properties: { received_bytes: '18446744073709551615', sent_bytes: '9007199254740993' },
          },
        ],
      },
    });
    const decoder = newDecoder();
    decoder.decode(bytes, {});
    const data = decoder.takeTcp().data;
    // A one-row UInt64 column is its header (name, type) followed by the 8 bytes of the value.
    const valueOf = (name: string) => {
      const header = Buffer.concat([
        Buffer.from([name.length]),
        Buffer.from(name),
        Buffer.from('\x06UInt64'),
      ]);
      return data.readBigUInt64LE(data.indexOf(header) + header.length);
    };
    expect(valueOf('received_bytes')).toBe(18446744073709551615n);
    expect(valueOf('sent_bytes')).toBe(9007199254740993n);
  });
});

// ---- Native blocks --------------------------------------------------------------------------------------
/** Row count and (name, type) of every column of a single Native block. */
function nativeHeader(data: Buffer): { rows: number; columns: [string, string][] } {
  const blocks = readNativeBlocks(data);
  expect(blocks).toHaveLength(1);
  return { rows: blocks[0].rows, columns: blocks[0].columns.map((c) => [c.name, c.type]) };
}

describe('Native blocks', () => {
  it('declare every insertable column in order, LowCardinality as its plain type', () => {
    const decoder = newDecoder();
    decoder.decode(ALL_FIXTURES[0].bytes, {});
    decoder.decode(TCP_STREAM[0].bytes, {});
    const http = nativeHeader(decoder.takeHttp().data);
    const tcp = nativeHeader(decoder.takeTcp().data);
    expect(http.rows).toBe(ALL_FIXTURES[0].expected.http.length);
    expect(http.columns).toEqual(
      HTTP_REQUEST_COLUMNS.map((c) => [c.name, c.type.replace(/LowCardinality\((\w+)\)/g, '$1')]),
    );
    expect(Object.fromEntries(http.columns)).toMatchObject({
      response_flags: 'Array(String)',
      route_name: 'String',
      time_to_last_rx_byte_ms: 'Nullable(Float64)',
      start_time: "DateTime64(6, 'UTC')",
    });
    expect(tcp.columns.map((c) => c[0])).toEqual(TCP_CONNECTION_COLUMNS.map((c) => c.name));
  });

  it('a message that fails half-way leaves no trace in any column, null map or array offsets', () => {
    const messages = randomMessages(3, 60);
    const decoder = newDecoder();
    const want = { http: [] as Row[], tcp: [] as Row[] };
    let rejected = 0;
    for (const bytes of messages) {
      // Cut into the last entry: the entries before it are written, then the decoder hits the truncation.
      const before = decoder.pendingBytes;
      try {
        decoder.decode(bytes.subarray(0, bytes.length - 3), {});
      } catch (e) {
        expect(e).toBeInstanceOf(DecodeError);
        expect(decoder.pendingBytes).toBe(before);
        rejected++;
      }
      if (decoder.pendingBytes !== before) {
        // The cut landed on a field boundary: a valid shorter message. Keep the expectation in step.
        const r = referenceRows(bytes.subarray(0, bytes.length - 3), {});
        want.http.push(...r.http);
        want.tcp.push(...r.tcp);
      }
      decoder.decode(bytes, {});
      const r = referenceRows(bytes, {});
      want.http.push(...r.http);
      want.tcp.push(...r.tcp);
    }
    expect(rejected).toBeGreaterThan(40);
    const h = decoder.takeHttp();
    const t = decoder.takeTcp();
    expect(h.rows).toBe(want.http.length);
    expect(readNative(h.data)).toEqual(want.http);
    expect(readNative(t.data)).toEqual(want.tcp);
    expect(want.http.some((r) => (r.response_flags as string[]).length > 1)).toBe(true);
  });

  it('concatNativeBlocks merges per-message blocks into one block with the same rows', () => {
    const decoder = newDecoder();
    const state: StreamState = {};
    const blocks = { http: [] as Buffer[], tcp: [] as Buffer[] };
    for (const bytes of randomMessages(8, 120)) {
      decoder.decode(bytes, state);
      if (decoder.pendingHttpRows > 0) blocks.http.push(decoder.takeHttp().data);
      if (decoder.pendingTcpRows > 0) blocks.tcp.push(decoder.takeTcp().data);
    }
    expect(blocks.http.length).toBeGreaterThan(50);
    for (const list of [blocks.http, blocks.tcp]) {
      const merged = concatNativeBlocks(list);
      const rows = readNative(Buffer.concat(list));
      expect(nativeHeader(merged).rows).toBe(rows.length);
      expect(readNative(merged)).toEqual(rows);
      // Several blocks in one Buffer count as several blocks.
      expect(concatNativeBlocks([Buffer.concat(list.slice(0, 3)), ...list.slice(3)]).equals(merged)).toBe(
        true,
      );
    }
    expect(concatNativeBlocks([])).toHaveLength(0);
    expect(concatNativeBlocks([blocks.http[0]])).toBe(blocks.http[0]);
    expect(() => concatNativeBlocks([blocks.http[0], blocks.tcp[0]])).toThrow(/different columns/);
    expect(() => concatNativeBlocks([blocks.http[0], blocks.http[1].subarray(0, 200)])).toThrow(/truncated/);
  });

  it('selectNativeRows picks any rows (nullables, arrays, strings) into one block; nativeRowDays reads partitions', () => {
    const decoder = newDecoder();
    const state: StreamState = {};
    const blocks = { http: [] as Buffer[], tcp: [] as Buffer[] };
    for (const bytes of randomMessages(9, 60)) {
      decoder.decode(bytes, state);
      if (decoder.pendingHttpRows > 0) blocks.http.push(decoder.takeHttp().data);
      if (decoder.pendingTcpRows > 0) blocks.tcp.push(decoder.takeTcp().data);
    }
    for (const list of [blocks.http, blocks.tcp]) {
      const data = Buffer.concat(list);
      const rows = readNative(data);
      expect(rows.length).toBeGreaterThan(100);
      const pick = [rows.length - 1, 0, 5, 6, 7, 42, 3];
      const picked = selectNativeRows(data, pick);
      expect(nativeHeader(picked).rows).toBe(pick.length);
      expect(readNative(picked)).toEqual(pick.map((i) => rows[i]));
      // Halves put back together are the whole.
      const half = Math.floor(rows.length / 2);
      const all = Array.from({ length: rows.length }, (_, i) => i);
      const halves = [selectNativeRows(data, all.slice(0, half)), selectNativeRows(data, all.slice(half))];
      expect(readNative(concatNativeBlocks(halves))).toEqual(rows);
      expect(readNative(selectNativeRows(data, []))).toEqual([]);
      const days = nativeRowDays(data);
      expect([...days]).toEqual(
        rows.map((r) =>
          Math.floor(Date.parse(`${String(r.start_time).slice(0, 10)}T00:00:00Z`) / 86_400_000),
        ),
      );
    }
    expect(() => selectNativeRows(blocks.http[0], [1_000_000])).toThrow(RangeError);
    expect(() => nativeRowDays(blocks.http[0], 'path')).toThrow(/not DateTime64/);
  });
});

// ---- malformed input ------------------------------------------------------------------------------------
describe('malformed input', () => {
  const good = ISTIO_HTTP_STREAM[1].bytes;

  function expectRejected(decoder: AccessLogDecoder, bytes: Uint8Array): DecodeError {
    const before = decoder.pendingBytes;
    const rows = decoder.pendingHttpRows + decoder.pendingTcpRows;
    let err: unknown;
    try {
      decoder.decode(bytes, {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DecodeError);
    expect((err as DecodeError).reason).toBe('malformed_protobuf');
    expect(decoder.pendingBytes).toBe(before);
    expect(decoder.pendingHttpRows + decoder.pendingTcpRows).toBe(rows);
    return err as DecodeError;
  }

  it('rejects every truncation of a valid message and rolls back rows already written', () => {
    const decoder = newDecoder();
    decoder.decode(ALL_FIXTURES[2].bytes, {}); // rows pending from an earlier good message stay
    const pending = decoder.pendingHttpRows;
    let rejected = 0;
    for (let cut = 1; cut < good.length; cut++) {
      try {
        decoder.decode(good.subarray(0, cut), {});
        // A cut exactly at an entry boundary inside the top-level length is impossible, but a cut
        // at a top-level field boundary is a valid (shorter) message: take it and move on.
        decoder.takeHttp();
        decoder.decode(ALL_FIXTURES[2].bytes, {});
      } catch (e) {
        expect(e).toBeInstanceOf(DecodeError);
        rejected++;
      }
      expect(decoder.pendingHttpRows).toBeGreaterThanOrEqual(pending);
    }
    expect(rejected).toBe(good.length - 1);
    expect(decoder.pendingHttpRows).toBe(pending);
  });

  it('rejects random garbage without hanging and never leaves partial rows', () => {
    const rnd = seededRandom(99);
    const decoder = newDecoder();
    for (let i = 0; i < 3000; i++) {
      const len = 1 + Math.floor(rnd() * 200);
      const buf = Buffer.alloc(len);
      for (let j = 0; j < len; j++) buf[j] = Math.floor(rnd() * 256);
      const rows = decoder.pendingHttpRows + decoder.pendingTcpRows;
      const bytes = decoder.pendingBytes;
      try {
        const r = decoder.decode(buf, {});
        expect(decoder.pendingHttpRows + decoder.pendingTcpRows).toBe(rows + r.http + r.tcp);
      } catch (e) {
        expect(e).toBeInstanceOf(DecodeError);
        expect(decoder.pendingHttpRows + decoder.pendingTcpRows).toBe(rows);
        expect(decoder.pendingBytes).toBe(bytes);
      }
    }
  });

  it('rejects flipped bytes in a valid message or decodes them consistently', () => {
    const rnd = seededRandom(5);
    const decoder = newDecoder();
    for (let i = 0; i < 2000; i++) {
      const buf = Buffer.from(good);
      buf[Math.floor(rnd() * buf.length)] = Math.floor(rnd() * 256);
      const before = decoder.pendingHttpRows;
      try {
        const r = decoder.decode(buf, {});
        expect(decoder.pendingHttpRows).toBe(before + r.http);
      } catch (e) {
        expect(e).toBeInstanceOf(DecodeError);
        expect(decoder.pendingHttpRows).toBe(before);
      }
    }
  });

  it('rejects a known field with the wrong wire type', () => {
    // http_logs (field 2) as a varint
    expectRejected(newDecoder(), Buffer.from([0x10, 0x01]));
    // log_entry { common_properties { route_name (19) as fixed32 } }
    const inner = Buffer.from([0x9d, 0x01, 1, 2, 3, 4]); // tag 19<<3|5
    const common = Buffer.concat([Buffer.from([0x0a, inner.length]), inner]);
    const entry = Buffer.concat([Buffer.from([0x0a, common.length]), common]);
    const logs = Buffer.concat([Buffer.from([0x12, entry.length]), entry]);
    expectRejected(newDecoder(), logs);
  });

  it('rejects huge length prefixes, overlong varints, invalid wire types and field 0', () => {
    const d = newDecoder();
    expectRejected(d, Buffer.from([0x12, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00])); // 4 GiB length
    expectRejected(d, Buffer.from([0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])); // 2^64-ish length
    expectRejected(d, Buffer.from([0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01])); // 11-byte varint
    expectRejected(d, Buffer.from([0x0e])); // wire type 6
    expectRejected(d, Buffer.from([0x0f])); // wire type 7
    expectRejected(d, Buffer.from([0x02, 0x00])); // field 0
    expectRejected(d, Buffer.from([0x0c])); // end group without start
    expectRejected(d, Buffer.from([0x23, 0x2c])); // start group 4, end group 5
    expectRejected(d, Buffer.from([0x09, 1, 2, 3])); // truncated fixed64
  });

  it('skips unknown fields of every wire type, including nested groups', () => {
    const f = ALL_FIXTURES[1];
    const unknown = Buffer.from([
      0xf8,
      0x07,
      0x96,
      0x01, // field 127 varint
      0xf9,
      0x07,
      1,
      2,
      3,
      4,
      5,
      6,
      7,
      8, // field 127 fixed64
      0xfa,
      0x07,
      0x03,
      0x61,
      0x62,
      0x63, // field 127 length-delimited
      0xfd,
      0x07,
      1,
      2,
      3,
      4, // field 127 fixed32
      0xfb,
      0x07,
      0x08,
      0x01,
      0xfb,
      0x07,
      0x10,
      0x02,
      0xfc,
      0x07,
      0xfc,
      0x07, // nested groups 127
    ]);
    const state: StreamState = {
      identity: {
        nodeId: ISTIO_HTTP_STREAM[0].expected.http[0].node_id as string,
        nodeCluster: 'istio-ingressgateway.istio-system',
        logName: 'envoy.access_loggers.http_grpc',
      },
    };
    const got = decodeRows(newDecoder(), Buffer.concat([unknown, f.bytes, unknown]), state);
    expect(got).toEqual(f.expected);
  });

  it('bounds group nesting', () => {
    const deep = Buffer.concat([
      Buffer.alloc(100_000, 0xfb)
        .fill(0x07, 1)
        .map((_, i) => (i % 2 ? 0x07 : 0xfb)),
    ]);
    const err = expectRejected(newDecoder(), deep);
    expect(err.message).toMatch(/nested too deep|truncated/);
  });

  it('handles deeply nested length-delimited unknown data without recursion', () => {
    // 10k levels of "field 1, length-delimited" inside an unknown field: skipped by length.
    let inner = Buffer.alloc(0);
    for (let i = 0; i < 2000; i++) {
      const len: number[] = [];
      let n = inner.length;
      while (n >= 0x80) {
        len.push((n & 0x7f) | 0x80);
        n >>>= 7;
      }
      len.push(n);
      inner = Buffer.concat([Buffer.from([0x0a, ...len]), inner]);
    }
    const msg = Buffer.concat([Buffer.from([0xfa, 0x07]), Buffer.from(encodeLen(inner.length)), inner]);
    expect(newDecoder().decode(msg, {})).toEqual({ http: 0, tcp: 0, outOfWindow: 0 });
  });
});

function encodeLen(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

describe('limits', () => {
  const limited = (limits: Partial<DecodeLimits>) =>
    new AccessLogDecoder({ pathTemplater: FIXTURE_PATH_TEMPLATER, initialBufferBytes: 64, limits });
  const refused = (d: AccessLogDecoder, bytes: Uint8Array, state: StreamState = {}): DecodeError => {
    try {
      d.decode(bytes, state);
    } catch (err) {
      expect(err).toBeInstanceOf(DecodeError);
      return err as DecodeError;
    }
    throw new Error('expected a DecodeError');
  };

  it('refuses more entries than the limit before writing a row, and keeps what the decoder held', () => {
    const d = limited({ maxEntriesPerMessage: 1_000 });
    const state: StreamState = {};
    d.decode(ISTIO_HTTP_STREAM[0].bytes, state);
    const before = { rows: d.pendingHttpRows, bytes: d.pendingBytes };
    expect(d.decode(emptyEntriesMessage(1_000), state).http).toBe(1_000);
    d.takeHttp();
    d.decode(ISTIO_HTTP_STREAM[0].bytes, state);
    const err = refused(d, emptyEntriesMessage(1_001), state);
    expect(err.reason).toBe('too_many_entries');
    expect(err.isLimit).toBe(true);
    expect(err.message).toMatch(/more than 1000 access-log entries/);
    expect({ rows: d.pendingHttpRows, bytes: d.pendingBytes }).toEqual(before);
  });

  it('the default limit refuses the 7.5 M empty entries of a 15 MB message in one bounded pass', () => {
    const d = new AccessLogDecoder({ pathTemplater: FIXTURE_PATH_TEMPLATER, initialBufferBytes: 64 });
    const bomb = emptyEntriesMessage(7_500_000);
    expect(bomb.length).toBeGreaterThan(15_000_000);
    expect(refused(d, bomb).reason).toBe('too_many_entries');
    // Refused after counting limit + 1 entries: no column grew.
    expect(d.pendingBytes).toBe(0);
    expect(d.limits).toEqual(DEFAULT_DECODE_LIMITS);
  });

  it('refuses a stored string over the limit, naming the field; an unstored one of any size passes', () => {
    const d = limited({ maxStringBytes: 100 });
    const entry = (request: Record<string, unknown>) =>
      encodeStreamAccessLogsMessage({
        http_logs: { log_entry: [{ request: { request_method: 'GET', ...request } }] },
      });
    expect(d.decode(entry({ path: '/' + 'a'.repeat(99) }), {}).http).toBe(1);
    let err = refused(d, entry({ path: '/' + 'a'.repeat(100) }));
    expect(err.reason).toBe('string_too_long');
    expect(err.message).toMatch(/request\.path is 101 bytes, above the limit of 100/);
    err = refused(d, entry({ user_agent: 'u'.repeat(5_000) }));
    expect(err.message).toMatch(/request\.user_agent/);
    // Request headers other than the mapped ones are skipped, never copied: no limit applies to them.
    expect(d.decode(entry({ request_headers: { 'x-big': 'v'.repeat(10_000) } }), {}).http).toBe(1);
    // Addresses and grpc-status values are stored strings too.
    const withAddress = encodeStreamAccessLogsMessage({
      http_logs: {
        log_entry: [
          {
            common_properties: {
              downstream_remote_address: { socket_address: { address: 'x'.repeat(200), port_value: 1 } },
            },
          },
        ],
      },
    });
    expect(refused(d, withAddress).message).toMatch(/downstream_remote_address is 200 bytes/);
    const withStatus = encodeStreamAccessLogsMessage({
      http_logs: { log_entry: [{ response: { response_trailers: { 'grpc-status': '9'.repeat(101) } } }] },
    });
    expect(refused(d, withStatus).reason).toBe('string_too_long');
  });

  it('refuses an identifier string over the limit, but a 360-extension Istio node passes', () => {
    const d = limited({ maxIdentifierBytes: 128 });
    const state: StreamState = {};
    expect(ISTIO_HTTP_STREAM[0].bytes.length).toBeGreaterThan(20_000);
    d.decode(ISTIO_HTTP_STREAM[0].bytes, state);
    expect(state.identity?.nodeId).toMatch(/^router~/);
    const big = encodeStreamAccessLogsMessage({
      identifier: { node: { id: 'n'.repeat(129), cluster: 'c' }, log_name: 'als' },
      http_logs: { log_entry: [{}] },
    });
    const err = refused(d, big, state);
    expect(err.reason).toBe('identifier_too_long');
    expect(err.message).toMatch(/identifier\.node\.id is 129 bytes, above the limit of 128/);
    // The stream keeps its earlier identity.
    expect(state.identity?.nodeId).toMatch(/^router~/);
    for (const identifier of [
      { node: { id: 'n', cluster: 'c'.repeat(129) }, log_name: 'als' },
      { node: { id: 'n', cluster: 'c' }, log_name: 'l'.repeat(129) },
    ]) {
      const bytes = encodeStreamAccessLogsMessage({ identifier, http_logs: { log_entry: [{}] } });
      expect(refused(d, bytes).reason).toBe('identifier_too_long');
    }
  });

  it('malformed input is not a limit', () => {
    const err = refused(newDecoder(), Buffer.from([0x12, 0xff, 0xff, 0xff, 0x0f, 0x01]));
    expect(err.reason).toBe('malformed_protobuf');
    expect(err.isLimit).toBe(false);
  });
});

describe('countEntries', () => {
  it('counts the entries a message will become without decoding them, and refuses a bomb early', () => {
    const traffic = makeTrafficMessage({ entries: 37, identifier: true });
    expect(countEntries(traffic.bytes)).toBe(37);
    expect(countEntries(emptyEntriesMessage(5), 5)).toBe(5);
    expect(countEntries(TCP_STREAM[0].bytes)).toBe(TCP_STREAM[0].expected.tcp.length);
    expect(() => countEntries(emptyEntriesMessage(7_500_000), 10_000)).toThrow(/more than 10000/);
    expect(() => countEntries(Buffer.from([0x12, 0xff, 0xff, 0xff, 0x0f, 0x01]))).toThrow(DecodeError);
    // The same count the decoder reports, fixture by fixture.
    for (const f of ALL_FIXTURES) {
      expect(countEntries(f.bytes), f.name).toBe(f.expected.http.length + f.expected.tcp.length);
    }
  });
});

describe('start_time window', () => {
  it('keeps entries outside the window apart (their own blocks) and counts them; the rest of the message is kept', () => {
    const nowS = 1_800_000_000;
    const d = new AccessLogDecoder({
      pathTemplater: FIXTURE_PATH_TEMPLATER,
      limits: { maxEntryAgeS: 14 * 86_400, maxEntryFutureS: 86_400 },
      now: () => nowS * 1000,
    });
    const at = (seconds: number, requestId: string) => ({
      common_properties: { start_time: { seconds } },
      request: { request_id: requestId },
    });
    const bytes = encodeStreamAccessLogsMessage({
      http_logs: {
        log_entry: [
          at(nowS - 60, 'recent'),
          at(nowS - 14 * 86_400 + 1, 'oldest-kept'),
          at(nowS - 15 * 86_400, 'too-old'),
          at(0, 'epoch'),
          at(nowS + 3_600, 'clock-skew'),
          at(nowS + 2 * 86_400, 'too-far-ahead'),
          ...Array.from({ length: 150 }, (_, i) => at(nowS - (i + 20) * 86_400, `spread-${i}`)),
        ],
      },
    });
    expect(d.decode(bytes, {})).toEqual({ http: 3, tcp: 0, outOfWindow: 153 });
    expect(readNative(d.takeHttp().data).map((r) => r.request_id)).toEqual([
      'recent',
      'oldest-kept',
      'clock-skew',
    ]);
    const outside = d.takeOutside();
    expect(outside.tcp.rows).toBe(0);
    expect(readNative(outside.http.data).map((r) => r.request_id)).toEqual([
      'too-old',
      'epoch',
      'too-far-ahead',
      ...Array.from({ length: 150 }, (_, i) => `spread-${i}`),
    ]);
    expect(d.takeOutside().http.rows).toBe(0);
    // A malformed message keeps nothing of itself, inside or outside the window.
    const bad = Buffer.concat([bytes, Buffer.from([0x0a])]);
    expect(() => d.decode(bad, {})).toThrow();
    expect([d.pendingHttpRows, d.takeOutside().http.rows]).toEqual([0, 0]);
    // No window by default.
    expect(newDecoder().decode(bytes, {})).toEqual({ http: 156, tcp: 0, outOfWindow: 0 });
  });
});
