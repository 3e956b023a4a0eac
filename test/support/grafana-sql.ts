/**
 * Grafana's ClickHouse data source (grafana-clickhouse-datasource 4.x) turns a panel's SQL into a statement in two
 * steps; this reproduces both for tests, as the plugin documents and implements them:
 *
 * 1. In the browser (`applyTemplateVariables`): `$__conditionalAll(condition, $var)` becomes `1=1` when the
 *    variable is All (`$__all`) or empty, else the condition; then template variables (`$var`, `${var}`) are
 *    replaced, a multi-value variable by its values quoted and comma-joined (`'a','b'`), a single value as is.
 * 2. In the backend (pkg/macros): `$__fromTime`/`$__toTime` -> `toDateTime(<unix s>)`, `$__fromTime_ms`/
 *    `$__toTime_ms` -> `fromUnixTimestamp64Milli(<unix ms>)`, `$__timeFilter(c)` -> `c >= toDateTime(..) AND
 *    c <= toDateTime(..)`, `$__timeFilter_ms(c)` likewise in ms, `$__timeInterval(c)` ->
 *    `toStartOfInterval(toDateTime(c), INTERVAL <s> second)`, `$__interval_s` -> the panel interval in seconds
 *    (at least 1).
 */
export interface GrafanaQueryContext {
  fromMs: number;
  toMs: number;
  /** The panel's interval (Grafana's `$__interval`), seconds. */
  intervalS: number;
  /** Template variables: a string, or the selected values of a multi-value one (`['$__all']` for All). */
  vars: Record<string, string | string[]>;
}

/** The arguments of a macro call starting at `open` (the index of its `(`), split at top-level commas. */
function macroArgs(sql: string, open: number): { args: string[]; end: number } {
  let depth = 0;
  let start = open + 1;
  const args: string[] = [];
  for (let i = open; i < sql.length; i++) {
    const c = sql[i];
    if (c === '(') depth++;
    else if (c === ')') {
      depth--;
      if (depth === 0) {
        args.push(sql.slice(start, i));
        return { args, end: i + 1 };
      }
    } else if (c === ',' && depth === 1) {
      args.push(sql.slice(start, i));
      start = i + 1;
    }
  }
  throw new Error(`unbalanced macro call at ${open}: ${sql.slice(open, open + 60)}`);
}

function conditionalAll(sql: string, vars: GrafanaQueryContext['vars']): string {
  const macro = '$__conditionalAll(';
  for (let at = sql.lastIndexOf(macro); at !== -1; at = sql.lastIndexOf(macro)) {
    const { args, end } = macroArgs(sql, at + macro.length - 1);
    if (args.length !== 2) throw new Error(`$__conditionalAll takes 2 arguments: ${sql.slice(at, end)}`);
    const name = /\$\{?(\w+)\}?/.exec(args[1].trim())?.[1] ?? '';
    const v = vars[name];
    const all = v === '' || v === '$__all' || (Array.isArray(v) && (v.length === 0 || v.includes('$__all')));
    sql = sql.slice(0, at) + (all ? '1=1' : args[0]) + sql.slice(end);
  }
  return sql;
}

function templateVariables(sql: string, vars: GrafanaQueryContext['vars']): string {
  return sql.replace(/\$\{(\w+)(?::[\w]+)?\}|\$(\w+)/g, (whole, a?: string, b?: string) => {
    const name = (a ?? b)!;
    if (!(name in vars)) return whole; // `$__…` macros and unknown names are left for the backend
    const v = vars[name];
    return Array.isArray(v) ? `'${v.join("','")}'` : v;
  });
}

function backendMacros(sql: string, ctx: GrafanaQueryContext): string {
  const s = (ms: number) => `toDateTime(${Math.floor(ms / 1000)})`;
  const ms = (v: number) => `fromUnixTimestamp64Milli(${v})`;
  const intervalS = Math.max(Math.floor(ctx.intervalS), 1);
  const withArg = (name: string, render: (col: string) => string) => {
    const token = `$__${name}(`;
    for (let at = sql.indexOf(token); at !== -1; at = sql.indexOf(token)) {
      const { args, end } = macroArgs(sql, at + token.length - 1);
      sql = sql.slice(0, at) + render(args[0].trim()) + sql.slice(end);
    }
  };
  withArg('timeFilter_ms', (c) => `${c} >= ${ms(ctx.fromMs)} AND ${c} <= ${ms(ctx.toMs)}`);
  withArg('timeFilter', (c) => `${c} >= ${s(ctx.fromMs)} AND ${c} <= ${s(ctx.toMs)}`);
  withArg('timeInterval', (c) => `toStartOfInterval(toDateTime(${c}), INTERVAL ${intervalS} second)`);
  return sql
    .replace(/\$__fromTime_ms\b/g, ms(ctx.fromMs))
    .replace(/\$__toTime_ms\b/g, ms(ctx.toMs))
    .replace(/\$__fromTime\b/g, s(ctx.fromMs))
    .replace(/\$__toTime\b/g, s(ctx.toMs))
    .replace(/\$__interval_s\b/g, String(intervalS));
}

/** The statement the plugin sends to ClickHouse for `rawSql` in this context. */
export function expandGrafanaSql(rawSql: string, ctx: GrafanaQueryContext): string {
  const sql = backendMacros(templateVariables(conditionalAll(rawSql, ctx.vars), ctx.vars), ctx);
  const left = /\$__\w+|\$\{?\w+\}?/.exec(sql);
  if (left) throw new Error(`unexpanded ${left[0]} in: ${sql}`);
  return sql;
}
