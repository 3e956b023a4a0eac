/** A user rule: `pattern` (regex source) must match the whole path without its query string. */
export interface PathTemplateRule {
  pattern: string;
  template: string;
}

/** A validated rule, ready to apply. */
export interface CompiledRule {
  readonly regex: RegExp;
  readonly template: string;
}

/** Thrown for rules that cannot be used; the message names the rule index and what to fix. */
export class PathTemplateRuleError extends Error {
  readonly code = 'ERR_PATH_TEMPLATE_RULE';
  constructor(message: string) {
    super(message);
    this.name = 'PathTemplateRuleError';
  }
}

/**
 * Validates and compiles rules. A pattern is anchored as `^(?:pattern)$` so it must match the whole
 * path (without query). The template may use `$1`…`$99`, `$<name>`, `$&` and `$$` like
 * `String.prototype.replace`; references to groups the pattern does not have are rejected.
 *
 * Patterns are the operator's code: they run only on cache misses, but a pattern with nested
 * quantifiers (`(a+)+`) can still backtrack badly on long paths, so keep them linear.
 */
export function compileRules(rules: readonly PathTemplateRule[]): CompiledRule[] {
  if (!Array.isArray(rules)) throw new PathTemplateRuleError('path template rules must be an array');
  return rules.map((rule, index) => compileRule(rule, index));
}

function compileRule(rule: unknown, index: number): CompiledRule {
  const where = `path template rule ${index}`;
  if (typeof rule !== 'object' || rule === null || Array.isArray(rule)) {
    throw new PathTemplateRuleError(`${where}: expected an object { "pattern": string, "template": string }`);
  }
  const { pattern, template } = rule as Record<string, unknown>;
  if (typeof pattern !== 'string' || pattern.length === 0) {
    throw new PathTemplateRuleError(
      `${where}: "pattern" must be a non-empty string (a regular expression source)`,
    );
  }
  if (typeof template !== 'string' || template.length === 0) {
    throw new PathTemplateRuleError(`${where}: "template" must be a non-empty string such as "/users/{id}"`);
  }
  let regex: RegExp;
  let probe: RegExpExecArray;
  try {
    regex = new RegExp(`^(?:${pattern})$`);
    // An alternative that always matches the empty string reveals the group count and names.
    probe = new RegExp(`(?:${pattern})|`).exec('') as RegExpExecArray;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new PathTemplateRuleError(
      `${where}: "pattern" ${JSON.stringify(pattern)} is not a valid JavaScript regular expression (${reason}); ` +
        'escape literal characters such as ( ) [ ] . ? + * with a backslash',
    );
  }
  const groupCount = probe.length - 1;
  const names = probe.groups ? Object.keys(probe.groups) : [];
  checkReferences(template, groupCount, names, where);
  return { regex, template };
}

function checkReferences(template: string, groupCount: number, names: string[], where: string): void {
  for (let i = 0; i < template.length; i++) {
    if (template.charCodeAt(i) !== 36 /* $ */) continue;
    const next = template[i + 1];
    if (next === '$' || next === '&') {
      i++;
    } else if (next === '<') {
      const close = template.indexOf('>', i + 2);
      if (close < 0)
        throw new PathTemplateRuleError(`${where}: "template" has an unterminated "$<" group reference`);
      const name = template.slice(i + 2, close);
      if (!names.includes(name)) {
        const known = names.length > 0 ? names.map((n) => `$<${n}>`).join(', ') : 'none';
        throw new PathTemplateRuleError(
          `${where}: "template" references $<${name}> but the pattern has no group named "${name}" (named groups: ${known})`,
        );
      }
      i = close;
    } else if (next !== undefined && next >= '0' && next <= '9') {
      let ref = next;
      if (groupCount >= 10 && template[i + 2] !== undefined && /[0-9]/.test(template[i + 2]!))
        ref += template[i + 2];
      const n = Number(ref);
      if (n === 0 || n > groupCount) {
        throw new PathTemplateRuleError(
          `${where}: "template" references $${ref} but the pattern has ${groupCount} capture group(s); ` +
            'use $1…$n for groups that exist, or $$ for a literal "$"',
        );
      }
      i += ref.length;
    }
  }
}

/** Template from the first rule whose pattern matches `path` (no query), or null when none does. */
export function applyRules(rules: readonly CompiledRule[], path: string): string | null {
  for (const rule of rules) {
    if (rule.regex.test(path)) return path.replace(rule.regex, rule.template);
  }
  return null;
}

/**
 * Parses the JSON array of rules from config (e.g. `GATESCOPE_PATH_TEMPLATE_RULES`) and validates it:
 * `[{"pattern": "/users/([^/]+)/avatar", "template": "/users/{user}/avatar"}]`.
 * Throws {@link PathTemplateRuleError} with a message naming the problem and the rule index.
 */
export function parsePathTemplateRules(json: string): PathTemplateRule[] {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new PathTemplateRuleError(
      `path template rules are not valid JSON (${reason}); expected an array like ` +
        '[{"pattern": "/users/([^/]+)", "template": "/users/{id}"}]',
    );
  }
  if (!Array.isArray(value)) {
    throw new PathTemplateRuleError(
      'path template rules must be a JSON array of { "pattern": string, "template": string } objects',
    );
  }
  compileRules(value as PathTemplateRule[]);
  return value.map((rule: PathTemplateRule) => ({ pattern: rule.pattern, template: rule.template }));
}
