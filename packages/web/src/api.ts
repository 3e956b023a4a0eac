/**
 * The query API (`/api/v1/*`), with the bearer token the user typed into the login form, if any. The token lives
 * in this tab's sessionStorage only (gone when the tab closes), never in a URL, and travels as
 * `Authorization: Bearer` (and socket.io `auth.token`).
 */
const TOKEN_KEY = 'gatescope.token';
export const token = (): string | undefined => sessionStorage.getItem(TOKEN_KEY) ?? undefined;
export function setToken(t: string | undefined): void {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** Called when the server wants a (different) token: 401 from the API or the live socket. */
let onAuthRequired: (message: string) => void = () => {};
export function whenAuthRequired(cb: (message: string) => void): void {
  onAuthRequired = cb;
}
export function authRequired(message: string): void {
  onAuthRequired(message);
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Seconds the server asked to wait (429 Retry-After). */
    readonly retryAfterS?: number,
  ) {
    super(message);
  }
}

function headers(json = false): HeadersInit {
  const h: Record<string, string> = {};
  const t = token();
  if (t) h.authorization = `Bearer ${t}`;
  if (json) h['content-type'] = 'application/json';
  return h;
}

async function fail(res: Response): Promise<never> {
  let code = `HTTP_${res.status}`;
  let message = res.statusText || `HTTP ${res.status}`;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string }; message?: string };
    code = body.error?.code ?? code;
    message = body.error?.message ?? body.message ?? message;
  } catch {
    /* not JSON */
  }
  if (res.status === 404 && code === `HTTP_404`)
    message = `${res.url.replace(location.origin, '')} is not available on this gatescope`;
  if (res.status === 401) authRequired(message);
  if (res.status === 403 && code === 'ERR_AUTH_FORBIDDEN')
    message = `${message}: sign out (⏻, top right) and sign in with a token that has it`;
  const retry = Number(res.headers.get('retry-after'));
  throw new ApiError(res.status, code, message, Number.isFinite(retry) && retry > 0 ? retry : undefined);
}

export type Query = Record<string, string | number | undefined | null>;
export function qs(params: Query): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export async function get<T>(path: string, params: Query = {}): Promise<T> {
  const res = await fetch(`${path}${qs(params)}`, { headers: headers() });
  if (!res.ok) return fail(res);
  return (await res.json()) as T;
}

export async function post<T>(path: string, body: unknown, params: Query = {}): Promise<T> {
  const res = await fetch(`${path}${qs(params)}`, {
    method: 'POST',
    headers: headers(true),
    body: JSON.stringify(body),
  });
  if (!res.ok) return fail(res);
  return (await res.json()) as T;
}

/** DELETE (an answer body, if any, is ignored: 204 No Content). */
export async function del(path: string): Promise<void> {
  const res = await fetch(path, { method: 'DELETE', headers: headers() });
  if (!res.ok) return fail(res);
}

export async function postText(path: string, body: unknown, params: Query = {}): Promise<string> {
  const res = await fetch(`${path}${qs(params)}`, {
    method: 'POST',
    headers: headers(true),
    body: JSON.stringify(body),
  });
  if (!res.ok) return fail(res);
  return res.text();
}

/** The first array in a response (tolerates `{ routes: [...] }`, `{ data: [...] }`, a bare array…). */
export function firstArray<T>(body: unknown, preferred: string[] = []): T[] {
  if (Array.isArray(body)) return body as T[];
  if (body && typeof body === 'object') {
    const o = body as Record<string, unknown>;
    for (const k of preferred) if (Array.isArray(o[k])) return o[k] as T[];
    for (const v of Object.values(o)) if (Array.isArray(v)) return v as T[];
  }
  return [];
}

/** POST and hand back the response to read as a stream (errors are thrown like `post`'s). */
export async function postStream(path: string, body: unknown, signal?: AbortSignal): Promise<Response> {
  const res = await fetch(path, {
    method: 'POST',
    headers: headers(true),
    body: JSON.stringify(body),
    signal,
  });
  if (!res.ok) return fail(res);
  return res;
}
