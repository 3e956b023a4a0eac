const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A plain ClickHouse identifier (database, table, column) safe to place in SQL unquoted, else a throw. */
export function ident(name: string, what = 'ClickHouse identifier'): string {
  if (!IDENT.test(name)) throw new Error(`not a plain ${what}: ${JSON.stringify(name)}`);
  return name;
}
