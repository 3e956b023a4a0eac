/**
 * Hash router: `#/page?key=value…`. The URL holds the whole view state (time range, filters, sort, baseline) so a
 * link reproduces a view. Links carry the time selection (`range`, `from`, `to`, `refresh`) from page to page
 * unless they set it themselves.
 */
export interface Route {
  page: string;
  params: URLSearchParams;
}

export const TIME_PARAMS = ['range', 'from', 'to', 'refresh'] as const;

export function current(): Route {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query] = raw.split('?', 2);
  return { page: path || 'overview', params: new URLSearchParams(query ?? '') };
}

type Params = Record<string, string | number | undefined | null>;

/** A link to a page; the current time selection comes along unless `params` names a time param (null drops it). */
export function href(page: string, params: Params = {}): string {
  const q = new URLSearchParams();
  const now = current().params;
  const touchesTime = TIME_PARAMS.some((k) => k in params);
  if (!touchesTime)
    for (const k of TIME_PARAMS) {
      const v = now.get(k);
      if (v) q.set(k, v);
    }
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return `#/${page}${s ? `?${s}` : ''}`;
}

/** Change some params of the current view. `replace` keeps history clean for live tweaks (sort, filters). */
export function update(changes: Params, replace = true): void {
  const { page, params } = current();
  const merged: Record<string, string> = Object.fromEntries(params);
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined || v === null || v === '') delete merged[k];
    else merged[k] = String(v);
  }
  const q = new URLSearchParams(merged).toString();
  const next = `#/${page}${q ? `?${q}` : ''}`;
  if (next === location.hash) return;
  if (replace) history.replaceState(null, '', next);
  else location.hash = next;
}
