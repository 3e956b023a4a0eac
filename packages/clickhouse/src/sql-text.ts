/**
 * The few pieces of SQL text gatescope writes itself: identifiers it checked, string literals of values it
 * owns (configuration, never request text), and SETTINGS clauses. Request values travel as bound parameters
 * (`{name:Type}`); ad-hoc SQL is parsed by ClickHouse, never spliced (see @gatescope/query's SQL guard).
 */
import { ident } from './ident.js';

/** A ClickHouse string literal: backslash and quote escaped, control characters as escapes. */
export function quoteString(value: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is escaped here
  const body = value.replace(/[\\']/g, '\\$&').replace(/[\u0000-\u001f\u007f]/g, (c) => {
    const named: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\0': '\\0' };
    return named[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
  return `'${body}'`;
}

/** A setting value: a number, a string, or a map of strings (`additional_table_filters`). */
export type SettingValue = number | string | boolean | Readonly<Record<string, string>>;

function literal(value: SettingValue): string {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`setting value must be finite, got ${value}`);
    return String(value);
  }
  if (typeof value === 'boolean') return value ? '1' : '0';
  if (typeof value === 'string') return quoteString(value);
  return `{${Object.entries(value)
    .map(([k, v]) => `${quoteString(k)}: ${quoteString(v)}`)
    .join(', ')}}`;
}

/**
 * ` SETTINGS a = 1, b = 'x'` for the end of a statement, in the given order (a later setting of the same list
 * overrides an earlier one, so callers put `readonly` last). Empty when there is nothing to set.
 */
export function settingsClause(settings: Readonly<Record<string, SettingValue | undefined>>): string {
  const parts = Object.entries(settings)
    .filter((e): e is [string, SettingValue] => e[1] !== undefined)
    .map(([k, v]) => `${ident(k)} = ${literal(v)}`);
  return parts.length ? ` SETTINGS ${parts.join(', ')}` : '';
}
