/**
 * Hand-rolled protobuf wire-format decoder for envoy.service.accesslog.v3.StreamAccessLogsMessage
 * that writes each access-log entry straight into the columns of a ClickHouse Native block (one
 * buffer per column of columns.ts). One pass over the bytes, no per-entry objects: field locations
 * go into reusable typed-array scratch slots, then each value is appended to its column.
 *
 * Field numbers are from envoy/service/accesslog/v3/als.proto, envoy/data/accesslog/v3/accesslog.proto,
 * envoy/config/core/v3/{address,base}.proto and google/protobuf/{timestamp,duration,wrappers}.proto.
 */
import type { ColumnBuffer } from './column-buffer.js';
import { HTTP_REQUEST_COLUMNS, TCP_CONNECTION_COLUMNS, type ColumnSpec } from './columns.js';
import { NativeBlockWriter, type NativeData } from './native-block.js';

/**
 * Why a message was refused. `malformed_protobuf` is bad input; the others are the size limits of
 * {@link DecodeLimits} (the message may be valid protobuf, it is just more than gatescope takes).
 */
export type DecodeErrorReason =
  'malformed_protobuf' | 'too_many_entries' | 'string_too_long' | 'identifier_too_long';

export class DecodeError extends Error {
  readonly reason: DecodeErrorReason;
  constructor(reason: DecodeErrorReason, message: string) {
    super(`${reason}: ${message}`);
    this.name = 'DecodeError';
    this.reason = reason;
  }
  /** A size limit was hit (RESOURCE_EXHAUSTED), as opposed to malformed input (INVALID_ARGUMENT). */
  get isLimit(): boolean {
    return this.reason !== 'malformed_protobuf';
  }
}

/**
 * What one message may hold. Checked before any row of the message is written: the entries are
 * counted first (one tag and length per entry), and a stored string is measured before it is copied,
 * so a refused message costs one pass over its bytes and no memory.
 */
export interface DecodeLimits {
  /** Access-log entries (rows) in one StreamAccessLogsMessage. */
  maxEntriesPerMessage: number;
  /** Bytes of one stored string field: path, user agent, route, an address, a grpc-status value... */
  maxStringBytes: number;
  /** Bytes of each identifier string: node id, node cluster, log name (copied into every row). */
  maxIdentifierBytes: number;
  /**
   * The window an entry's start_time must lie in, relative to the decoder's clock: at most this old, at most
   * this far ahead. Entries outside become rows of their own blocks (`takeOutside()`, counted in
   * `outOfWindow`), never of the insertable ones; the rest of the message is kept. Tables are partitioned by day,
   * and ClickHouse refuses an insert that touches over 100 partitions: entries spread over many days would make
   * every batch fail. Unbounded unless set (the collector sets it and dead-letters what falls outside).
   */
  maxEntryAgeS: number;
  maxEntryFutureS: number;
}

/** The defaults of GATESCOPE_ALS_MAX_* (packages/config explains each number). */
export const DEFAULT_DECODE_LIMITS: Readonly<DecodeLimits> = Object.freeze({
  maxEntriesPerMessage: 10_000,
  maxStringBytes: 65_536,
  maxIdentifierBytes: 1_024,
  maxEntryAgeS: Infinity,
  maxEntryFutureS: Infinity,
});

export interface StreamIdentity {
  nodeId: string;
  nodeCluster: string;
  logName: string;
}

/** Per gRPC stream state, kept by the caller: Envoy sends the identifier only in a stream's first message. */
export interface StreamState {
  identity?: StreamIdentity;
}

export interface DecodeResult {
  http: number;
  tcp: number;
  /** Entries whose start_time lies outside the accepted window (see DecodeLimits): rows of `takeOutside()`. */
  outOfWindow: number;
}

export interface PathTemplaterLike {
  template(route: string, path: string): string;
}

export interface AccessLogDecoderOptions {
  pathTemplater: PathTemplaterLike;
  /** Initial capacity of each table's column buffers, in bytes over all columns (default 256 KiB). */
  initialBufferBytes?: number;
  /** Size limits per message; unset ones take {@link DEFAULT_DECODE_LIMITS}. */
  limits?: Partial<DecodeLimits>;
  /** The clock the start_time window is measured against, in ms (default Date.now). */
  now?: () => number;
  /**
   * Told about every http row written inside the start_time window, with the few fields a live view aggregates
   * (the collector's live window: per-route per-second counters and latency sketches).
   */
  observer?: HttpRowObserver;
}

/** What a live view needs of each http row, as the decoder writes it. */
export interface HttpRowObserver {
  http(
    startUs: number,
    durationMs: number,
    responseCode: number,
    route: string,
    authority: string,
    upstreamCluster: string,
    identity: StreamIdentity,
  ): void;
}

/** Identity used for messages on a stream that never carried an identifier. */
export const UNKNOWN_IDENTITY: StreamIdentity = Object.freeze({
  nodeId: 'unknown',
  nodeCluster: '',
  logName: '',
});

const MALFORMED = 'malformed_protobuf';
const MAX_GROUP_DEPTH = 32;
const TWO32 = 4294967296;

// ---- constant strings, pre-encoded --------------------------------------------------------------
const enc = (s: string): Buffer => Buffer.from(s, 'utf8');
/** envoy.config.core.v3.RequestMethod */
const METHODS = ['', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'].map(enc);
/** HTTPAccessLogEntry.HTTPVersion -> Envoy's %PROTOCOL% */
const PROTOCOLS = ['', 'HTTP/1.0', 'HTTP/1.1', 'HTTP/2', 'HTTP/3'].map(enc);
/** TLSProperties.TLSVersion -> Envoy's %DOWNSTREAM_TLS_VERSION% */
const TLS_VERSIONS = ['', 'TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'].map(enc);
/**
 * ResponseFlags field number n (1..28) -> Envoy short code, index n-1. The proto's field order is
 * Envoy's canonical order (source/common/stream_info/utility.h CORE_RESPONSE_FLAGS; DO, drop
 * overload, has no proto field). Field 13 is the `unauthorized_details` message -> UAEX.
 */
export const RESPONSE_FLAG_CODES: readonly string[] = Object.freeze([
  'LH',
  'UH',
  'UT',
  'LR',
  'UR',
  'UF',
  'UC',
  'UO',
  'NR',
  'DI',
  'FI',
  'RL',
  'UAEX',
  'RLSE',
  'DC',
  'URX',
  'SI',
  'IH',
  'DPE',
  'UMSDR',
  'RFCF',
  'NFCF',
  'DT',
  'UPE',
  'NC',
  'OM',
  'DF',
  'DR',
]);
const FLAG_BYTES = RESPONSE_FLAG_CODES.map(enc);

/**
 * TLS cipher suite id -> the name Envoy's %DOWNSTREAM_TLS_CIPHER% prints (BoringSSL names) for
 * the common suites; anything else is printed as `0x` + 4 upper-case hex digits.
 */
export const TLS_CIPHER_NAMES: ReadonlyMap<number, string> = new Map([
  [0x1301, 'TLS_AES_128_GCM_SHA256'],
  [0x1302, 'TLS_AES_256_GCM_SHA384'],
  [0x1303, 'TLS_CHACHA20_POLY1305_SHA256'],
  [0xc02b, 'ECDHE-ECDSA-AES128-GCM-SHA256'],
  [0xc02c, 'ECDHE-ECDSA-AES256-GCM-SHA384'],
  [0xc02f, 'ECDHE-RSA-AES128-GCM-SHA256'],
  [0xc030, 'ECDHE-RSA-AES256-GCM-SHA384'],
  [0xcca8, 'ECDHE-RSA-CHACHA20-POLY1305'],
  [0xcca9, 'ECDHE-ECDSA-CHACHA20-POLY1305'],
  [0x009c, 'AES128-GCM-SHA256'],
  [0x009d, 'AES256-GCM-SHA384'],
]);
export function tlsCipherName(id: number): string {
  return TLS_CIPHER_NAMES.get(id) ?? '0x' + id.toString(16).toUpperCase().padStart(4, '0');
}
const cipherCache = new Map<number, Buffer>();
function cipherBytes(id: number): Buffer {
  let b = cipherCache.get(id);
  if (!b) {
    b = enc(tlsCipherName(id));
    if (cipherCache.size < 4096) cipherCache.set(id, b);
  }
  return b;
}
const GRPC_STATUS = enc('grpc-status');

// ---- reader state (decoding is synchronous, so module-level state is safe) ------------------------
let B: Buffer = Buffer.alloc(0);
let P = 0;
let VLO = 0;
let VHI = 0;
/** The limits of the decode in progress. */
let MAX_STRING = DEFAULT_DECODE_LIMITS.maxStringBytes;

function fail(message: string): never {
  throw new DecodeError(MALFORMED, message);
}

/** Refuses a stored string longer than the limit, before it is copied anywhere. */
function checkString(what: string, s: number, e: number): void {
  if (e - s > MAX_STRING)
    throw new DecodeError(
      'string_too_long',
      `${what} is ${e - s} bytes, above the limit of ${MAX_STRING} bytes for one string field`,
    );
}

/** Reads a varint at P; sets VLO/VHI (uint32 halves) and returns the value as a number (exact below 2^53). */
function readVarint(end: number): number {
  let b: number;
  let lo = 0;
  for (let shift = 0; shift < 28; shift += 7) {
    if (P >= end) fail('truncated varint');
    b = B[P++];
    lo |= (b & 0x7f) << shift;
    if (b < 0x80) {
      VLO = lo >>> 0;
      VHI = 0;
      return VLO;
    }
  }
  if (P >= end) fail('truncated varint');
  b = B[P++];
  lo |= (b & 0x0f) << 28;
  let hi = (b & 0x7f) >> 4;
  if (b < 0x80) {
    VLO = lo >>> 0;
    VHI = hi;
    return hi * TWO32 + VLO;
  }
  for (let shift = 3; shift < 32; shift += 7) {
    if (P >= end) fail('truncated varint');
    b = B[P++];
    hi |= (b & 0x7f) << shift;
    if (b < 0x80) {
      VLO = lo >>> 0;
      VHI = hi >>> 0;
      return VHI * TWO32 + VLO;
    }
  }
  return fail('varint longer than 10 bytes');
}

/** Reads a tag; returns it (field << 3 | wire). Rejects field 0 and tags beyond 32 bits. */
function readTag(end: number): number {
  const t = readVarint(end);
  if (VHI !== 0 || t < 8) fail(`invalid tag ${t}`);
  return t;
}

/** Reads a length prefix and returns the end offset of the delimited bytes. */
function readLenEnd(end: number): number {
  const n = readVarint(end);
  if (n > end - P) fail(`length ${n} exceeds the ${end - P} bytes left`);
  return P + n;
}

function expectWire(tag: number, wire: number): void {
  if ((tag & 7) !== wire) fail(`field ${tag >>> 3} has wire type ${tag & 7}, expected ${wire}`);
}

/** Skips one field of any wire type (groups iteratively, depth bounded). */
function skipField(tag: number, end: number): void {
  switch (tag & 7) {
    case 0:
      readVarint(end);
      return;
    case 1:
      if (end - P < 8) fail('truncated fixed64');
      P += 8;
      return;
    case 2:
      P = readLenEnd(end);
      return;
    case 5:
      if (end - P < 4) fail('truncated fixed32');
      P += 4;
      return;
    case 3: {
      // Start group: skip until the matching end group.
      const stack: number[] = [tag >>> 3];
      while (stack.length > 0) {
        const t = readTag(end);
        const w = t & 7;
        if (w === 3) {
          if (stack.length >= MAX_GROUP_DEPTH) fail('groups nested too deep');
          stack.push(t >>> 3);
        } else if (w === 4) {
          if (stack.pop() !== t >>> 3) fail('mismatched end group');
        } else {
          skipField(t, end);
        }
      }
      return;
    }
    default:
      fail(`invalid wire type ${tag & 7}`);
  }
}

// ---- per-entry scratch slots ---------------------------------------------------------------------
// String slices into the input: start at 2*i, end at 2*i+1. start -1 = absent.
const S_DETAILS = 0;
const S_ROUTE = 1;
const S_CLUSTER = 2;
const S_UTFR = 3;
const S_AUTHORITY = 4;
const S_SCHEME = 5;
const S_PATH = 6;
const S_UA = 7;
const S_REFERER = 8;
const S_XFF = 9;
const S_REQUEST_ID = 10;
const S_SNI = 11;
const S_GRPC_TRAILER = 12;
const S_GRPC_HEADER = 13;
const S_TERMINATION = 14;
const N_STR = 15;
const str = new Int32Array(2 * N_STR);
/** Field names of the string slots, for error messages. */
const STR_NAMES = [
  'response.response_code_details',
  'common_properties.route_name',
  'common_properties.upstream_cluster',
  'common_properties.upstream_transport_failure_reason',
  'request.authority',
  'request.scheme',
  'request.path',
  'request.user_agent',
  'request.referer',
  'request.forwarded_for',
  'request.request_id',
  'tls_properties.tls_sni_hostname',
  'a grpc-status trailer',
  'a grpc-status header',
  'common_properties.connection_termination_details',
];

// Addresses: [kind, aStart, aEnd, port, bStart, bEnd] each. kind 0 none, 1 socket, 2 pipe, 3 internal.
const A_DOWN_REMOTE = 0;
const A_DOWN_LOCAL = 1;
const A_UP_REMOTE = 2;
const A_UP_LOCAL = 3;
const addr = new Float64Array(4 * 6);
const ADDRESS_NAMES = [
  'common_properties.downstream_remote_address',
  'common_properties.downstream_local_address',
  'common_properties.upstream_remote_address',
  'common_properties.upstream_local_address',
];

// uint64 values as (lo, hi)
const U_REQ_BODY = 0;
const U_RESP_BODY = 1;
const U_REQ_HDR = 2;
const U_RESP_HDR = 3;
const U_RECEIVED = 4;
const U_SENT = 5;
const u64 = new Uint32Array(2 * 6);

// Durations in ms (NaN = absent): index = AccessLogCommon field number - 6 for fields 6..12, 7 = duration(23).
const D_LAST_RX = 0;
const D_LAST_DOWN_TX = 6;
const D_DURATION = 7;
const dur = new Float64Array(8);

let startUs = 0;
let responseCode = 0;
let attemptCount = 0;
let method = 0;
let protocol = 0;
let tlsVersion = 0;
let cipher = -1;
let flags = 0;

function resetEntry(): void {
  str.fill(-1);
  addr.fill(0);
  u64.fill(0);
  dur.fill(NaN);
  startUs = 0;
  responseCode = 0;
  attemptCount = 0;
  method = 0;
  protocol = 0;
  tlsVersion = 0;
  cipher = -1;
  flags = 0;
}

function readString(slot: number, tag: number, end: number): void {
  expectWire(tag, 2);
  const e = readLenEnd(end);
  checkString(STR_NAMES[slot], P, e);
  str[2 * slot] = P;
  str[2 * slot + 1] = e;
  P = e;
}

function readU64(slot: number, tag: number, end: number): void {
  expectWire(tag, 0);
  readVarint(end);
  u64[2 * slot] = VLO;
  u64[2 * slot + 1] = VHI;
}

function readUint32(tag: number, end: number): number {
  expectWire(tag, 0);
  readVarint(end);
  return VLO;
}

/** google.protobuf.{UInt32Value} -> value (0 when the wrapper is empty). */
function readUInt32Wrapper(tag: number, end: number): number {
  expectWire(tag, 2);
  const e = readLenEnd(end);
  let v = 0;
  while (P < e) {
    const t = readTag(e);
    if (t >>> 3 === 1) v = readUint32(t, e);
    else skipField(t, e);
  }
  return v;
}

/** google.protobuf.Timestamp / Duration -> (seconds, nanos) into SEC/NANO. */
let SEC = 0;
let NANO = 0;
function readSecondsNanos(tag: number, end: number): void {
  expectWire(tag, 2);
  const e = readLenEnd(end);
  SEC = 0;
  NANO = 0;
  while (P < e) {
    const t = readTag(e);
    const f = t >>> 3;
    if (f === 1) {
      expectWire(t, 0);
      readVarint(e);
      SEC = (VHI | 0) * TWO32 + VLO;
    } else if (f === 2) {
      expectWire(t, 0);
      readVarint(e);
      NANO = VLO | 0;
    } else skipField(t, e);
  }
}

function readAddress(a: number, tag: number, end: number): void {
  expectWire(tag, 2);
  const e = readLenEnd(end);
  const base = a * 6;
  while (P < e) {
    const t = readTag(e);
    const f = t >>> 3;
    if (f === 1 || f === 2 || f === 3) {
      expectWire(t, 2);
      const se = readLenEnd(e);
      addr[base] = f;
      addr[base + 1] = 0;
      addr[base + 2] = 0;
      addr[base + 3] = 0;
      addr[base + 4] = 0;
      addr[base + 5] = 0;
      while (P < se) {
        const st = readTag(se);
        const sf = st >>> 3;
        if (f === 1 && sf === 2) {
          // SocketAddress.address
          expectWire(st, 2);
          const x = readLenEnd(se);
          checkString(ADDRESS_NAMES[a], P, x);
          addr[base + 1] = P;
          addr[base + 2] = x;
          P = x;
        } else if (f === 1 && sf === 3) {
          // SocketAddress.port_value
          addr[base + 3] = readUint32(st, se);
        } else if ((f === 2 || f === 3) && sf === 1) {
          // Pipe.path / EnvoyInternalAddress.server_listener_name
          expectWire(st, 2);
          const x = readLenEnd(se);
          checkString(ADDRESS_NAMES[a], P, x);
          addr[base + 1] = P;
          addr[base + 2] = x;
          P = x;
        } else if (f === 3 && sf === 2) {
          // EnvoyInternalAddress.endpoint_id
          expectWire(st, 2);
          const x = readLenEnd(se);
          checkString(ADDRESS_NAMES[a], P, x);
          addr[base + 4] = P;
          addr[base + 5] = x;
          P = x;
        } else skipField(st, se);
      }
    } else skipField(t, e);
  }
}

function readTls(tag: number, end: number): void {
  expectWire(tag, 2);
  const e = readLenEnd(end);
  while (P < e) {
    const t = readTag(e);
    switch (t >>> 3) {
      case 1:
        tlsVersion = readUint32(t, e);
        break;
      case 2:
        cipher = readUInt32Wrapper(t, e);
        break;
      case 3:
        readString(S_SNI, t, e);
        break;
      default:
        skipField(t, e);
    }
  }
}

function readFlags(tag: number, end: number): void {
  expectWire(tag, 2);
  const e = readLenEnd(end);
  while (P < e) {
    const t = readTag(e);
    const f = t >>> 3;
    if (f === 13) {
      // unauthorized_details: presence of the message means UAEX
      expectWire(t, 2);
      P = readLenEnd(e);
      flags |= 1 << 12;
    } else if (f >= 1 && f <= 28) {
      expectWire(t, 0);
      readVarint(e);
      if ((VLO | VHI) !== 0) flags |= 1 << (f - 1);
      else flags &= ~(1 << (f - 1));
    } else skipField(t, e);
  }
}

function readCommon(tag: number, end: number): void {
  expectWire(tag, 2);
  const e = readLenEnd(end);
  while (P < e) {
    const t = readTag(e);
    const f = t >>> 3;
    switch (f) {
      case 2:
        readAddress(A_DOWN_REMOTE, t, e);
        break;
      case 3:
        readAddress(A_DOWN_LOCAL, t, e);
        break;
      case 4:
        readTls(t, e);
        break;
      case 5:
        readSecondsNanos(t, e);
        startUs = SEC * 1e6 + Math.trunc(NANO / 1000);
        break;
      case 6:
      case 7:
      case 8:
      case 9:
      case 10:
      case 11:
      case 12:
        readSecondsNanos(t, e);
        dur[f - 6] = SEC * 1000 + NANO / 1e6;
        break;
      case 13:
        readAddress(A_UP_REMOTE, t, e);
        break;
      case 14:
        readAddress(A_UP_LOCAL, t, e);
        break;
      case 15:
        readString(S_CLUSTER, t, e);
        break;
      case 16:
        readFlags(t, e);
        break;
      case 18:
        readString(S_UTFR, t, e);
        break;
      case 19:
        readString(S_ROUTE, t, e);
        break;
      case 23:
        readSecondsNanos(t, e);
        dur[D_DURATION] = SEC * 1000 + NANO / 1e6;
        break;
      case 24:
        attemptCount = readUint32(t, e);
        break;
      case 25:
        readString(S_TERMINATION, t, e);
        break;
      default:
        skipField(t, e);
    }
  }
}

function readRequest(tag: number, end: number): void {
  expectWire(tag, 2);
  const e = readLenEnd(end);
  while (P < e) {
    const t = readTag(e);
    switch (t >>> 3) {
      case 1:
        method = readUint32(t, e);
        break;
      case 2:
        readString(S_SCHEME, t, e);
        break;
      case 3:
        readString(S_AUTHORITY, t, e);
        break;
      case 5:
        readString(S_PATH, t, e);
        break;
      case 6:
        readString(S_UA, t, e);
        break;
      case 7:
        readString(S_REFERER, t, e);
        break;
      case 8:
        readString(S_XFF, t, e);
        break;
      case 9:
        readString(S_REQUEST_ID, t, e);
        break;
      case 11:
        readU64(U_REQ_HDR, t, e);
        break;
      case 12:
        readU64(U_REQ_BODY, t, e);
        break;
      default:
        skipField(t, e);
    }
  }
}

function equalsIgnoreAsciiCase(s: number, e: number, lowerName: Uint8Array): boolean {
  if (e - s !== lowerName.length) return false;
  for (let i = 0; i < lowerName.length; i++) {
    let c = B[s + i];
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== lowerName[i]) return false;
  }
  return true;
}

/** A map<string,string> entry: records the value slice into `slot` when the key is grpc-status. */
function readGrpcStatusEntry(slot: number, tag: number, end: number): void {
  expectWire(tag, 2);
  const e = readLenEnd(end);
  let ks = 0;
  let ke = 0;
  let vs = 0;
  let ve = 0;
  while (P < e) {
    const t = readTag(e);
    const f = t >>> 3;
    if (f === 1 || f === 2) {
      expectWire(t, 2);
      const x = readLenEnd(e);
      if (f === 1) {
        ks = P;
        ke = x;
      } else {
        vs = P;
        ve = x;
      }
      P = x;
    } else skipField(t, e);
  }
  if (equalsIgnoreAsciiCase(ks, ke, GRPC_STATUS)) {
    checkString(STR_NAMES[slot], vs, ve);
    str[2 * slot] = vs;
    str[2 * slot + 1] = ve;
  }
}

function readResponse(tag: number, end: number): void {
  expectWire(tag, 2);
  const e = readLenEnd(end);
  while (P < e) {
    const t = readTag(e);
    switch (t >>> 3) {
      case 1:
        responseCode = readUInt32Wrapper(t, e);
        break;
      case 2:
        readU64(U_RESP_HDR, t, e);
        break;
      case 3:
        readU64(U_RESP_BODY, t, e);
        break;
      case 4:
        readGrpcStatusEntry(S_GRPC_HEADER, t, e);
        break;
      case 5:
        readGrpcStatusEntry(S_GRPC_TRAILER, t, e);
        break;
      case 6:
        readString(S_DETAILS, t, e);
        break;
      default:
        skipField(t, e);
    }
  }
}

function readConnectionProperties(tag: number, end: number): void {
  expectWire(tag, 2);
  const e = readLenEnd(end);
  while (P < e) {
    const t = readTag(e);
    const f = t >>> 3;
    if (f === 1) readU64(U_RECEIVED, t, e);
    else if (f === 2) readU64(U_SENT, t, e);
    else skipField(t, e);
  }
}

/** Envoy's %DURATION%: duration, else last downstream tx byte, else last rx byte, else 0. */
function durationMs(): number {
  const d = dur[D_DURATION];
  if (d === d) return d;
  const tx = dur[D_LAST_DOWN_TX];
  if (tx === tx) return tx;
  const rx = dur[D_LAST_RX];
  if (rx === rx) return rx;
  return 0;
}

// ---- row writers -----------------------------------------------------------------------------------
function writeSlice(out: ColumnBuffer, slot: number): void {
  const s = str[2 * slot];
  if (s < 0) out.writeEmpty();
  else out.writeSlice(B, s, str[2 * slot + 1]);
}

function decimalDigits(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

function hasColon(s: number, e: number): boolean {
  for (let i = s; i < e; i++) if (B[i] === 0x3a) return true;
  return false;
}

const ENVOY_INTERNAL_PREFIX = enc('envoy://');

/** `ip:port` (`[ipv6]:port`), the pipe path, or `envoy://listener/endpoint`, as Envoy prints addresses. */
function writeAddressString(out: ColumnBuffer, a: number): void {
  const base = a * 6;
  const kind = addr[base];
  const s = addr[base + 1];
  const e = addr[base + 2];
  if (kind === 1) {
    const port = addr[base + 3];
    const v6 = hasColon(s, e);
    const len = e - s + (v6 ? 2 : 0) + 1 + decimalDigits(port);
    out.writeLength(len);
    out.ensure(len);
    if (v6) out.writeByte(0x5b);
    out.writeRaw(B, s, e);
    if (v6) out.writeByte(0x5d);
    out.writeByte(0x3a);
    out.writeAsciiNumber(port);
  } else if (kind === 2) {
    out.writeSlice(B, s, e);
  } else if (kind === 3) {
    const bs = addr[base + 4];
    const be = addr[base + 5];
    const len = ENVOY_INTERNAL_PREFIX.length + (e - s) + 1 + (be - bs);
    out.writeLength(len);
    out.ensure(len);
    out.writeRaw(ENVOY_INTERNAL_PREFIX, 0, ENVOY_INTERNAL_PREFIX.length);
    out.writeRaw(B, s, e);
    out.writeByte(0x2f);
    out.writeRaw(B, bs, be);
  } else {
    out.writeEmpty();
  }
}

/** downstream_remote_address (ip only) and downstream_remote_port. */
function writeDownstreamRemote(address: ColumnBuffer, port: ColumnBuffer): void {
  const base = A_DOWN_REMOTE * 6;
  if (addr[base] === 1) {
    address.writeSlice(B, addr[base + 1], addr[base + 2]);
    port.writeUInt16(Math.min(addr[base + 3], 0xffff));
  } else {
    address.writeEmpty();
    port.writeUInt16(0);
  }
}

/** Array(String) of the response flags' short codes: the elements, then the row's end offset. */
function writeFlags(offsets: ColumnBuffer, values: ColumnBuffer): void {
  let count = 0;
  if (flags !== 0) {
    for (let i = 0; i < 28; i++) {
      if ((flags & (1 << i)) !== 0) {
        values.writeBytes(FLAG_BYTES[i]);
        count++;
      }
    }
  }
  offsets.count += count;
  offsets.writeInt64(offsets.count);
}

function writeEnum(out: ColumnBuffer, table: Buffer[], v: number): void {
  out.writeBytes(v < table.length ? table[v] : table[0]);
}

function writeU64(out: ColumnBuffer, slot: number): void {
  out.writeUInt32Pair(u64[2 * slot], u64[2 * slot + 1]);
}

/** Nullable(Float64): the null map byte, and the value (0 under NULL). */
function writeNullableDuration(nulls: ColumnBuffer, values: ColumnBuffer, i: number): void {
  const v = dur[i];
  if (v === v) {
    nulls.writeByte(0);
    values.writeFloat64(v);
  } else {
    nulls.writeByte(1);
    values.writeUInt32Pair(0, 0);
  }
}

/** Column name -> its index in the block (columns.ts order). */
function columnIndex(columns: readonly ColumnSpec[]): Readonly<Record<string, number>> {
  return Object.freeze(Object.fromEntries(columns.map((c, i) => [c.name, i])));
}
const IDENTITY_COLUMNS = ['node_id', 'node_cluster', 'log_name'];
const H = columnIndex(HTTP_REQUEST_COLUMNS);
const T = columnIndex(TCP_CONNECTION_COLUMNS);
/** The seven Nullable(Float64) timings of http_requests, by `dur` index 0..6. */
const H_TIMINGS = [
  'time_to_last_rx_byte_ms',
  'time_to_first_upstream_tx_byte_ms',
  'time_to_last_upstream_tx_byte_ms',
  'time_to_first_upstream_rx_byte_ms',
  'time_to_last_upstream_rx_byte_ms',
  'time_to_first_downstream_tx_byte_ms',
  'time_to_last_downstream_tx_byte_ms',
].map((n) => H[n]);
const H_IDENTITY = IDENTITY_COLUMNS.map((n) => H[n]);
const T_IDENTITY = IDENTITY_COLUMNS.map((n) => T[n]);

// ---- identity --------------------------------------------------------------------------------------
/** Pre-encoded Strings (LEB128 length + bytes) of node_id, node_cluster, log_name per identity object. */
type IdentityBytes = readonly [Buffer, Buffer, Buffer];
const identityBytes = new WeakMap<StreamIdentity, IdentityBytes>();

/** A String value (LEB128 length + bytes). */
function encodeString(bytes: Uint8Array): Buffer {
  let n = bytes.length;
  const len: number[] = [];
  while (n >= 0x80) {
    len.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  len.push(n);
  return Buffer.concat([Buffer.from(len), bytes]);
}

function bytesOfIdentity(id: StreamIdentity): IdentityBytes {
  let b = identityBytes.get(id);
  if (!b) {
    b = [encodeString(enc(id.nodeId)), encodeString(enc(id.nodeCluster)), encodeString(enc(id.logName))];
    identityBytes.set(id, b);
  }
  return b;
}

/**
 * The identity columns of the rows a message wrote since `w.mark()`: the same three strings on every row (a
 * message has one identifier), so each column gets them as one repeated pattern, not a copy per row.
 */
function writeIdentity(w: NativeBlockWriter, at: readonly number[], id: IdentityBytes): void {
  const n = w.rowsSinceMark;
  if (n === 0) return;
  for (let k = 0; k < 3; k++) w.values[at[k]].writeRepeated(id[k], n);
}

/** Parses StreamAccessLogsMessage.Identifier (node = 1 {id = 1, cluster = 2}, log_name = 2). */
function readIdentifier(start: number, end: number, maxBytes: number): StreamIdentity {
  P = start;
  let idS = 0;
  let idE = 0;
  let clS = 0;
  let clE = 0;
  let lnS = 0;
  let lnE = 0;
  while (P < end) {
    const t = readTag(end);
    const f = t >>> 3;
    if (f === 1) {
      expectWire(t, 2);
      const ne = readLenEnd(end);
      while (P < ne) {
        const nt = readTag(ne);
        const nf = nt >>> 3;
        if (nf === 1 || nf === 2) {
          expectWire(nt, 2);
          const x = readLenEnd(ne);
          if (nf === 1) {
            idS = P;
            idE = x;
          } else {
            clS = P;
            clE = x;
          }
          P = x;
        } else skipField(nt, ne);
      }
    } else if (f === 2) {
      expectWire(t, 2);
      const x = readLenEnd(end);
      lnS = P;
      lnE = x;
      P = x;
    } else skipField(t, end);
  }
  // Everything else in the Node (metadata, extensions, locality, ...) was skipped above, never stored.
  for (const [what, s, e] of [
    ['identifier.node.id', idS, idE],
    ['identifier.node.cluster', clS, clE],
    ['identifier.log_name', lnS, lnE],
  ] as const) {
    if (e - s > maxBytes)
      throw new DecodeError(
        'identifier_too_long',
        `${what} is ${e - s} bytes, above the limit of ${maxBytes} bytes for an identifier string`,
      );
  }
  const identity: StreamIdentity = {
    nodeId: B.toString('utf8', idS, idE),
    nodeCluster: B.toString('utf8', clS, clE),
    logName: B.toString('utf8', lnS, lnE),
  };
  // Keep Envoy's bytes exactly (no UTF-8 replacement) for the rows.
  identityBytes.set(identity, [
    encodeString(B.subarray(idS, idE)),
    encodeString(B.subarray(clS, clE)),
    encodeString(B.subarray(lnS, lnE)),
  ]);
  return identity;
}

// ---- message layout ----------------------------------------------------------------------------------
/** Offsets of the log_entries ranges of the message being read: start, end pairs. */
let RANGES = new Int32Array(16);

/** Where a StreamAccessLogsMessage keeps its identifier and its entries (the ranges are in RANGES). */
interface MessageLayout {
  identStart: number;
  identEnd: number;
  /** 2 = http_logs, 3 = tcp_logs (a oneof: the last one seen wins), 0 = neither. */
  kind: number;
  nRanges: number;
}

/** Reads the top-level fields of the message in B (skipping into nothing). */
function scanMessage(): MessageLayout {
  const end = B.length;
  const layout: MessageLayout = { identStart: -1, identEnd: -1, kind: 0, nRanges: 0 };
  while (P < end) {
    const t = readTag(end);
    const f = t >>> 3;
    if (f === 1) {
      expectWire(t, 2);
      const e = readLenEnd(end);
      layout.identStart = P;
      layout.identEnd = e;
      P = e;
    } else if (f === 2 || f === 3) {
      expectWire(t, 2);
      const e = readLenEnd(end);
      if (layout.kind !== f) {
        layout.kind = f;
        layout.nRanges = 0;
      }
      if (2 * layout.nRanges + 2 > RANGES.length) {
        const r = new Int32Array(RANGES.length * 2);
        r.set(RANGES);
        RANGES = r;
      }
      RANGES[2 * layout.nRanges] = P;
      RANGES[2 * layout.nRanges + 1] = e;
      layout.nRanges++;
      P = e;
    } else skipField(t, end);
  }
  return layout;
}

/** Counts the entries of the log_entries ranges (one tag and length each), stopping at `max + 1`. */
function countRangeEntries(nRanges: number, max: number): number {
  let count = 0;
  for (let r = 0; r < nRanges; r++) {
    P = RANGES[2 * r];
    const e = RANGES[2 * r + 1];
    while (P < e) {
      const t = readTag(e);
      if (t >>> 3 === 1 && ++count > max) return count;
      skipField(t, e);
    }
  }
  return count;
}

function tooManyEntries(max: number): DecodeError {
  return new DecodeError(
    'too_many_entries',
    `the message holds more than ${max} access-log entries (the limit per message)`,
  );
}

const asBuffer = (m: Uint8Array): Buffer =>
  Buffer.isBuffer(m) ? m : Buffer.from(m.buffer, m.byteOffset, m.byteLength);

/**
 * The number of access-log entries (rows to be) in a StreamAccessLogsMessage, without decoding them: one
 * tag and length per entry. Throws DecodeError on malformed framing, and `too_many_entries` as soon as
 * there are more than `max`, as the decoder would. Lets a caller account for the rows of a message (and
 * refuse a bomb) before a decoder thread turns it into rows.
 */
export function countEntries(message: Uint8Array, max = Infinity): number {
  B = asBuffer(message);
  P = 0;
  try {
    const count = countRangeEntries(scanMessage().nRanges, max);
    if (count > max) throw tooManyEntries(max);
    return count;
  } catch (err) {
    if (err instanceof RangeError) throw new DecodeError(MALFORMED, err.message);
    throw err;
  } finally {
    B = EMPTY;
  }
}

// ---- the decoder -------------------------------------------------------------------------------------
const MAX_TEMPLATE_CACHE = 100_000;
/** Distinct route names (authorities, clusters) kept decoded per decoder. */
const ROUTE_CACHE_SIZE = 1024;
/** Buffer#utf8Slice: Buffer#toString('utf8', s, e) without the argument normalisation. */
const utf8Slice = (Buffer.prototype as unknown as { utf8Slice(this: Buffer, s: number, e: number): string })
  .utf8Slice;

export class AccessLogDecoder {
  private readonly templater: PathTemplaterLike;
  private readonly http: NativeBlockWriter;
  private readonly tcp: NativeBlockWriter;
  /** Rows whose start_time fell outside the window: same columns, kept apart (the collector dead-letters them). */
  private readonly httpOutside: NativeBlockWriter;
  private readonly tcpOutside: NativeBlockWriter;
  private readonly templateBytes = new Map<string, Buffer>();
  readonly limits: Readonly<DecodeLimits>;
  private readonly now: () => number;
  /** The start_time window of the message being decoded, in microseconds. */
  private minStartUs = -Infinity;
  private maxStartUs = Infinity;

  private readonly observer?: HttpRowObserver;

  constructor(options: AccessLogDecoderOptions) {
    this.templater = options.pathTemplater;
    this.observer = options.observer;
    this.now = options.now ?? Date.now;
    this.limits = Object.freeze({ ...DEFAULT_DECODE_LIMITS, ...options.limits });
    const cap = options.initialBufferBytes ?? 256 * 1024;
    this.http = new NativeBlockWriter(HTTP_REQUEST_COLUMNS, cap);
    this.tcp = new NativeBlockWriter(TCP_CONNECTION_COLUMNS, cap);
    this.httpOutside = new NativeBlockWriter(HTTP_REQUEST_COLUMNS, 1024);
    this.tcpOutside = new NativeBlockWriter(TCP_CONNECTION_COLUMNS, 1024);
  }

  get pendingHttpRows(): number {
    return this.http.rows;
  }
  get pendingTcpRows(): number {
    return this.tcp.rows;
  }
  /** Rows of entries outside the start_time window not yet taken (`takeOutside()`), per table. */
  get pendingOutsideHttpRows(): number {
    return this.httpOutside.rows;
  }
  get pendingOutsideTcpRows(): number {
    return this.tcpOutside.rows;
  }
  get pendingBytes(): number {
    return this.http.bytes + this.tcp.bytes;
  }

  /** Hands over the http_requests rows accumulated so far as one Native block and resets. */
  takeHttp(): NativeData {
    return this.http.take();
  }
  /** Hands over the tcp_connections rows accumulated so far as one Native block and resets. */
  takeTcp(): NativeData {
    return this.tcp.take();
  }
  /** The rows whose start_time fell outside the window since the last call, one Native block per table. */
  takeOutside(): { http: NativeData; tcp: NativeData } {
    return { http: this.httpOutside.take(), tcp: this.tcpOutside.take() };
  }

  /**
   * Decodes one StreamAccessLogsMessage and appends its entries as rows. Updates `state.identity`
   * when the message carries an identifier. On malformed input throws DecodeError and appends nothing.
   */
  decode(message: Uint8Array, state: StreamState): DecodeResult {
    this.http.mark();
    this.tcp.mark();
    this.httpOutside.mark();
    this.tcpOutside.mark();
    B = asBuffer(message);
    P = 0;
    MAX_STRING = this.limits.maxStringBytes;
    const nowMs = this.now();
    this.minStartUs = (nowMs - this.limits.maxEntryAgeS * 1000) * 1000;
    this.maxStartUs = (nowMs + this.limits.maxEntryFutureS * 1000) * 1000;
    try {
      const { identStart, identEnd, kind, nRanges } = scanMessage();
      const max = this.limits.maxEntriesPerMessage;
      if (countRangeEntries(nRanges, max) > max) throw tooManyEntries(max);
      let identity = state.identity;
      let newIdentity: StreamIdentity | undefined;
      if (identStart >= 0) {
        newIdentity = readIdentifier(identStart, identEnd, this.limits.maxIdentifierBytes);
        identity = newIdentity;
      }
      this.identity = identity ?? UNKNOWN_IDENTITY;
      const idBytes = bytesOfIdentity(this.identity);
      let count = 0;
      let outOfWindow = 0;
      for (let r = 0; r < nRanges; r++) {
        P = RANGES[2 * r];
        const e = RANGES[2 * r + 1];
        while (P < e) {
          const t = readTag(e);
          if (t >>> 3 === 1) {
            expectWire(t, 2);
            const ee = readLenEnd(e);
            const written = kind === 2 ? this.readHttpEntry(ee) : this.readTcpEntry(ee);
            if (written) count++;
            else outOfWindow++;
          } else skipField(t, e);
        }
      }
      if (kind === 2) {
        writeIdentity(this.http, H_IDENTITY, idBytes);
        writeIdentity(this.httpOutside, H_IDENTITY, idBytes);
      } else if (kind === 3) {
        writeIdentity(this.tcp, T_IDENTITY, idBytes);
        writeIdentity(this.tcpOutside, T_IDENTITY, idBytes);
      }
      if (newIdentity) state.identity = newIdentity;
      return kind === 2 ? { http: count, tcp: 0, outOfWindow } : { http: 0, tcp: count, outOfWindow };
    } catch (err) {
      this.http.rollback();
      this.tcp.rollback();
      this.httpOutside.rollback();
      this.tcpOutside.rollback();
      if (err instanceof RangeError) throw new DecodeError(MALFORMED, err.message);
      throw err;
    } finally {
      B = EMPTY;
    }
  }

  /** Whether the entry just read may become a row: its start_time lies in the window. */
  private inWindow(): boolean {
    return startUs >= this.minStartUs && startUs <= this.maxStartUs;
  }

  /** Reads one HTTPAccessLogEntry and writes its row; false when its start_time is out of the window (the row went to the outside block). */
  private readHttpEntry(end: number): boolean {
    resetEntry();
    while (P < end) {
      const t = readTag(end);
      switch (t >>> 3) {
        case 1:
          readCommon(t, end);
          break;
        case 2:
          protocol = readUint32(t, end);
          break;
        case 3:
          readRequest(t, end);
          break;
        case 4:
          readResponse(t, end);
          break;
        default:
          skipField(t, end);
      }
    }
    const inside = this.inWindow();
    const w = inside ? this.http : this.httpOutside;
    const c = w.values;
    const x = w.prefix;
    c[H.start_time].writeInt64(startUs);
    c[H.duration_ms].writeFloat64(durationMs());
    c[H.response_code].writeUInt16(Math.min(responseCode, 0xffff));
    writeSlice(c[H.response_code_details], S_DETAILS);
    writeFlags(x[H.response_flags]!, c[H.response_flags]);
    writeSlice(c[H.route_name], S_ROUTE);
    writeSlice(c[H.upstream_cluster], S_CLUSTER);
    writeAddressString(c[H.upstream_host], A_UP_REMOTE);
    writeAddressString(c[H.upstream_local_address], A_UP_LOCAL);
    writeSlice(c[H.upstream_transport_failure_reason], S_UTFR);
    c[H.upstream_request_attempt_count].writeUInt16(Math.min(attemptCount, 0xffff));
    writeSlice(c[H.authority], S_AUTHORITY);
    writeEnum(c[H.method], METHODS, method);
    writeSlice(c[H.scheme], S_SCHEME);
    writeSlice(c[H.path], S_PATH);
    const tb = this.pathTemplate();
    c[H.path_template].writeRaw(tb, 0, tb.length);
    writeEnum(c[H.protocol], PROTOCOLS, protocol);
    writeDownstreamRemote(c[H.downstream_remote_address], c[H.downstream_remote_port]);
    writeAddressString(c[H.downstream_local_address], A_DOWN_LOCAL);
    writeSlice(c[H.user_agent], S_UA);
    writeSlice(c[H.referer], S_REFERER);
    writeSlice(c[H.forwarded_for], S_XFF);
    writeSlice(c[H.request_id], S_REQUEST_ID);
    writeSlice(c[H.grpc_status], str[2 * S_GRPC_TRAILER] >= 0 ? S_GRPC_TRAILER : S_GRPC_HEADER);
    writeU64(c[H.bytes_received], U_REQ_BODY);
    writeU64(c[H.bytes_sent], U_RESP_BODY);
    writeU64(c[H.request_headers_bytes], U_REQ_HDR);
    writeU64(c[H.response_headers_bytes], U_RESP_HDR);
    writeEnum(c[H.tls_version], TLS_VERSIONS, tlsVersion);
    writeSlice(c[H.tls_sni], S_SNI);
    if (cipher < 0) c[H.tls_cipher_suite].writeEmpty();
    else c[H.tls_cipher_suite].writeBytes(cipherBytes(cipher));
    for (let i = 0; i < 7; i++) writeNullableDuration(x[H_TIMINGS[i]]!, c[H_TIMINGS[i]], i);
    w.rows++;
    if (inside && this.observer) this.observe(this.observer);
    return inside;
  }

  /** The identity of the message being decoded (for the observer). */
  private identity: StreamIdentity = UNKNOWN_IDENTITY;
  private readonly authorityCache = new ByteStringCache(ROUTE_CACHE_SIZE);
  private readonly clusterCache = new ByteStringCache(ROUTE_CACHE_SIZE);

  private observe(observer: HttpRowObserver): void {
    const rs = str[2 * S_ROUTE];
    const as = str[2 * S_AUTHORITY];
    const cs = str[2 * S_CLUSTER];
    observer.http(
      startUs,
      durationMs(),
      responseCode,
      rs < 0 ? '' : this.routeString(rs, str[2 * S_ROUTE + 1]),
      as < 0 ? '' : this.authorityCache.get(as, str[2 * S_AUTHORITY + 1]),
      cs < 0 ? '' : this.clusterCache.get(cs, str[2 * S_CLUSTER + 1]),
      this.identity,
    );
  }

  private pathTemplate(): Buffer {
    const rs = str[2 * S_ROUTE];
    const ps = str[2 * S_PATH];
    const route = rs < 0 ? '' : this.routeString(rs, str[2 * S_ROUTE + 1]);
    const path = ps < 0 ? '' : utf8Slice.call(B, ps, str[2 * S_PATH + 1]);
    const template = this.templater.template(route, path);
    let b = this.templateBytes.get(template);
    if (!b) {
      b = encodeString(enc(template));
      if (this.templateBytes.size >= MAX_TEMPLATE_CACHE) this.templateBytes.clear();
      this.templateBytes.set(template, b);
    }
    return b;
  }

  /** Route names repeat: a small cache compared by bytes avoids decoding them per entry. */
  private readonly routeCache = new ByteStringCache(ROUTE_CACHE_SIZE);
  private routeString(s: number, e: number): string {
    return this.routeCache.get(s, e);
  }

  /** Reads one TCPAccessLogEntry and writes its row; false when its start_time is out of the window (the row went to the outside block). */
  private readTcpEntry(end: number): boolean {
    resetEntry();
    while (P < end) {
      const t = readTag(end);
      switch (t >>> 3) {
        case 1:
          readCommon(t, end);
          break;
        case 2:
          readConnectionProperties(t, end);
          break;
        default:
          skipField(t, end);
      }
    }
    const inside = this.inWindow();
    const w = inside ? this.tcp : this.tcpOutside;
    const c = w.values;
    c[T.start_time].writeInt64(startUs);
    c[T.duration_ms].writeFloat64(durationMs());
    writeFlags(w.prefix[T.response_flags]!, c[T.response_flags]);
    writeSlice(c[T.route_name], S_ROUTE);
    writeSlice(c[T.upstream_cluster], S_CLUSTER);
    writeAddressString(c[T.upstream_host], A_UP_REMOTE);
    writeSlice(c[T.upstream_transport_failure_reason], S_UTFR);
    writeDownstreamRemote(c[T.downstream_remote_address], c[T.downstream_remote_port]);
    writeAddressString(c[T.downstream_local_address], A_DOWN_LOCAL);
    writeU64(c[T.received_bytes], U_RECEIVED);
    writeU64(c[T.sent_bytes], U_SENT);
    writeEnum(c[T.tls_version], TLS_VERSIONS, tlsVersion);
    writeSlice(c[T.tls_sni], S_SNI);
    writeSlice(c[T.connection_termination_details], S_TERMINATION);
    w.rows++;
    return inside;
  }
}

/**
 * Strings that repeat (route names, authorities, clusters) decoded once: the bytes B[s, e) of the message being
 * decoded are hashed (FNV-1a) and compared with the cached bytes of that hash. A gateway with hundreds of routes
 * hits as well as one with five; when full, the cache starts over (a few decodes, never a miss per entry).
 */
class ByteStringCache {
  private readonly byHash = new Map<number, { bytes: Buffer; value: string }>();
  constructor(private readonly size: number) {}

  get(s: number, e: number): string {
    let h = 0x811c9dc5;
    for (let i = s; i < e; i++) h = Math.imul(h ^ B[i], 0x01000193);
    const hit = this.byHash.get(h);
    if (hit && hit.bytes.length === e - s) {
      let i = 0;
      const n = e - s;
      while (i < n && hit.bytes[i] === B[s + i]) i++;
      if (i === n) return hit.value;
    }
    const value = utf8Slice.call(B, s, e);
    if (this.byHash.size >= this.size) this.byHash.clear();
    this.byHash.set(h, { bytes: Buffer.from(B.subarray(s, e)), value });
    return value;
  }
}

const EMPTY = Buffer.alloc(0);
