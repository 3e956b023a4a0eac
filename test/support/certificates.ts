import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificates {
  dir: string;
  /** The CA that signed the server and the good client certificate. */
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate from another CA: valid in itself, not trusted by the server. */
  strangerCert: string;
  strangerKey: string;
}

/**
 * Generates a throw-away PKI with the openssl command line, as an operator would (EC P-256 keys, one-day
 * validity): a CA, a server certificate for 127.0.0.1 / localhost, a client certificate from that CA, and
 * a client certificate from an unrelated CA.
 */
export function makeTestCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'gs-certs-'));
  const at = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const key = (name: string) =>
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', at(name));
  const ca = (name: string, subject: string) => {
    key(`${name}.key`);
    openssl(
      'req',
      '-x509',
      '-new',
      '-key',
      at(`${name}.key`),
      '-subj',
      subject,
      '-days',
      '1',
      '-out',
      at(`${name}.pem`),
    );
  };
  const leaf = (name: string, signer: string, subject: string, extensions: string) => {
    key(`${name}.key`);
    openssl('req', '-new', '-key', at(`${name}.key`), '-subj', subject, '-out', at(`${name}.csr`));
    writeFileSync(at(`${name}.ext`), extensions);
    openssl(
      'x509',
      '-req',
      '-in',
      at(`${name}.csr`),
      '-CA',
      at(`${signer}.pem`),
      '-CAkey',
      at(`${signer}.key`),
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      at(`${name}.ext`),
      '-out',
      at(`${name}.pem`),
    );
  };
  ca('ca', '/CN=gatescope test CA');
  ca('stranger-ca', '/CN=some other CA');
  leaf(
    'server',
    'ca',
    '/CN=gatescope',
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
  );
  leaf('client', 'ca', '/CN=istio-ingressgateway', 'extendedKeyUsage=clientAuth\n');
  leaf('stranger', 'stranger-ca', '/CN=istio-ingressgateway', 'extendedKeyUsage=clientAuth\n');
  return {
    dir,
    ca: at('ca.pem'),
    serverCert: at('server.pem'),
    serverKey: at('server.key'),
    clientCert: at('client.pem'),
    clientKey: at('client.key'),
    strangerCert: at('stranger.pem'),
    strangerKey: at('stranger.key'),
  };
}
