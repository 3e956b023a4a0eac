/**
 * The ad-hoc SQL endpoint's gate. ClickHouse parses and analyses the query itself (`EXPLAIN AST` and
 * `EXPLAIN QUERY TREE`, where CTEs, aliases and subqueries are already resolved to real tables and functions);
 * this reads those plans and lists what is not allowed. Writes are stopped by ClickHouse (`readonly`), limits by
 * ClickHouse settings; this adds what `readonly` does not cover.
 */
export interface SqlViolation {
  code:
    'ERR_SQL_NOT_SELECT' | 'ERR_SQL_SETTINGS' | 'ERR_SQL_OUTPUT' | 'ERR_SQL_DATABASE' | 'ERR_SQL_FUNCTION';
  message: string;
}

/** Table functions that only generate data. Everything else (file, url, s3, remote, mysql, …) is refused. */
export const SAFE_TABLE_FUNCTIONS = new Set([
  'numbers',
  'numbers_mt',
  'zeros',
  'zeros_mt',
  'values',
  'generate_series',
  'generateSeries',
  'view',
]);
/** Ordinary functions that reach outside the query's tables. */
export const FORBIDDEN_FUNCTIONS = new Set([
  'file',
  'url',
  's3',
  'hdfs',
  'remote',
  'remoteSecure',
  'mysql',
  'postgresql',
  'executable',
  'input',
  'jdbc',
  'odbc',
  'getSetting',
  'getMacro',
  'filesystemAvailable',
  'filesystemCapacity',
  'filesystemUnreserved',
]);
const FORBIDDEN_PREFIXES = ['dictGet', 'dictHas', 'dictIsIn', 'joinGet'];
/** Table functions that reach files, the network or other databases, refused already from the AST. */
const EXTERNAL_TABLE_FUNCTIONS = new Set([
  'file',
  'fileCluster',
  'url',
  'urlCluster',
  's3',
  's3Cluster',
  'gcs',
  'oss',
  'cosn',
  'azureBlobStorage',
  'azureBlobStorageCluster',
  'hdfs',
  'hdfsCluster',
  'remote',
  'remoteSecure',
  'cluster',
  'clusterAllReplicas',
  'mysql',
  'postgresql',
  'mongodb',
  'redis',
  'sqlite',
  'jdbc',
  'odbc',
  'executable',
  'input',
  'merge',
  'dictionary',
  'loop',
  'iceberg',
  'icebergS3',
  'deltaLake',
  'hudi',
  'format',
  'python',
  'arrowFlight',
  'ytsaurus',
  'paimon',
  'timeSeriesData',
  'timeSeriesTags',
  'timeSeriesMetrics',
  'mergeTreeIndex',
  'mergeTreeProjection',
  'fuzzJSON',
  'fuzzQuery',
]);
const isForbiddenFunction = (name: string) =>
  FORBIDDEN_FUNCTIONS.has(name) ||
  EXTERNAL_TABLE_FUNCTIONS.has(name) ||
  FORBIDDEN_PREFIXES.some((p) => name.startsWith(p));

function checkTableName(name: string, database: string): SqlViolation | undefined {
  const dot = name.indexOf('.');
  const db = dot > 0 ? name.slice(0, dot) : '';
  // `SELECT 1` (no FROM) reads the one-row system.one: harmless.
  if (db === database || name === 'system.one') return undefined;
  return {
    code: 'ERR_SQL_DATABASE',
    message: `Table ${name} is not accessible: only tables of the ${database} database can be queried (system, information_schema and other databases are off limits)`,
  };
}

export function checkSqlPlan(input: {
  ast: string[];
  tree: string[];
  database: string;
  explainFormat: string;
}): SqlViolation[] {
  const out: SqlViolation[] = [];
  const add = (v: SqlViolation) => {
    if (!out.some((o) => o.message === v.message)) out.push(v);
  };
  const root = input.ast[0]?.trim() ?? '';
  if (!/^(SelectWithUnionQuery|SelectIntersectExceptQuery)\b/.test(root)) {
    add({
      code: 'ERR_SQL_NOT_SELECT',
      message: `Only SELECT queries are allowed (this is a ${root.split(' ')[0] || 'empty'} statement)`,
    });
    return out;
  }
  for (const line of input.ast.slice(1)) {
    const depth = line.length - line.trimStart().length;
    const node = line.trim();
    if (depth === 1 && !node.startsWith('ExpressionList') && node !== `Identifier ${input.explainFormat}`) {
      add({
        code: 'ERR_SQL_OUTPUT',
        message:
          'INTO OUTFILE and FORMAT clauses are not allowed: the API chooses the format (format=json or format=csv)',
      });
    }
    const astTable = /^TableIdentifier ([^\s]+)/.exec(node);
    if (astTable && astTable[1].includes('.')) {
      const v = checkTableName(astTable[1], input.database);
      if (v) add(v);
    }
    const astFn = /^Function ([^\s]+)/.exec(node);
    if (astFn && isForbiddenFunction(astFn[1])) {
      add({
        code: 'ERR_SQL_FUNCTION',
        message: `Function ${astFn[1]}() is not allowed: it reads files, the network or other databases`,
      });
    }
    if (node === 'Set' || node.startsWith('Set ')) {
      add({
        code: 'ERR_SQL_SETTINGS',
        message:
          'SETTINGS clauses are not allowed: gatescope fixes the limits (read-only, time, rows, memory)',
      });
    }
  }
  for (const line of input.tree) {
    const table = /\bTABLE id: \d+.*?\btable_name: ([^\s,]+)/.exec(line);
    if (table) {
      const v = checkTableName(table[1], input.database);
      if (v) add(v);
      continue;
    }
    const tf = /\bTABLE_FUNCTION id: \d+.*?\btable_function_name: ([^\s,]+)/.exec(line);
    if (tf) {
      if (!SAFE_TABLE_FUNCTIONS.has(tf[1])) {
        add({
          code: 'ERR_SQL_FUNCTION',
          message: `Table function ${tf[1]}() is not allowed: it reads files, the network or other databases. Allowed: ${[...SAFE_TABLE_FUNCTIONS].join(', ')}`,
        });
      }
      continue;
    }
    const fn = /\bFUNCTION id: \d+.*?\bfunction_name: ([^\s,]+)/.exec(line);
    if (fn && isForbiddenFunction(fn[1])) {
      add({
        code: 'ERR_SQL_FUNCTION',
        message: `Function ${fn[1]}() is not allowed: it reads files, the network or other databases`,
      });
    }
  }
  return out;
}
