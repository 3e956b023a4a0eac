/**
 * The ways one path can be spelled in a request target, and what each spelling must lead to. The classes:
 * - `route`: the router decodes it to the same route (percent-encoded unreserved characters, a query string,
 *   a fragment): it must meet exactly that route's access;
 * - `miss`: it names no route (double slashes, dot segments, case, trailing slash, `;params`, backslashes,
 *   `%2F`, double encoding, NUL): it must meet the not-found rule (a read token, then 404; the UI's index.html
 *   for a GET outside the protected prefixes);
 * - `refused`: refused before routing with 400 and this code (absolute-form targets, invalid encoding,
 *   a credential in the query string).
 */
export type Reach = { kind: 'route' } | { kind: 'miss' } | { kind: 'refused'; code: string };

export interface Spelling {
  name: string;
  target: string;
  reach: Reach;
}

const route: Reach = { kind: 'route' };
const miss: Reach = { kind: 'miss' };
const refused = (code: string): Reach => ({ kind: 'refused', code });

const hex = (c: string, lower = false) => {
  const h = `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`;
  return lower ? h.toLowerCase() : h;
};
const isUnreserved = (c: string) => /[A-Za-z0-9._~-]/.test(c);

/**
 * `/api/v1/sql` -> every spelling class above, each once (duplicates by target dropped). `tail` says what the
 * route's last segment is: a `:param` or `*` also takes what is appended to it (`;x=1`, `%00`), and `*` a
 * trailing slash, so those spellings reach the same route there.
 */
export function spellings(
  path: string,
  origin: string,
  secret: string,
  tail: 'static' | 'param' | 'wildcard' = 'static',
): Spelling[] {
  const appended = tail === 'static' ? miss : route;
  const segments = path.split('/').slice(1); // path starts with '/'
  const out: Spelling[] = [];
  const add = (name: string, target: string, reach: Reach) => {
    if (target !== path || name === 'canonical')
      if (!out.some((s) => s.target === target)) out.push({ name, target, reach });
  };
  add('canonical', path, route);
  add('query', `${path}?x=1`, route);
  add('query-dot-segments', `${path}?/../../healthz`, route);
  add('fragment', `${path}#frag`, route);
  add(
    'percent-encoded first characters',
    '/' + segments.map((s) => (s && isUnreserved(s[0]) ? hex(s[0]) + s.slice(1) : s)).join('/'),
    route,
  );
  const last = segments[segments.length - 1] ?? '';
  if (last)
    add(
      'percent-encoded last segment, lower-case hex',
      '/' + [...segments.slice(0, -1), [...last].map((c) => hex(c, true)).join('')].join('/'),
      route,
    );
  if (segments.length >= 2) {
    add('encoded slash %2F', `/${segments[0]}%2F${segments.slice(1).join('/')}`, miss);
    add('encoded slash %2f', `/${segments[0]}%2f${segments.slice(1).join('/')}`, miss);
    add('double slash inside', `/${segments[0]}//${segments.slice(1).join('/')}`, miss);
    add('dot segment', `/${segments[0]}/./${segments.slice(1).join('/')}`, miss);
    add('backslashes', '/' + segments.join('\\'), miss);
  }
  add('leading double slash', `/${path}`, miss);
  add('dot-dot segment', `/x/..${path}`, miss);
  add('encoded dot-dot', `/x/%2e%2e${path}`, miss);
  add('encoded dot-dot and slash', `/x/%2E%2E%2F${path.slice(1)}`, miss);
  add('upper case', path.toUpperCase(), miss);
  add(
    'capitalised',
    path.replace(/[a-z]/, (c) => c.toUpperCase()),
    miss,
  );
  add('trailing slash', `${path}/`, tail === 'wildcard' ? route : miss);
  add('semicolon parameter', `${path};x=1`, appended);
  add('semicolon in first segment', path.replace(/^\/([^/]+)/, '/$1;jsessionid=1'), miss);
  if (segments[0] && isUnreserved(segments[0][0]))
    add('double percent-encoding', `/%25${hex(segments[0][0]).slice(1)}${path.slice(2)}`, miss);
  add('NUL byte', `${path}%00`, appended);
  add('encoded space', `${path}%20`, appended);
  add('absolute-form', `${origin}${path}`, refused('ERR_REQUEST_TARGET'));
  add('absolute-form, foreign host', `http://attacker.example${path}`, refused('ERR_REQUEST_TARGET'));
  add('invalid percent-encoding', `${path}%zz`, refused('ERR_BAD_URL'));
  add('overlong UTF-8', `${path}%c0%af`, refused('ERR_BAD_URL'));
  add('token in the query', `${path}?token=${secret}`, refused('ERR_TOKEN_IN_URL'));
  add('access_token in the query', `${path}?range=5m&access_token=${secret}`, refused('ERR_TOKEN_IN_URL'));
  return out;
}

export const tailOf = (url: string): 'static' | 'param' | 'wildcard' =>
  url.endsWith('*') ? 'wildcard' : /\/:\w+$/.test(url) ? 'param' : 'static';

/** A concrete path for a route template: parameters get a sample value. */
export function concretePath(url: string): string {
  const samples: Record<string, string> = { route: 'checkout', dimension: 'authority' };
  return url.replace(/:(\w+)/g, (_m, name: string) => samples[name] ?? 'x').replace(/\*$/, 'swagger-ui.css');
}
