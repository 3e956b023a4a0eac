import { describe, expect, it } from 'vitest';
import { BoundedCache } from './bounded-cache.js';
import { MAX_CACHED_PATH_LENGTH, OTHER_TEMPLATE, PathTemplater } from './path-templater.js';

describe('PathTemplater', () => {
  it('templates with the built-in normaliser and strips queries', () => {
    const t = new PathTemplater();
    expect(t.template('productpage', '/api/v1/products/0/reviews?x=1')).toBe('/api/v1/products/{id}/reviews');
    expect(t.template('', '/product/OLJCESPC7Z')).toBe('/product/{id}');
  });

  it('rejects a non-positive cap and a negative cache size', () => {
    expect(() => new PathTemplater({ maxTemplatesPerRoute: 0 })).toThrow(
      /maxTemplatesPerRoute must be an integer >= 1/,
    );
    expect(() => new PathTemplater({ cacheSize: -1 })).toThrow(/cache capacity/);
  });
});

describe('cardinality cap', () => {
  it('folds new templates into /{other} after N per route; seen ones keep being returned', () => {
    const t = new PathTemplater({ maxTemplatesPerRoute: 3 });
    expect(t.template('api', '/a')).toBe('/a');
    expect(t.template('api', '/b')).toBe('/b');
    expect(t.template('api', '/c/1')).toBe('/c/{id}');
    expect(t.template('api', '/d')).toBe(OTHER_TEMPLATE);
    expect(t.template('api', '/e')).toBe('/{other}');
    expect(t.template('api', '/a?q=1')).toBe('/a');
    expect(t.template('api', '/c/999')).toBe('/c/{id}');
    expect(t.template('api', '/b')).toBe('/b');
  });

  it('counts per route, including the empty route', () => {
    const t = new PathTemplater({ maxTemplatesPerRoute: 1 });
    expect(t.template('', '/a')).toBe('/a');
    expect(t.template('', '/b')).toBe(OTHER_TEMPLATE);
    expect(t.template('other-route', '/b')).toBe('/b');
    expect(t.template('other-route', '/a')).toBe(OTHER_TEMPLATE);
    expect(t.template('', '/a')).toBe('/a');
  });

  it('defaults to 200 templates per route', () => {
    const t = new PathTemplater();
    for (let i = 0; i < 200; i++)
      expect(t.template('r', `/word${'abcdefghij'[i % 10]}/${'x'.repeat(i + 1)}`)).not.toBe(OTHER_TEMPLATE);
    expect(t.template('r', '/one-more')).toBe(OTHER_TEMPLATE);
  });

  it('applies to rule output as well', () => {
    const t = new PathTemplater({
      maxTemplatesPerRoute: 1,
      rules: [{ pattern: '/t/(\\w+)', template: '/t/$1' }],
    });
    expect(t.template('r', '/t/a')).toBe('/t/a');
    expect(t.template('r', '/t/b')).toBe(OTHER_TEMPLATE);
  });
});

describe('cache', () => {
  it('never holds more than cacheSize entries', () => {
    const t = new PathTemplater({ cacheSize: 100, maxTemplatesPerRoute: 10 });
    for (let i = 0; i < 10_000; i++) t.template('r', `/orders/${i}`);
    expect(t.cacheEntries).toBeLessThanOrEqual(100);
    expect(t.cacheEntries).toBeGreaterThan(0);
  });

  it('serves hits from the cache (same string instance for a rule result)', () => {
    const t = new PathTemplater({ rules: [{ pattern: '/r/(\\d+)', template: '/r/$1' }] });
    const first = t.template('r', '/r/7');
    expect(t.cacheEntries).toBe(1);
    expect(Object.is(t.template('r', '/r/7?again'), first)).toBe(true);
    expect(t.cacheEntries).toBe(1);
  });

  it('does not cache paths longer than MAX_CACHED_PATH_LENGTH, and cacheSize 0 disables it', () => {
    const t = new PathTemplater();
    const long = '/x/' + 'a'.repeat(MAX_CACHED_PATH_LENGTH);
    expect(t.template('r', long)).toBe(long);
    expect(t.cacheEntries).toBe(0);
    const off = new PathTemplater({ cacheSize: 0 });
    expect(off.template('r', '/a/1')).toBe('/a/{id}');
    expect(off.cacheEntries).toBe(0);
  });
});

describe('BoundedCache', () => {
  it('keeps recently used entries across generation rotations and evicts cold ones', () => {
    const cache = new BoundedCache(4); // two generations of 2
    cache.set('hot', 'H');
    cache.set('cold', 'C');
    cache.set('a', 'A'); // rotates: {hot, cold} become old
    expect(cache.get('hot')).toBe('H'); // promoted into the young generation
    cache.set('b', 'B'); // rotates: {a, hot} old; {hot, cold} dropped
    expect(cache.get('hot')).toBe('H');
    expect(cache.get('cold')).toBeUndefined();
    expect(cache.size).toBeLessThanOrEqual(4);
  });
});
