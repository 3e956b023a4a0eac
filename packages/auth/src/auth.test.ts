import { describe, expect, it } from 'vitest';
import { authenticate, bearerToken, hasScope } from './auth.js';

const tokens = [
  { name: 'grafana', token: 'read-secret-123', scopes: ['read' as const] },
  { name: 'ops', token: 'admin-secret-456', scopes: ['read' as const, 'admin' as const] },
];

describe('authenticate', () => {
  it('lets everyone in when no token is configured (loopback-only mode)', () => {
    expect(authenticate({ tokens: [] }, undefined, 'admin')).toMatchObject({
      ok: true,
      principal: 'anonymous',
    });
  });
  it('distinguishes a missing token (401), a wrong token (401) and a missing scope (403)', () => {
    expect(authenticate({ tokens }, undefined, 'read')).toMatchObject({
      ok: false,
      status: 401,
      code: 'ERR_AUTH_REQUIRED',
    });
    expect(authenticate({ tokens }, 'nope-nope-nope', 'read')).toMatchObject({
      ok: false,
      status: 401,
      code: 'ERR_AUTH_INVALID',
    });
    expect(authenticate({ tokens }, 'read-secret-123', 'admin')).toMatchObject({
      ok: false,
      status: 403,
      code: 'ERR_AUTH_FORBIDDEN',
    });
  });
  it('accepts the right token with the right scope', () => {
    expect(authenticate({ tokens }, 'read-secret-123', 'read')).toMatchObject({
      ok: true,
      principal: 'grafana',
    });
    expect(authenticate({ tokens }, 'admin-secret-456', 'admin')).toMatchObject({
      ok: true,
      principal: 'ops',
    });
  });
  it('orders scopes: admin covers read, read covers metrics, never the other way', () => {
    expect(hasScope(['admin'], 'read')).toBe(true);
    expect(hasScope(['admin'], 'metrics')).toBe(true);
    expect(hasScope(['read'], 'metrics')).toBe(true);
    expect(hasScope(['read'], 'admin')).toBe(false);
    expect(hasScope(['metrics'], 'read')).toBe(false);
    expect(hasScope([], 'metrics')).toBe(false);
    const prom = [{ name: 'prom', token: 'metrics-secret-1', scopes: ['metrics' as const] }];
    expect(authenticate({ tokens: prom }, 'metrics-secret-1', 'read')).toMatchObject({ status: 403 });
    expect(authenticate({ tokens }, 'read-secret-123', 'metrics')).toMatchObject({ ok: true });
  });
  it('parses bearer headers', () => {
    expect(bearerToken('Bearer abc.def')).toBe('abc.def');
    expect(bearerToken('bearer   xyz ')).toBe('xyz');
    expect(bearerToken('Basic Zm9vOmJhcg==')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
});
