import { createHash, timingSafeEqual } from 'node:crypto';
import {
  TOKEN_SCOPES,
  type ApiToken,
  type Config,
  type TokenRestriction,
  type TokenScope,
} from '@gatescope/config';

/**
 * The outcome of checking a presented secret against the configured tokens, shared by the HTTP API
 * (`Authorization: Bearer …`) and the live socket (`auth.token`), so both answer the same way.
 * - `anonymous`: no tokens are configured; gatescope then only listens on loopback (enforced by config).
 * - 401 `ERR_AUTH_REQUIRED` / `ERR_AUTH_INVALID`; 403 `ERR_AUTH_FORBIDDEN` when the scope is missing.
 */
/** Who is asking, once authenticated: what the API (`req.auth`) and the live socket (`socket.data.auth`) keep. */
export interface Principal {
  principal: string;
  scopes: TokenScope[];
  /** Set when the token may see only some authorities / gateways; enforced in every query. */
  restriction?: TokenRestriction;
}
export type AuthOutcome =
  | ({ ok: true } & Principal)
  | {
      ok: false;
      status: 401 | 403;
      code: 'ERR_AUTH_REQUIRED' | 'ERR_AUTH_INVALID' | 'ERR_AUTH_FORBIDDEN';
      message: string;
    };

/**
 * Query parameter names that carry a credential when someone puts one in a URL. gatescope never reads them:
 * the HTTP boundary refuses such requests and the logger masks their values.
 */
export const CREDENTIAL_QUERY_PARAMS: readonly string[] = [
  'token',
  'access_token',
  'auth_token',
  'api_key',
  'apikey',
  'bearer',
];

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Whether a token's scopes cover `required`: `admin` covers `read`, `read` covers `metrics`. */
export function hasScope(scopes: readonly TokenScope[], required: TokenScope): boolean {
  const needed = TOKEN_SCOPES.indexOf(required);
  return scopes.some((s) => TOKEN_SCOPES.indexOf(s) >= needed);
}

/** Extract the secret from an `Authorization: Bearer <token>` header value. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : undefined;
}

export function authenticate(
  auth: Pick<Config['auth'], 'tokens'>,
  presented: string | undefined,
  required: TokenScope,
): AuthOutcome {
  if (auth.tokens.length === 0)
    return { ok: true, principal: 'anonymous', scopes: ['metrics', 'read', 'admin'] };
  if (!presented) {
    return {
      ok: false,
      status: 401,
      code: 'ERR_AUTH_REQUIRED',
      message:
        'This gatescope requires a token: send "Authorization: Bearer <token>" (socket.io: auth.token)',
    };
  }
  // Compare digests so every comparison takes the same time whatever the lengths.
  const d = digest(presented);
  const match: ApiToken | undefined = auth.tokens.find((t) => timingSafeEqual(digest(t.token), d));
  if (!match) {
    return {
      ok: false,
      status: 401,
      code: 'ERR_AUTH_INVALID',
      message: 'The token is not valid for this gatescope',
    };
  }
  if (!hasScope(match.scopes, required)) {
    return {
      ok: false,
      status: 403,
      code: 'ERR_AUTH_FORBIDDEN',
      message: `Token "${match.name}" lacks the "${required}" scope needed here`,
    };
  }
  return { ok: true, principal: match.name, scopes: match.scopes, restriction: match.restriction };
}
