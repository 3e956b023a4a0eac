import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { STREAM_ACCESS_LOGS_PATH } from '@gatescope/als';

/**
 * Drives test/support/als_client.py (Python grpcio: an independent gRPC implementation) to send the
 * given messages, one array per concurrent stream, keeping every stream open like Envoy does. With `tls`
 * the channel uses TLS (trusting `ca`), and mutual TLS when a client `cert` and `key` are given.
 */
export async function sendWithPythonClient(
  target: string,
  streams: Buffer[][],
  tls?: { ca: string; cert?: string; key?: string; serverName?: string },
): Promise<{ child: ChildProcess; finish(): Promise<string> }> {
  const dir = mkdtempSync(join(tmpdir(), 'gs-als-client-'));
  streams.forEach((messages, s) => {
    const d = join(dir, `s${s}`);
    mkdirSync(d);
    messages.forEach((m, i) => writeFileSync(join(d, `${String(i).padStart(3, '0')}.bin`), m));
  });
  const script = fileURLToPath(new URL('./als_client.py', import.meta.url));
  const flags = tls
    ? [
        ['--ca', tls.ca],
        ['--cert', tls.cert],
        ['--key', tls.key],
        ['--server-name', tls.serverName],
      ].flatMap(([flag, value]) => (value ? [flag!, value] : []))
    : [];
  const child = spawn('/usr/bin/python3', [script, target, dir, ...flags], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const check = () => (out.includes('sent') ? resolve() : undefined);
    child.stdout!.on('data', check);
    child.once('exit', (code) => reject(new Error(`ALS client exited early (${code}): ${out}`)));
  });
  return {
    child,
    finish: () =>
      new Promise<string>((resolve) => {
        child.once('exit', () => resolve(out));
        child.stdin!.end();
      }),
  };
}

/**
 * A raw-bytes gRPC client for the ALS method (no generated code, like any other client would be). Each
 * client is its own HTTP/2 connection.
 */
export function alsClient(
  port: number,
  credentials = grpc.credentials.createInsecure(),
  options: grpc.ChannelOptions = {},
) {
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
  const client = new Ctor(`127.0.0.1:${port}`, credentials, {
    'grpc.max_send_message_length': -1,
    // Distinct clients must not share one connection: the per-connection limits are under test.
    'grpc.use_local_subchannel_pool': 1,
    ...options,
  });
  /** Open a stream; `done` settles with the call's final status (Envoy never half-closes, so neither do we). */
  function open(metadata = new grpc.Metadata()) {
    let settle!: (v: { error?: grpc.ServiceError }) => void;
    const done = new Promise<{ error?: grpc.ServiceError }>((r) => (settle = r));
    const call = (
      client as unknown as {
        StreamAccessLogs: (
          metadata: grpc.Metadata,
          cb: grpc.requestCallback<Buffer>,
        ) => grpc.ClientWritableStream<Buffer>;
      }
    ).StreamAccessLogs(metadata, (error) => settle({ error: error ?? undefined }));
    return { call, done };
  }
  /** Resolves once the connection is up. */
  const ready = () =>
    new Promise<void>((resolve, reject) =>
      client.waitForReady(Date.now() + 15_000, (err) => (err ? reject(err) : resolve())),
    );
  return { client, open, ready, close: () => client.close() };
}
