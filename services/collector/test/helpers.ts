import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { encodeStreamAccessLogsMessage, STREAM_ACCESS_LOGS_PATH } from '@gatescope/als';

export const tempDir = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));

/** A raw-bytes gRPC client for the ALS method (no generated code, like any other client would be). */
export function alsClient(port: number) {
  const Ctor = grpc.makeGenericClientConstructor(
    {
      StreamAccessLogs: {
        path: STREAM_ACCESS_LOGS_PATH,
        requestStream: true,
        responseStream: false,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
    },
    'AccessLogService',
  );
  const client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': -1,
  });
  /** Open a stream; `done` settles with the call's final status (Envoy never half-closes, so neither do we). */
  function open() {
    let settle!: (v: { error?: grpc.ServiceError }) => void;
    const done = new Promise<{ error?: grpc.ServiceError }>((r) => (settle = r));
    const call = (
      client as unknown as {
        StreamAccessLogs: (cb: grpc.requestCallback<Buffer>) => grpc.ClientWritableStream<Buffer>;
      }
    ).StreamAccessLogs((error) => settle({ error: error ?? undefined }));
    return { call, done };
  }
  return { client, open, close: () => client.close() };
}

let seq = 0;
/** An HTTP entry in protobufjs object form; every call gives a distinct request id. */
export function httpEntry(over: Record<string, unknown> = {}) {
  const n = ++seq;
  const { commonProperties: common, ...rest } = over;
  return {
    commonProperties: {
      startTime: { seconds: 1_764_150_000 + n, nanos: 123_456_000 },
      duration: { seconds: 0, nanos: 12_500_000 },
      routeName: 'productpage',
      upstreamCluster: 'outbound|9080||productpage.default.svc.cluster.local',
      downstreamRemoteAddress: { socketAddress: { address: '10.1.2.3', portValue: 40000 + (n % 1000) } },
      ...(common as object),
    },
    protocolVersion: 'HTTP11',
    request: {
      requestMethod: 'GET',
      authority: 'bookinfo.example.com',
      path: `/productpage?u=${n}`,
      requestId: `req-${n}`,
    },
    response: { responseCode: 200, responseBodyBytes: 1024 },
    ...rest,
  };
}

export function message(entries: object[], identifier?: { nodeId: string; cluster?: string }) {
  return encodeStreamAccessLogsMessage({
    ...(identifier && {
      identifier: {
        node: { id: identifier.nodeId, cluster: identifier.cluster ?? 'istio-ingressgateway' },
        logName: 'als',
      },
    }),
    httpLogs: { logEntry: entries },
  });
}
