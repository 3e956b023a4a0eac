import { describe, expect, it } from 'vitest';
import type { Config } from '@gatescope/config';
import { createLogger } from './logger.js';

const SECRET = 'adm1n/secret+"quoted"';
const PASSWORD = 'ch-password-42';

function capture() {
  const lines: string[] = [];
  const logger = createLogger(
    {
      logLevel: 'info',
      auth: {
        tokens: [{ name: 'ops', token: SECRET, scopes: ['admin'] }],
        allowUnauthenticated: false,
        rateLimitPerMinute: 1,
      },
      clickhouse: { username: 'default', password: PASSWORD, database: 'gatescope' },
    } as Pick<Config, 'logLevel' | 'auth' | 'clickhouse'>,
    'test',
    { write: (s: string) => void lines.push(s) },
  );
  return { logger, text: () => lines.join('') };
}

describe('createLogger', () => {
  it('masks configured secrets wherever they appear: message, fields, JSON-escaped, percent-encoded', () => {
    const { logger, text } = capture();
    logger.info(`token was ${SECRET}`);
    logger.child({ component: 'api' }).warn({ detail: { note: `x${SECRET}y` } }, 'nested');
    logger.info({ url: `/x?q=${encodeURIComponent(SECRET)}` }, 'encoded');
    logger.error({ err: new Error(`failed with password ${PASSWORD}`) }, 'error');
    const out = text();
    expect(out).not.toContain(SECRET);
    expect(out).not.toContain(JSON.stringify(SECRET).slice(1, -1));
    expect(out).not.toContain(encodeURIComponent(SECRET));
    expect(out).not.toContain(PASSWORD);
    expect(out.match(/\[REDACTED\]/g)?.length).toBeGreaterThanOrEqual(4);
    expect(out).toContain('"component":"api"'); // the rest of the line survives
  });
  it('masks credential headers, credential query parameters, bearer values and JWTs it was never told about', () => {
    const { logger, text } = capture();
    logger.info({
      req: {
        url: '/api/v1/summary?range=1h&token=unknown-secret-1&x=2',
        headers: { authorization: 'Bearer unknown-secret-2', cookie: 'sid=unknown-secret-3' },
      },
      res: { headers: { 'set-cookie': 'sid=unknown-secret-4' } },
    });
    logger.info('proxy said: Authorization: Bearer unknown-secret-5');
    logger.info({ path: '/x?access_token=unknown-secret-6' }, 'api_key');
    logger.info('jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl');
    const out = text();
    for (let i = 1; i <= 6; i++) expect(out).not.toContain(`unknown-secret-${i}`);
    expect(out).not.toContain('eyJzdWIiOiIxMjM0NTY3ODkwIn0');
    expect(out).toContain('range=1h&token=[REDACTED]&x=2');
  });
});
