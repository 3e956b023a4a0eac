import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { checkAddress } from '@gatescope/alerts';

/**
 * One webhook POST, connecting only where the SSRF guard allows. Resolve-then-connect: the request's own DNS
 * lookup is replaced by one that resolves the name, checks every address it got, and hands the socket the
 * address it checked, so a name that answers differently the second time (DNS rebinding) cannot slip a
 * private address past the check. IP literals are checked before the request (Node does not look them up).
 * Redirects are not followed (a 3xx is an answer like any other).
 */
export interface PostResult {
  status: number;
  /** Retry-After in ms, when the answer carried one. */
  retryAfterMs?: number;
  /** The address the request was sent to. */
  address: string;
}

export interface PostOptions {
  receiver: string;
  allowPrivate: boolean;
  timeoutMs: number;
  headers: Record<string, string>;
}

/** Retry-After as delta-seconds or an HTTP date, in ms from now; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

export function postJson(url: string, body: string, o: PostOptions): Promise<PostResult> {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  let connectedTo = host;
  if (isIP(host)) checkAddress(o.receiver, host, host, o.allowPrivate);
  const guardedLookup: LookupFunction = (hostname, options, callback) => {
    dnsLookup(hostname, { all: true, family: options.family, hints: options.hints }, (err, addresses) => {
      if (err) return (callback as (e: Error) => void)(err);
      const list = addresses as LookupAddress[];
      try {
        if (list.length === 0) throw new Error(`${hostname} has no address`);
        for (const a of list) checkAddress(o.receiver, hostname, a.address, o.allowPrivate);
      } catch (e) {
        return (callback as (e: Error) => void)(e as Error);
      }
      connectedTo = list[0].address;
      if (options.all) (callback as (e: null, a: LookupAddress[]) => void)(null, list);
      else (callback as (e: null, a: string, f: number) => void)(null, list[0].address, list[0].family);
    });
  };
  const options: RequestOptions = {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'user-agent': 'gatescope-alerts',
      ...o.headers,
    },
    lookup: guardedLookup,
    timeout: o.timeoutMs,
    signal: AbortSignal.timeout(o.timeoutMs),
  };
  const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(u, options, (res) => {
      // Read (and drop) a bounded amount of the answer so the connection can be reused or closed cleanly.
      let seen = 0;
      res.on('data', (chunk: Buffer) => {
        seen += chunk.length;
        if (seen > 64 * 1024) res.destroy();
      });
      const done = () =>
        resolve({
          status: res.statusCode ?? 0,
          retryAfterMs: parseRetryAfter(res.headers['retry-after'] as string | undefined),
          address: connectedTo,
        });
      res.on('end', done);
      res.on('close', done);
      res.on('error', done);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${o.timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}
