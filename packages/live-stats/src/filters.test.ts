import { describe, expect, it } from 'vitest';
import { filterClause, filterKey, LiveFilterError, normaliseFilters } from './filters.js';

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

describe('filterClause', () => {
  it('passes every value as a query parameter, never in the SQL text', () => {
    const evil = "x' OR 1=1 --";
    const f = filterClause({ route: evil, authority: evil, gateway: evil, upstream_cluster: evil });
    expect(f.sql).not.toContain(evil);
    expect(f.sql).toBe(
      ' AND route_name = {f_route:String} AND authority = {f_authority:String}' +
        ' AND (node_id = {f_gateway:String} OR node_cluster = {f_gateway:String})' +
        ' AND upstream_cluster = {f_upstream_cluster:String}',
    );
    expect(f.params).toEqual({ f_route: evil, f_authority: evil, f_gateway: evil, f_upstream_cluster: evil });
  });

  it('is empty without filters', () => {
    expect(filterClause({})).toEqual({ sql: '', params: {} });
  });
});
