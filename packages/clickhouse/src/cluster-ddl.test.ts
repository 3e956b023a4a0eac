import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOKKEEPING_SQL, listMigrations } from './migrations.js';
import { renderMigration } from './render.js';

// The clustered rendering, checked on the real engine as far as an in-process one goes:
// - every statement, ON CLUSTER included, parses (formatQuery);
// - every statement minus `ON CLUSTER` runs on chdb configured like one node of a one-shard cluster (macros,
//   remote_servers, Keeper = ClickHouse's in-process test keeper): replicated tables register in Keeper under the
//   expanded paths, the Distributed tables accept their sharding keys, the views hang on the local tables, and
//   reads through the Distributed tables work.
// What no engine here can do: run the distributed DDL queue (ON CLUSTER needs a server's DDL worker) and write
// to replicated tables (clickhouse-local never starts replication, so they stay read-only). README: Scale-out.

type Session = {
  queryAsync(sql: string, opts?: { format?: string }): Promise<{ text(): string }>;
  queryBindAsync(sql: string, params: object, opts?: { format?: string }): Promise<{ text(): string }>;
  close(): void;
};
const CLUSTER = 'gs_cluster';
const options = { database: 'gatescope', retentionDays: 14, rollupRetentionDays: 400, cluster: CLUSTER };
const statements = [BOOKKEEPING_SQL, ...listMigrations().map((m) => m.sql)].flatMap((sql) =>
  renderMigration(sql, options),
);

let dir: string;
let session: Session;
const rows = async <T>(sql: string): Promise<T[]> =>
  (await session.queryAsync(sql, { format: 'JSONEachRow' }))
    .text()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gs-cluster-ddl-'));
  const config = join(dir, 'cluster.xml');
  writeFileSync(
    config,
    `<clickhouse>
  <zookeeper><implementation>testkeeper</implementation></zookeeper>
  <macros><shard>s1</shard><replica>r1</replica></macros>
  <tcp_port>9000</tcp_port>
  <remote_servers><${CLUSTER}><shard><replica><host>localhost</host><port>9000</port></replica></shard></${CLUSTER}></remote_servers>
</clickhouse>
`,
  );
  const { Session } = createRequire(import.meta.url)('chdb') as {
    Session: new (path: string, opts: { connectionArgs: string[] }) => Session;
  };
  session = new Session(join(dir, 'data'), { connectionArgs: [`--config-file=${config}`] });
});
afterAll(() => {
  // No session.close(): shutting replicated tables down waits for a replication thread clickhouse-local never started.
  rmSync(dir, { recursive: true, force: true });
});

const full0 = (tables: { name: string; engine_full: string }[], name: string) =>
  tables.find((t) => t.name === name)?.engine_full ?? '';

describe('clustered DDL on the engine', () => {
  it('parses every statement as ClickHouse 26 does, ON CLUSTER and all', async () => {
    for (const sql of statements) {
      if (sql.startsWith('INSERT ')) {
        // A backfill runs once, through the Distributed tables (an INSERT has no ON CLUSTER).
        await session.queryBindAsync(
          'SELECT formatQuery({sql:String})',
          { sql },
          { format: 'TabSeparatedRaw' },
        );
        expect(sql).toMatch(
          /^INSERT INTO gatescope\.http_\w+ SETTINGS distributed_foreground_insert = 1\s+SELECT/,
        );
        continue;
      }
      const formatted = (
        await session.queryBindAsync(
          'SELECT formatQuery({sql:String})',
          { sql },
          { format: 'TabSeparatedRaw' },
        )
      ).text();
      expect(formatted, sql.slice(0, 100)).toContain(`ON CLUSTER ${CLUSTER}`);
      expect(formatted).toMatch(
        /^DROP TABLE IF EXISTS gatescope\.\w+_rebuild(_local)? ON CLUSTER gs_cluster SYNC$|^EXCHANGE TABLES gatescope\.\w+_local AND gatescope\.\w+_rebuild_local ON CLUSTER gs_cluster$|ENGINE = Replicated\w*MergeTree\('\/clickhouse\/tables\/\{shard\}|ENGINE = Distributed\('gs_cluster'| TO gatescope\.\w+_local$|^ALTER TABLE gatescope\.\w+_local ON CLUSTER gs_cluster\s+\((MODIFY SETTING|MODIFY COLUMN)/m,
      );
    }
  });

  it('creates replicated local tables, Distributed tables and local views (minus the DDL queue)', async () => {
    await session.queryAsync('CREATE DATABASE IF NOT EXISTS gatescope');
    // ALTERs of replicated tables go through Keeper's replication queue, which this engine never starts (its
    // replicated tables stay read-only): they are parsed above, not run.
    // The backfills write through Distributed tables into those read-only replicas: parsed above, not run.
    // 0008's rebuild swaps (EXCHANGE, DROP … SYNC) wait on replication too: parsed above, not run.
    for (const sql of statements.filter(
      (s) => !s.startsWith('ALTER ') && !s.startsWith('INSERT ') && !/^(DROP|EXCHANGE) /.test(s),
    ))
      await session.queryAsync(sql.replace(` ON CLUSTER '${CLUSTER}'`, ''));

    const tables = await rows<{ name: string; engine: string; engine_full: string }>(
      "SELECT name, engine, engine_full FROM system.tables WHERE database = 'gatescope' ORDER BY name",
    );
    const engine = Object.fromEntries(tables.map((t) => [t.name, t.engine]));
    expect(engine).toMatchObject({
      http_requests: 'Distributed',
      http_requests_local: 'ReplicatedMergeTree',
      http_routes_1m: 'Distributed',
      http_routes_1m_local: 'ReplicatedAggregatingMergeTree',
      http_requests_1h_local: 'ReplicatedAggregatingMergeTree',
      tcp_connections: 'Distributed',
      schema_lock_local: 'ReplicatedMergeTree',
      http_requests_1m_mv: 'MaterializedView',
      ingest_dead_letters: 'Distributed',
      ingest_dead_letters_local: 'ReplicatedReplacingMergeTree',
      alert_rules: 'Distributed',
      alert_rules_local: 'ReplicatedReplacingMergeTree',
      alert_receiver_secrets_local: 'ReplicatedReplacingMergeTree',
      alert_history_local: 'ReplicatedMergeTree',
      alert_lease_local: 'ReplicatedMergeTree',
      ingest_ledger: 'Distributed',
      ingest_ledger_local: 'ReplicatedAggregatingMergeTree',
    });
    expect(full0(tables, 'ingest_dead_letters_local')).toMatch(
      /^ReplicatedReplacingMergeTree\('\/clickhouse\/tables\/\{shard\}\/gatescope\/ingest_dead_letters_local', '\{replica\}', updated_at\)/,
    );
    const full = Object.fromEntries(tables.map((t) => [t.name, t.engine_full]));
    // The delivery ledger: one shard per node, so a node's rows (every collector's) meet on one shard.
    expect(full.ingest_ledger).toBe(
      `Distributed('${CLUSTER}', 'gatescope', 'ingest_ledger_local', cityHash64(node_id, node_cluster, log_name))`,
    );
    expect(full.http_requests).toBe(
      `Distributed('${CLUSTER}', 'gatescope', 'http_requests_local', cityHash64(route_name, toStartOfHour(start_time)))`,
    );

    // Macros expanded per node into one Keeper subtree per shard and table.
    const replicas = await rows<{ table: string; zookeeper_path: string; replica_name: string }>(
      "SELECT table, zookeeper_path, replica_name FROM system.replicas WHERE database = 'gatescope' ORDER BY table",
    );
    expect(replicas.find((r) => r.table === 'http_requests_local')).toEqual({
      table: 'http_requests_local',
      zookeeper_path: '/clickhouse/tables/s1/gatescope/http_requests_local',
      replica_name: 'r1',
    });
    expect(replicas.length).toBe(tables.filter((t) => t.engine.startsWith('Replicated')).length);

    // The views read the local tables: an insert a shard receives feeds that shard's rollups.
    const sources = await rows<{ name: string; views: string[] }>(
      "SELECT name, dependencies_table AS views FROM system.tables WHERE database = 'gatescope' AND notEmpty(dependencies_table) ORDER BY name",
    );
    expect(Object.fromEntries(sources.map((s) => [s.name, [...s.views].sort()]))).toEqual({
      http_requests_local: ['http_requests_1m_mv'],
      http_requests_1m_local: ['http_requests_10m_mv', 'http_requests_1h_mv', 'http_routes_1m_mv'],
      http_routes_1m_local: ['http_routes_10m_mv', 'http_routes_1h_mv'],
      http_routes_1h_local: ['http_totals_1h_mv'],
    });
  });

  it('answers reads through the Distributed tables, rollup states included', async () => {
    const [r] = await rows<{ n: number; q: number[] }>(
      'SELECT sum(requests) AS n, quantilesDDMerge(0.005, 0.5, 0.9, 0.95, 0.99)(duration_quantiles) AS q FROM gatescope.http_routes_1h',
    );
    expect(Number(r.n)).toBe(0);
    const [c] = await rows<{ n: number }>('SELECT count() AS n FROM gatescope.http_requests');
    expect(Number(c.n)).toBe(0);
  });
});
