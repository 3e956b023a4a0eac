import { ident } from './ident.js';

/**
 * Renders one migration file for the deployment it runs on. The files are written once; the mode decides the
 * engines and names:
 *
 * | placeholder                  | embedded engine / one server | cluster (`CLICKHOUSE_CLUSTER=c`)                                  |
 * | ---------------------------- | ---------------------------- | ----------------------------------------------------------------- |
 * | `{{database}}`               | `gatescope`                  | `gatescope`                                                       |
 * | `{{on_cluster}}`             | nothing                      | `ON CLUSTER 'c'`                                                  |
 * | `{{table:t}}`                | `gatescope.t`                | `gatescope.t_local`: the shard's own rows, on every replica       |
 * | `{{engine:MergeTree}}`       | `MergeTree`                  | `ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')` |
 * | `{{engine:E(params)}}`       | `E(params)`                  | `ReplicatedE('…', '{replica}', params)`                             |
 * | `{{distributed:t:key}}`      | nothing (the statement goes) | `CREATE TABLE … gatescope.t AS gatescope.t_local ENGINE = Distributed('c', …, key)` |
 * | `{{retention_days}}`, `{{rollup_retention_days}}` | the configured TTLs | the same                                  |
 *
 * So users always query `gatescope.t`: the table itself on one server, a Distributed table over every shard's
 * `t_local` in a cluster. Materialized views are declared on `{{table:…}}` names: in a cluster each node's views
 * read the inserts its local tables receive and write to its local rollups, so nothing crosses the network twice.
 * `{shard}` and `{replica}` are the server's own macros (its `<macros>` config); `{database}`/`{table}` are
 * expanded by ClickHouse itself.
 */

export interface RenderOptions {
  database: string;
  retentionDays: number;
  rollupRetentionDays: number;
  /** `ON CLUSTER` target and Distributed cluster; unset for the embedded engine or a single server. */
  cluster?: string;
}

/** Suffix of the per-shard tables behind the Distributed ones in a cluster. */
export const LOCAL_SUFFIX = '_local';
/** Keeper path of every replicated table: one ZooKeeper/Keeper subtree per shard, database and table. */
export const REPLICA_PATH = '/clickhouse/tables/{shard}/{database}/{table}';

const ENGINES = new Set(['MergeTree', 'AggregatingMergeTree', 'ReplacingMergeTree', 'SummingMergeTree']);

/** The name of the table that physically holds `table`'s rows in this mode. */
export function storageTableName(table: string, cluster: string | undefined): string {
  return cluster ? `${table}${LOCAL_SUFFIX}` : table;
}

/**
 * Fill the placeholders and split into statements (files hold no `;` outside statement ends; `--` comments are
 * dropped). A `{{distributed:…}}` statement disappears outside cluster mode.
 */
export function renderMigration(sql: string, options: RenderOptions): string[] {
  const db = ident(options.database, 'database name');
  const cluster = options.cluster;
  if (cluster !== undefined && !/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(cluster))
    throw new Error(`not a plain cluster name: ${JSON.stringify(cluster)}`);
  const quotedCluster = `'${cluster}'`;
  const render = (kind: string, arg: string | undefined): string => {
    switch (kind) {
      case 'database':
        return db;
      case 'on_cluster':
        return cluster ? `ON CLUSTER ${quotedCluster}` : '';
      case 'retention_days':
        return String(options.retentionDays);
      case 'rollup_retention_days':
        return String(options.rollupRetentionDays);
      case 'table':
        return `${db}.${storageTableName(ident(arg ?? '', 'table name'), cluster)}`;
      case 'engine': {
        // `Name` or `Name(params)` (ReplacingMergeTree(version)): replicated, the Keeper path and replica go first.
        const m = /^(\w+)(?:\((.*)\))?$/.exec(arg ?? '');
        const engine = m?.[1] ?? '';
        if (!ENGINES.has(engine)) throw new Error(`migration uses an unknown engine {{engine:${arg}}}`);
        const params = m?.[2]?.trim();
        if (!cluster) return params ? `${engine}(${params})` : engine;
        return `Replicated${engine}('${REPLICA_PATH}', '{replica}'${params ? `, ${params}` : ''})`;
      }
      case 'distributed': {
        const colon = (arg ?? '').indexOf(':');
        const table = ident(colon < 0 ? (arg ?? '') : arg!.slice(0, colon), 'table name');
        const shardingKey = colon < 0 ? '' : arg!.slice(colon + 1).trim();
        if (!shardingKey) throw new Error(`{{distributed:${table}:…}} needs a sharding key expression`);
        if (!cluster) return '';
        const local = storageTableName(table, cluster);
        return (
          `CREATE TABLE IF NOT EXISTS ${db}.${table} ON CLUSTER ${quotedCluster} AS ${db}.${local}\n` +
          `ENGINE = Distributed(${quotedCluster}, '${db}', '${local}', ${shardingKey})`
        );
      }
      default:
        throw new Error(`migration uses unknown parameter {{${kind}}}`);
    }
  };
  const rendered = sql
    .replace(/--.*$/gm, '')
    .replace(/\{\{(\w+)(?::([^}]*))?\}\}/g, (_, kind: string, arg: string | undefined) => render(kind, arg));
  return rendered
    .split(/;\s*$/m)
    .map((s) => s.trim())
    .filter(Boolean);
}
