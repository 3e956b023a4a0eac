import { describe, expect, it } from 'vitest';
import { checkHostAndOrigin, parseHostHeader } from './host-policy.js';

const tokenless = { tokenless: true, allowedHosts: ['gatescope.internal'], anyIpLiteral: false };
const withTokens = { tokenless: false, allowedHosts: ['gatescope.internal'], anyIpLiteral: false };
/** GATESCOPE_ALLOW_UNAUTHENTICATED=1 on a non-loopback address: probes by pod IP are answered. */
const openOnPodIp = { ...tokenless, anyIpLiteral: true };

describe('parseHostHeader', () => {
  it('reads names, IPv4 and bracketed IPv6 with or without a port', () => {
    expect(parseHostHeader('LocalHost:8080')).toEqual({ hostname: 'localhost', port: '8080' });
    expect(parseHostHeader('127.0.0.1')).toEqual({ hostname: '127.0.0.1', port: undefined });
    expect(parseHostHeader('[::1]:9')).toEqual({ hostname: '::1', port: '9' });
    expect(parseHostHeader('example.com.')).toEqual({ hostname: 'example.com', port: undefined });
  });
  it('refuses what is not a host', () => {
    for (const bad of ['', 'a b', 'user@host', 'host/path', '[nothex]:1', 'x:port', '::1']) {
      expect(parseHostHeader(bad), bad).toBeUndefined();
    }
  });
});

describe('checkHostAndOrigin without tokens (DNS rebinding)', () => {
  it('answers loopback names and addresses and the listed names, on any port', () => {
    for (const host of [
      'localhost',
      'localhost:8080',
      '127.0.0.1:8080',
      '127.8.9.10',
      '[::1]:8080',
      'gatescope.internal:443',
      'GATESCOPE.internal',
    ]) {
      expect(checkHostAndOrigin(tokenless, { host }), host).toEqual({ ok: true });
    }
  });
  it('answers other IP literals only when serving a non-loopback address without tokens on purpose', () => {
    for (const host of ['10.1.2.3:8080', '[fd00::1]:8080', '192.168.1.5']) {
      expect(checkHostAndOrigin(tokenless, { host }), host).toMatchObject({ ok: false, status: 421 });
      expect(checkHostAndOrigin(openOnPodIp, { host }), host).toEqual({ ok: true });
    }
    expect(checkHostAndOrigin(openOnPodIp, { host: 'attacker.example' })).toMatchObject({ status: 421 });
  });
  it('refuses any other name with 421 and says what to configure', () => {
    for (const host of [
      'attacker.example:8080',
      'localhost.attacker.example',
      '127.0.0.1.nip.io',
      'gatescope.internal.evil',
      '',
      undefined,
    ]) {
      const v = checkHostAndOrigin(tokenless, { host });
      expect(v, String(host)).toMatchObject({ ok: false, status: 421, code: 'ERR_HOST_NOT_ALLOWED' });
      if (!v.ok) expect(v.message).toMatch(/GATESCOPE_ALLOWED_HOSTS.*GATESCOPE_TOKENS/);
    }
  });
  it('does not check Host when tokens are configured', () => {
    expect(checkHostAndOrigin(withTokens, { host: 'attacker.example' })).toEqual({ ok: true });
  });
});

describe('checkHostAndOrigin: Origin, in every mode', () => {
  for (const policy of [tokenless, withTokens]) {
    const mode = policy.tokenless ? 'tokenless' : 'tokens';
    it(`${mode}: accepts no Origin, the same origin and listed names`, () => {
      expect(checkHostAndOrigin(policy, { host: '127.0.0.1:8080' })).toEqual({ ok: true });
      expect(checkHostAndOrigin(policy, { host: '127.0.0.1:8080', origin: 'http://127.0.0.1:8080' })).toEqual(
        { ok: true },
      );
      expect(checkHostAndOrigin(policy, { host: 'localhost', origin: 'http://localhost:80' })).toEqual({
        ok: true,
      });
      expect(checkHostAndOrigin(policy, { host: 'localhost:443', origin: 'https://localhost' })).toEqual({
        ok: true,
      });
      expect(
        checkHostAndOrigin(policy, { host: '127.0.0.1:8080', origin: 'https://gatescope.internal' }),
      ).toEqual({ ok: true });
    });
    it(`${mode}: refuses foreign, null, other-port and non-http origins with 403`, () => {
      for (const origin of [
        'http://attacker.example',
        'http://127.0.0.1:9999',
        'null',
        'file://',
        'chrome-extension://abc',
        'not a url',
        'http://gatescope.internal.evil',
      ]) {
        const v = checkHostAndOrigin(policy, { host: '127.0.0.1:8080', origin });
        expect(v, origin).toMatchObject({ ok: false, status: 403, code: 'ERR_ORIGIN_NOT_ALLOWED' });
      }
    });
  }
  it('a rebinding page is same-origin with its own Host, so the Host check is what stops it', () => {
    const rebound = { host: 'attacker.example:8080', origin: 'http://attacker.example:8080' };
    expect(checkHostAndOrigin(withTokens, rebound)).toEqual({ ok: true });
    expect(checkHostAndOrigin(tokenless, rebound)).toMatchObject({ status: 421 });
  });
});
