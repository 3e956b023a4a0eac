import { describe, expect, it } from 'vitest';
import { rawSource, whereClause } from '@gatescope/query';
import {
  filterKey,
  liveQueryFilters,
  LiveFilterError,
  normaliseFilters,
  withRestriction,
} from './filters.js';

describe('normaliseFilters / filterKey', () => {
  it('gives identical filters the same key whatever the order, blanks or spaces', () => {
    const a = normaliseFilters({ route: 'checkout', gateway: 'istio-ingressgateway' });
    const b = normaliseFilters({
      gateway: ' istio-ingressgateway ',
      authority: '',
      route: 'checkout',
      upstream_cluster: null,
    });
    expect(filterKey(a)).toBe(filterKey(b));
    expect(filterKey(a)).toBe('route=checkout&gateway=istio-ingressgateway');
  });

  it('keys different filters differently, including values that look like separators', () => {
    expect(filterKey(normaliseFilters({ route: 'a&gateway=b' }))).not.toBe(
      filterKey(normaliseFilters({ route: 'a', gateway: 'b' })),
    );
    expect(filterKey(normaliseFilters({}))).toBe('');
    expect(filterKey(normaliseFilters(undefined))).toBe('');
  });

  it('rejects unknown filters, non-strings and non-objects with an actionable message', () => {
    expect(() => normaliseFilters({ path: '/x' })).toThrow(
      /unknown filter "path"; live filters are route, authority, gateway, upstream_cluster/,
    );
    expect(() => normaliseFilters({ route: 3 })).toThrow(LiveFilterError);
    expect(() => normaliseFilters('route=x')).toThrow(/must be an object/);
    expect(() => normaliseFilters([])).toThrow(/an array/);
    expect(() => normaliseFilters({ route: 'x'.repeat(2000) })).toThrow(/longer than/);
  });
});

describe('liveQueryFilters', () => {
  it('turns live filters into the API filters, so the WHERE clause is the API one (values bound, never in SQL)', () => {
    const evil = "x' OR 1=1 --";
    const f = liveQueryFilters(
      withRestriction(
        { route: evil, authority: evil, gateway: evil, upstream_cluster: evil },
        { gateways: ['g'] },
      ),
    );
    expect(f).toEqual({
      restriction: { gateways: ['g'] },
      route: [evil],
      authority: [evil],
      gateway: [evil],
      upstream_cluster: [evil],
    });
    const where = whereClause(rawSource({ from: 1, to: 2 }), f);
    expect(where.query).not.toContain(evil);
    expect(where.query).toContain('route_name IN {route:Array(String)}');
    expect(where.query).toContain(
      '(node_id IN {restricted_gateway:Array(String)} OR node_cluster IN {restricted_gateway:Array(String)})',
    );
    expect(where.params).toMatchObject({ route: [evil], gateway: [evil], restricted_gateway: ['g'] });
  });
  it('is empty without filters', () => {
    expect(liveQueryFilters({})).toEqual({});
  });
});
