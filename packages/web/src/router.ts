/**
 * Hash router: `#/page?key=value…`. The URL holds the whole view state (range, filters, sort) so a link
 * reproduces a view.
 */
export interface Route {
  page: string;
  params: URLSearchParams;
}

export function current(): Route {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query] = raw.split('?', 2);
  return { page: path || 'overview', params: new URLSearchParams(query ?? '') };
}

export function href(page: string, params: Record<string, string | number | undefined | null> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return `#/${page}${s ? `?${s}` : ''}`;
}

/** Change some params of the current view. `replace` keeps history clean for live tweaks (sort, filters). */
export function update(changes: Record<string, string | number | undefined | null>, replace = true): void {
  const { page, params } = current();
  const merged: Record<string, string> = Object.fromEntries(params);
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined || v === null || v === '') delete merged[k];
    else merged[k] = String(v);
  }
  const next = href(page, merged);
  if (replace) history.replaceState(null, '', next);
  else location.hash = next;
}
