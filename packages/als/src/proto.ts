import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';
import * as protoLoader from '@grpc/proto-loader';

/** Fully-qualified gRPC service name of Envoy's Access Log Service. */
export const ACCESS_LOG_SERVICE = 'envoy.service.accesslog.v3.AccessLogService';
/** gRPC method path Envoy calls. */
export const STREAM_ACCESS_LOGS_PATH = `/${ACCESS_LOG_SERVICE}/StreamAccessLogs`;
/** The proto file (relative to the include dirs) that defines the service. */
export const ALS_PROTO_FILE = 'envoy/service/accesslog/v3/als.proto';
export const STREAM_ACCESS_LOGS_MESSAGE = 'envoy.service.accesslog.v3.StreamAccessLogsMessage';

/**
 * Include directories for Envoy's protos as shipped inside the installed `@grpc/grpc-js-xds`
 * package (never copied into this repository).
 */
export function envoyProtoIncludeDirs(): string[] {
  const require = createRequire(import.meta.url);
  const pkgDir = path.dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  return ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate']
    .map((d) => path.join(pkgDir, 'deps', d))
    .filter((d) => existsSync(d));
}

/**
 * A protobufjs Root with the given Envoy proto files (paths relative to the include dirs) and their imports
 * loaded (camelCase field names).
 */
export function envoyProtoRoot(files: readonly string[]): protobuf.Root {
  const dirs = envoyProtoIncludeDirs();
  const r = new protobuf.Root();
  r.resolvePath = (_origin: string, target: string): string => {
    if (path.isAbsolute(target)) return target;
    for (const d of dirs) {
      const candidate = path.join(d, target);
      if (existsSync(candidate)) return candidate;
    }
    // google/protobuf/*.proto are bundled with protobufjs; it recognises the name.
    return target;
  };
  r.loadSync([...files]);
  r.resolveAll();
  return r;
}

let root: protobuf.Root | undefined;

/** A protobufjs Root with als.proto and its imports loaded (camelCase field names). */
export function accessLogProtoRoot(): protobuf.Root {
  root ??= envoyProtoRoot([ALS_PROTO_FILE]);
  return root;
}

function streamMessageType(): protobuf.Type {
  return accessLogProtoRoot().lookupType(STREAM_ACCESS_LOGS_MESSAGE);
}

function camel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/**
 * Rewrites a plain object keyed either by proto (snake_case) or camelCase field names into
 * the camelCase shape protobufjs' fromObject expects. Map keys are left untouched.
 * A `Date` is accepted where a google.protobuf.Timestamp is expected.
 */
function normalize(type: protobuf.Type, obj: Record<string, unknown>): Record<string, unknown> {
  if (type.fullName === '.google.protobuf.Timestamp' && (obj as unknown) instanceof Date) {
    const ms = (obj as unknown as Date).getTime();
    const seconds = Math.floor(ms / 1000);
    return { seconds, nanos: (ms - seconds * 1000) * 1e6 };
  }
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(obj)) {
    const field = type.fields[key] ?? type.fields[camel(key)];
    if (!field) {
      out[key] = value;
      continue;
    }
    const rt = field.resolve().resolvedType;
    if (rt instanceof protobuf.Type && value != null) {
      if (field.map) {
        const m: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
          m[k] = normalize(rt, v as Record<string, unknown>);
        }
        out[field.name] = m;
      } else if (field.repeated) {
        out[field.name] = (value as Record<string, unknown>[]).map((v) => normalize(rt, v));
      } else {
        out[field.name] = normalize(rt, value as Record<string, unknown>);
      }
    } else {
      out[field.name] = value;
    }
  }
  return out;
}

/**
 * Encodes a StreamAccessLogsMessage given as a plain object (snake_case as in the .proto and
 * as @grpc/proto-loader with keepCase expects, or protobufjs camelCase; enums by name or
 * number; Timestamps as {seconds, nanos} or Date). For fixtures, tests and the demo generator.
 */
export function encodeStreamAccessLogsMessage(msg: object): Buffer {
  const type = streamMessageType();
  const normalized = normalize(type, msg as Record<string, unknown>);
  const bytes = type.encode(type.fromObject(normalized)).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Decodes with protobufjs (the slow reference path; tests and benchmarks only). */
export function decodeStreamAccessLogsMessageWithProtobufjs(bytes: Uint8Array): protobuf.Message {
  return streamMessageType().decode(bytes);
}

let serviceDefinition: protoLoader.ServiceDefinition | undefined;

/**
 * The @grpc/proto-loader ServiceDefinition of AccessLogService (keys: `StreamAccessLogs`),
 * loaded from the protos inside @grpc/grpc-js-xds. Usable with grpc-js `server.addService`;
 * the collector overrides `StreamAccessLogs.requestDeserialize` with `(b: Buffer) => b` so
 * raw bytes reach {@link AccessLogDecoder.decode}.
 */
export function loadAccessLogServiceDefinition(): protoLoader.ServiceDefinition {
  if (serviceDefinition) return serviceDefinition;
  const pkg = protoLoader.loadSync(ALS_PROTO_FILE, {
    includeDirs: envoyProtoIncludeDirs(),
    keepCase: true,
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
  });
  const def = pkg[ACCESS_LOG_SERVICE];
  if (!def || !('StreamAccessLogs' in def)) {
    throw new Error(`${ACCESS_LOG_SERVICE} not found in ${ALS_PROTO_FILE}`);
  }
  serviceDefinition = def as protoLoader.ServiceDefinition;
  return serviceDefinition;
}
