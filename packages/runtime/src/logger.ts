import { CREDENTIAL_QUERY_PARAMS } from '@gatescope/auth';
import type { Config } from '@gatescope/config';
import { traceFields } from '@gatescope/telemetry';
import { pino, type Logger } from 'pino';

/** Structured fields that hold credentials, wherever a logger call puts them. */
const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers["proxy-authorization"]',
  'headers.cookie',
  'headers["set-cookie"]',
  'auth.token',
  '*.password',
  '*.token',
  '*.secret',
];

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Mask credentials in a finished log line, whatever field or message they ended up in: every configured secret
 * (as written, JSON-escaped and percent-encoded), credential query parameters (`?token=…`), `Bearer …` values
 * and JWT-shaped strings. Applied to every line after pino serialised it, so no call site can forget it.
 */
export function credentialScrubber(secrets: readonly string[]): (line: string) => string {
  const forms = new Set<string>();
  for (const s of secrets) {
    if (s.length < 4) continue; // a 1-3 character "secret" would mask ordinary words; config refuses short tokens
    forms.add(s);
    forms.add(JSON.stringify(s).slice(1, -1));
    forms.add(encodeURIComponent(s));
  }
  const exact =
    forms.size > 0
      ? new RegExp(
          [...forms]
            .sort((a, b) => b.length - a.length)
            .map(escapeRegExp)
            .join('|'),
          'g',
        )
      : undefined;
  const params = new RegExp(
    `((?:[?&;]|%3F|%26)(?:${CREDENTIAL_QUERY_PARAMS.join('|')})(?:=|%3D))[^&;#"\\s\\\\]*`,
    'gi',
  );
  return (line) => {
    let out = exact ? line.replace(exact, '[REDACTED]') : line;
    out = out.replace(params, '$1[REDACTED]');
    out = out.replace(/(Bearer\s+)(?!\[REDACTED\])[^\s"\\,]+/gi, '$1[REDACTED]');
    out = out.replace(/eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]*/g, '[REDACTED]');
    return out;
  };
}

/**
 * The one logger setup of every gatescope process: pino JSON, the configured level, credentials masked, and the
 * active span's `trace_id`/`span_id` on every line written inside one (only while tracing is on).
 */
export function createLogger(
  config: Pick<Config, 'logLevel' | 'auth' | 'clickhouse'>,
  name: string,
  destination?: pino.DestinationStream,
): Logger {
  const scrub = credentialScrubber([
    ...config.auth.tokens.map((t) => t.token),
    ...(config.clickhouse.password ? [config.clickhouse.password] : []),
  ]);
  return pino(
    {
      name,
      level: config.logLevel,
      redact: REDACT_PATHS,
      hooks: { streamWrite: scrub },
      mixin: traceFields,
    },
    destination,
  );
}
