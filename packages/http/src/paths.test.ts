import { describe, expect, it } from 'vitest';
import { canonicalPath, firstSegment, secretInQuery } from './paths.js';

describe('canonicalPath', () => {
  it('spells every variant of a path one way', () => {
    for (const spelling of [
      '/api/v1/sql',
      '/%61pi/v1/%73ql',
      '/%2561pi/v1/sql',
      '/%25%36%31pi/v1/sql',
      '//api//v1///sql',
      '/api/./v1/sql/',
      '/x/../api/v1/sql',
      '/x/%2e%2e/api/v1/sql',
      '/x/%2E%2E%2Fapi/v1/sql',
      '/API/V1/SQL',
      '/api\\v1\\sql',
      '/api;jsessionid=1/v1/sql;x=y',
      '/api/v1/sql?x=1#frag',
      '/api%2Fv1%2fsql',
      '/api%00/v1/sql%20',
      '/%20api/v1/sql%09',
    ]) {
      expect(canonicalPath(spelling), spelling).toBe('/api/v1/sql');
    }
  });
  it('keeps dot-dot from climbing above the root and survives invalid encodings', () => {
    expect(canonicalPath('/../../api')).toBe('/api');
    expect(canonicalPath('/%c0%ae%c0%ae/api')).toMatch(/\/api$/);
    expect(canonicalPath('/%zz/api')).toBe('/%zz/api');
    expect(canonicalPath('/')).toBe('/');
  });
  it('gives the first segment', () => {
    expect(firstSegment('//%41PI/v1')).toBe('api');
    expect(firstSegment('/')).toBe('');
    expect(firstSegment('/openapi.json')).toBe('openapi.json');
  });
});

describe('secretInQuery', () => {
  it('finds credential parameters however they are spelled', () => {
    expect(secretInQuery('/?token=abc')).toBe('token');
    expect(secretInQuery('/api/v1/summary?range=1h&access_token=abc')).toBe('access_token');
    expect(secretInQuery('/x?%74oken=abc')).toBe('token');
    expect(secretInQuery('/x?TOKEN=abc')).toBe('token');
    expect(secretInQuery('/x?a=1;api_key=abc')).toBe('api_key');
    expect(secretInQuery('/x?token')).toBe('token');
  });
  it('leaves ordinary parameters alone', () => {
    expect(secretInQuery('/api/v1/summary?range=1h&route=token')).toBeUndefined();
    expect(secretInQuery('/token=1')).toBeUndefined();
    expect(secretInQuery('/x')).toBeUndefined();
  });
});
