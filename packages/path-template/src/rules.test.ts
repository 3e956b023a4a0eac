import { describe, expect, it } from 'vitest';
import { PathTemplater } from './path-templater.js';
import { PathTemplateRuleError, parsePathTemplateRules } from './rules.js';

describe('custom rules', () => {
  it('take precedence over the built-in normaliser', () => {
    const t = new PathTemplater({ rules: [{ pattern: '/orders/\\d+', template: '/orders/{order}' }] });
    expect(t.template('r', '/orders/12345')).toBe('/orders/{order}');
    expect(t.template('r', '/users/12345')).toBe('/users/{id}');
  });

  it('must match the whole path (anchored), and see it without the query', () => {
    const t = new PathTemplater({ rules: [{ pattern: '/a/\\d+', template: '/a/{n}' }] });
    expect(t.template('r', '/a/1?x=2')).toBe('/a/{n}');
    expect(t.template('r', '/a/1/b')).toBe('/a/{id}/b');
    expect(t.template('r', '/x/a/1')).toBe('/x/a/{id}');
  });

  it('evaluate in order, first match wins', () => {
    const t = new PathTemplater({
      rules: [
        { pattern: '/shop/special', template: '/shop/special' },
        { pattern: '/shop/[^/]+', template: '/shop/{slug}' },
        { pattern: '/shop/.*', template: '/shop/never' },
      ],
    });
    expect(t.template('r', '/shop/special')).toBe('/shop/special');
    expect(t.template('r', '/shop/blue-shoes')).toBe('/shop/{slug}');
    expect(t.template('r', '/shop/a/b')).toBe('/shop/never');
  });

  it('substitute numbered and named capture groups', () => {
    const t = new PathTemplater({
      rules: [
        { pattern: '/(v\\d+)/tenants/[^/]+/(\\w+)', template: '/$1/tenants/{tenant}/$2' },
        { pattern: '/docs/(?<lang>[a-z]{2})/.+', template: '/docs/$<lang>/{page}' },
        { pattern: '/price/.*', template: '/price/$$' },
      ],
    });
    expect(t.template('r', '/v2/tenants/acme/billing')).toBe('/v2/tenants/{tenant}/billing');
    expect(t.template('r', '/docs/fr/getting/started')).toBe('/docs/fr/{page}');
    expect(t.template('r', '/price/12')).toBe('/price/$');
  });

  it('leave output unchanged by the built-in normaliser (a rule result is final)', () => {
    const t = new PathTemplater({ rules: [{ pattern: '/keep/(\\d+)', template: '/keep/$1' }] });
    expect(t.template('r', '/keep/42')).toBe('/keep/42');
  });
});

describe('invalid rules', () => {
  const build = (rules: unknown) => () => new PathTemplater({ rules: rules as never });

  it('reject a bad regex naming the rule index', () => {
    expect(
      build([
        { pattern: '/ok', template: '/ok' },
        { pattern: '/a/(\\d+', template: '/a' },
      ]),
    ).toThrow(
      /path template rule 1: "pattern" "\/a\/\(\\\\d\+" is not a valid JavaScript regular expression/,
    );
    expect(build([{ pattern: '/a/(\\d+', template: '/a' }])).toThrow(PathTemplateRuleError);
  });

  it('reject references to groups the pattern does not have', () => {
    expect(build([{ pattern: '/a/(\\d+)', template: '/a/$2' }])).toThrow(
      /rule 0: "template" references \$2 but the pattern has 1 capture group/,
    );
    expect(build([{ pattern: '/a/(?<id>\\d+)', template: '/a/$<name>' }])).toThrow(
      /rule 0: "template" references \$<name> but the pattern has no group named "name" \(named groups: \$<id>\)/,
    );
    expect(build([{ pattern: '/a', template: '/a/$<x' }])).toThrow(/unterminated/);
  });

  it('reject missing or non-string fields', () => {
    expect(build([{ pattern: '', template: '/a' }])).toThrow(/rule 0: "pattern" must be a non-empty string/);
    expect(build([{ pattern: '/a' }])).toThrow(/rule 0: "template" must be a non-empty string/);
    expect(build(['/a'])).toThrow(/rule 0: expected an object/);
    expect(build({ pattern: '/a', template: '/a' })).toThrow(/must be an array/);
  });
});

describe('parsePathTemplateRules', () => {
  it('parses a JSON array of rules, keeping only pattern and template', () => {
    const json = '[{"pattern": "/u/([^/]+)", "template": "/u/{user}", "note": "x"}]';
    expect(parsePathTemplateRules(json)).toEqual([{ pattern: '/u/([^/]+)', template: '/u/{user}' }]);
    expect(parsePathTemplateRules('[]')).toEqual([]);
  });

  it('explains invalid JSON, non-arrays and invalid rules', () => {
    expect(() => parsePathTemplateRules('[{pattern:')).toThrow(/not valid JSON .*expected an array like/);
    expect(() => parsePathTemplateRules('{"pattern": "/a", "template": "/a"}')).toThrow(
      /must be a JSON array/,
    );
    expect(() => parsePathTemplateRules('[{"pattern": "[", "template": "/a"}]')).toThrow(
      /rule 0: "pattern" "\[" is not a valid JavaScript regular expression/,
    );
  });

  it('round-trips into a working templater', () => {
    const rules = parsePathTemplateRules(
      '[{"pattern": "/u/(?<u>[^/]+)/avatar", "template": "/u/{user}/avatar"}]',
    );
    expect(new PathTemplater({ rules }).template('', '/u/alice/avatar?s=64')).toBe('/u/{user}/avatar');
  });
});
