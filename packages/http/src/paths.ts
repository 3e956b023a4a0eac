import { CREDENTIAL_QUERY_PARAMS } from '@gatescope/auth';

/**
 * Request targets, read the way an attacker would spell them. Authorization never depends on these functions:
 * it is decided on the route the router matched. They answer two narrower questions about a request that
 * matched no route, and about secrets put where they do not belong.
 */

/** Most rounds of percent-decoding `canonicalPath` applies (`%252561` is three rounds deep). */
const MAX_DECODE_ROUNDS = 4;

function decodeRepeatedly(s: string): string {
  let out = s;
  for (let i = 0; i < MAX_DECODE_ROUNDS && out.includes('%'); i++) {
    let next: string;
    try {
      next = decodeURIComponent(out);
    } catch {
      // Not valid UTF-8 percent-encoding: decode what can be decoded, byte by byte, keep the rest.
      next = out.replace(/%([0-9a-f]{2})/gi, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    }
    if (next === out) break;
    out = next;
  }
  return out;
}

/**
 * The path a request target names, spelled one way: query and fragment dropped, percent-decoding repeated until
 * stable, backslashes as slashes, `;params`, control characters and spaces dropped (`/metrics%00`), empty and
 * `.` segments dropped, `..` resolved, lower case. `/%2561pi//V1/./x/..\\sql;a=b?q` -> `/api/v1/sql`.
 */
export function canonicalPath(target: string): string {
  const path = target.split(/[?#]/, 1)[0];
  const segments: string[] = [];
  for (const raw of decodeRepeatedly(path).replace(/\\/g, '/').toLowerCase().split('/')) {
    // eslint-disable-next-line no-control-regex -- control characters are exactly what is dropped here
    const segment = raw.split(';', 1)[0].replace(/[\x00-\x20\x7f]/g, '');
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  return '/' + segments.join('/');
}

/** The first segment of `canonicalPath(target)`: `api` for any spelling of `/api/v1/sql`, `` for `/`. */
export function firstSegment(target: string): string {
  return canonicalPath(target).split('/')[1] ?? '';
}

const SECRET_PARAMS = new Set(CREDENTIAL_QUERY_PARAMS);

/** The name of a credential-carrying query parameter in `target`, if there is one (any spelling of the name). */
export function secretInQuery(target: string): string | undefined {
  const q = target.indexOf('?');
  if (q < 0) return undefined;
  const query = target.slice(q + 1).split('#', 1)[0];
  for (const pair of query.split(/[&;]/)) {
    const name = decodeRepeatedly(pair.split('=', 1)[0].replace(/\+/g, ' ')).trim().toLowerCase();
    if (SECRET_PARAMS.has(name)) return name;
  }
  return undefined;
}
