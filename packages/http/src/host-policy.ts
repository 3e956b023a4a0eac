import { isIP } from 'node:net';
import { isLoopbackHost, type Config } from '@gatescope/config';

/**
 * Which `Host` and `Origin` headers a gatescope answers, for HTTP requests and socket.io handshakes alike.
 *
 * - Without tokens (bound to loopback, everyone is admin) the `Host` must name a loopback address (`localhost`,
 *   127.0.0.0/8, `[::1]`) or a name in `GATESCOPE_ALLOWED_HOSTS`; anything else is 421. DNS rebinding always
 *   arrives with the attacker's *name* in `Host` (the browser believes it talks to the attacker's site), so
 *   refusing unknown names defeats it. Only a deployment that explicitly serves a non-loopback address without
 *   tokens (`GATESCOPE_ALLOW_UNAUTHENTICATED=1`) also answers any IP literal (probes by pod IP): an IP literal
 *   cannot be rebound.
 * - In every mode, an `Origin` (browsers send it on cross-origin requests, same-origin writes and every
 *   WebSocket) must be the request's own host or a name in `GATESCOPE_ALLOWED_HOSTS`; anything else, `null`
 *   included, is 403. CORS is never enabled, so this only makes the server refuse what browsers would in any
 *   case not let a foreign page read, and it closes the socket.io WebSocket, which CORS does not cover.
 */
export interface HostPolicy {
  /** True when no token is configured: the `Host` check applies. */
  tokenless: boolean;
  /** Lower-case names (or IP literals) without port. */
  allowedHosts: readonly string[];
  /** Answer any IP literal in `Host`, not only loopback ones (tokenless on a non-loopback address). */
  anyIpLiteral: boolean;
}

/** The one policy every HTTP port and the live socket apply, from the configuration. */
export function hostPolicyFor(config: Pick<Config, 'auth' | 'http' | 'host'>): HostPolicy {
  return {
    tokenless: config.auth.tokens.length === 0,
    allowedHosts: config.http.allowedHosts,
    anyIpLiteral: !isLoopbackHost(config.host),
  };
}

export type HostVerdict =
  | { ok: true }
  | {
      ok: false;
      status: 421 | 403;
      code: 'ERR_HOST_NOT_ALLOWED' | 'ERR_ORIGIN_NOT_ALLOWED';
      message: string;
    };

interface HostPort {
  hostname: string;
  port?: string;
}

/** `name:port`, `1.2.3.4:port`, `[v6]:port` (port optional) -> lower-case hostname without brackets. */
export function parseHostHeader(host: string | undefined): HostPort | undefined {
  if (!host) return undefined;
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:[\]\s/@]+))(?::(\d{1,5}))?$/i.exec(host.trim());
  if (!m) return undefined;
  const hostname = (m[1] ?? m[2]).toLowerCase().replace(/\.$/, '');
  if (m[1] !== undefined && isIP(hostname) !== 6) return undefined;
  return { hostname, port: m[3] };
}

const DEFAULT_PORT: Record<string, string> = { 'http:': '80', 'https:': '443' };

function isAllowedName(hostname: string, policy: HostPolicy): boolean {
  return (
    isLoopbackHost(hostname) ||
    (policy.anyIpLiteral && isIP(hostname) !== 0) ||
    policy.allowedHosts.includes(hostname)
  );
}

/** A header value quoted back in a message: a safe alphabet only (engine.io sends some refusals as text/html). */
const quote = (value: string | undefined) => `"${(value ?? '').replace(/[^\w.:[\]/-]/g, '?').slice(0, 100)}"`;

const hostHelp =
  'add the name to GATESCOPE_ALLOWED_HOSTS (comma-separated), or set GATESCOPE_TOKENS so that a token, not the address, grants access';

/** Decide on one request's `Host` and `Origin` headers. */
export function checkHostAndOrigin(
  policy: HostPolicy,
  headers: { host?: string | string[]; origin?: string | string[] },
): HostVerdict {
  const hostHeader = Array.isArray(headers.host) ? headers.host[0] : headers.host;
  const host = parseHostHeader(hostHeader);
  if (policy.tokenless && (!host || !isAllowedName(host.hostname, policy))) {
    return {
      ok: false,
      status: 421,
      code: 'ERR_HOST_NOT_ALLOWED',
      message:
        `This gatescope runs without tokens and answers only requests addressed to a loopback address (localhost, 127.0.0.1, [::1]) or a ` +
        `name in GATESCOPE_ALLOWED_HOSTS, not Host ${quote(hostHeader)}: ${hostHelp}`,
    };
  }
  const originHeader = Array.isArray(headers.origin) ? headers.origin[0] : headers.origin;
  if (originHeader === undefined) return { ok: true };
  let origin: URL | undefined;
  try {
    origin = new URL(originHeader);
  } catch {
    origin = undefined;
  }
  if (origin && (origin.protocol === 'http:' || origin.protocol === 'https:')) {
    const originHostname = origin.hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
    const originPort = origin.port || DEFAULT_PORT[origin.protocol];
    const sameHost =
      !!host &&
      host.hostname === originHostname &&
      (host.port ?? DEFAULT_PORT[origin.protocol]) === originPort;
    if (sameHost || policy.allowedHosts.includes(originHostname)) return { ok: true };
  }
  return {
    ok: false,
    status: 403,
    code: 'ERR_ORIGIN_NOT_ALLOWED',
    message:
      `Cross-origin request from ${quote(originHeader)} refused: gatescope serves its own UI and API clients that send ` +
      'no Origin. If that page is gatescope reached under another name (a proxy that rewrites Host), add the name ' +
      'to GATESCOPE_ALLOWED_HOSTS',
  };
}
