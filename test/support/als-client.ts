import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

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
