import { ident } from '@gatescope/clickhouse';
import type { Filters } from './params.js';
import type { Source } from './plan.js';
import { statsColumns, whereClause, type BuiltQuery } from './sql.js';

/**
 * Questions the UI asks to find its way: which values a dimension takes in a range (autocomplete, "did you mean"),
 * where requests flow (gateway -> route -> upstream cluster, the routing map), which tables and columns the SQL
 * console can read. Parameterised like every other query; the caller adds the limits.
 */

/** Dimensions with suggested values, and the column (expression) that holds them in every source keeping them. */
export const VALUE_DIMENSIONS = {
  route: 'route_name',
  authority: 'authority',
  upstream_cluster: 'upstream_cluster',
  gateway: "if(node_cluster != '', node_cluster, node_id)",
  method: 'method',
  response_flag: 'arrayJoin(response_flags)',
  path_template: 'path_template',
} as const;
export type ValueDimension = keyof typeof VALUE_DIMENSIONS;

/** The gateway of a request as the map names it: its Envoy node cluster, else its node id. */
export const GATEWAY_EXPR = VALUE_DIMENSIONS.gateway;

export function valuesQuery(
  database: string,
  source: Source,
  filters: Filters,
  opts: { dimension: ValueDimension; prefix?: string; limit: number },
): BuiltQuery {
  const extra: string[] = [];
  const params: Record<string, unknown> = { limit: opts.limit };
  const col = VALUE_DIMENSIONS[opts.dimension];
  if (opts.prefix) {
    extra.push(`positionCaseInsensitiveUTF8(toString(value), {prefix:String}) > 0`);
    params.prefix = opts.prefix;
  }
  const where = whereClause(source, filters);
  const count = source.kind === 'raw' ? 'count()' : 'sum(requests)';
  return {
    query:
      `SELECT toString(${col}) AS value, ${count} AS requests\nFROM ${ident(database)}.${ident(source.table)}\n` +
      `WHERE ${where.query}\nGROUP BY value${extra.length ? `\nHAVING ${extra.join(' AND ')}` : ''}\n` +
      `ORDER BY requests DESC, value ASC\nLIMIT {limit:UInt32}`,
    params: { ...where.params, ...params },
  };
}

/**
 * Traffic by gateway, route and upstream cluster in one pass: the rows with `level = 2` are (gateway, route,
 * cluster), `level = 1` the (gateway, route) totals, whose quantiles are computed over their own requests (a
 * quantile cannot be summed from the clusters').
 */
export function flowsQuery(database: string, source: Source, filters: Filters, limit = 2000): BuiltQuery {
  const where = whereClause(source, filters);
  return {
    query:
      `SELECT\n  ${GATEWAY_EXPR} AS gateway,\n  route_name AS route,\n  upstream_cluster,\n  grouping(upstream_cluster) AS is_route_total,\n  ${statsColumns(source)}\n` +
      `FROM ${ident(database)}.${ident(source.table)}\nWHERE ${where.query}\n` +
      `GROUP BY GROUPING SETS ((gateway, route, upstream_cluster), (gateway, route))\n` +
      `ORDER BY requests DESC\nLIMIT {limit:UInt32}`,
    params: { ...where.params, limit },
  };
}

/** Tables and columns of the database with their types and comments (system tables are not readable via SQL). */
export function schemaQuery(): BuiltQuery {
  return {
    query:
      `SELECT t.name AS table, t.engine AS engine, t.comment AS table_comment, t.total_rows AS total_rows,\n` +
      `  groupArray((c.name, c.type, c.comment)) AS columns\n` +
      `FROM system.tables AS t INNER JOIN system.columns AS c ON c.database = t.database AND c.table = t.name\n` +
      `WHERE t.database = {database:String} AND NOT t.is_temporary AND t.name NOT LIKE '.inner%' AND t.name != 'schema_migrations'\n` +
      `GROUP BY t.name, t.engine, t.comment, t.total_rows\nORDER BY t.name`,
    params: {},
  };
}
