import { describe, expect, it } from 'vitest';
import { BOOKKEEPING_SQL, listMigrations } from './migrations.js';
import { renderMigration, type RenderOptions } from './render.js';

const single: RenderOptions = { database: 'gatescope', retentionDays: 14, rollupRetentionDays: 400 };
const cluster: RenderOptions = { ...single, cluster: 'gs_cluster' };

const all = (o: RenderOptions) =>
  [BOOKKEEPING_SQL, ...listMigrations().map((m) => m.sql)].flatMap((sql) => renderMigration(sql, o));

interface Created {
  kind: 'TABLE' | 'MATERIALIZED VIEW';
  name: string;
  sql: string;
  engine?: string;
}
/** The CREATE statements (the ALTERs, the backfills and 0008's rebuild swaps are checked on their own). */
const REBUILD = /^(DROP TABLE IF EXISTS|EXCHANGE TABLES) /;
function created(statements: string[]): Created[] {
  return statements
    .filter((sql) => !sql.startsWith('ALTER ') && !sql.startsWith('INSERT ') && !REBUILD.test(sql))
    .map((sql) => {
      const m = /^CREATE (TABLE|MATERIALIZED VIEW) IF NOT EXISTS (\w+)\.(\w+)/.exec(sql);
      expect(m, sql.slice(0, 120)).not.toBeNull();
      const engine = /\bENGINE = (\w+)/.exec(sql)?.[1];
      return { kind: m![1] as Created['kind'], name: m![3], sql, engine };
    });
}
const alters = (statements: string[]) => statements.filter((sql) => sql.startsWith('ALTER '));
const inserts = (statements: string[]) => statements.filter((sql) => sql.startsWith('INSERT '));
const tables = (c: Created[]) => c.filter((s) => s.kind === 'TABLE');
const views = (c: Created[]) => c.filter((s) => s.kind === 'MATERIALIZED VIEW');

describe('migrations rendered for the embedded engine / one server', () => {
  const statements = created(all(single));

  it('creates plain MergeTree tables under the names users query, with no cluster machinery', () => {
    const names = tables(statements).map((t) => t.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'http_requests',
        'tcp_connections',
        'http_routes_1m',
        'http_requests_1m',
        'http_routes_1h',
        'http_requests_1h',
        'schema_migrations',
        'schema_lock',
        'alert_rules',
        'alert_receiver_secrets',
        'alert_state',
        'alert_history',
        'alert_deliveries',
        'alert_lease',
      ]),
    );
    for (const t of tables(statements)) {
      expect(['MergeTree', 'AggregatingMergeTree', 'ReplacingMergeTree'], t.name).toContain(t.engine);
      expect(t.sql).not.toMatch(/Replicated|Distributed|ON CLUSTER|_local\b|\{shard\}|\{replica\}/);
    }
    expect(tables(statements).find((t) => t.name === 'http_routes_1m')?.engine).toBe('AggregatingMergeTree');
    expect(tables(statements).find((t) => t.name === 'ingest_dead_letters')?.sql).toMatch(
      /ENGINE = ReplacingMergeTree\(updated_at\)\s+ORDER BY \(collector, id\)/,
    );
  });

  it('gives every raw and rollup table a deduplication window (insert_deduplication_token)', () => {
    expect(alters(all(single)).filter((a) => a.includes('MODIFY SETTING'))).toEqual(
      [
        'http_requests',
        'tcp_connections',
        'http_requests_1m',
        'http_routes_1m',
        'http_requests_1h',
        'http_routes_1h',
      ].map((t) => `ALTER TABLE gatescope.${t}  MODIFY SETTING non_replicated_deduplication_window = 1000`),
    );
    // Tables created later carry it in their own SETTINGS.
    for (const t of ['http_totals_1h'])
      expect(tables(statements).find((c) => c.name === t)?.sql, t).toMatch(
        /SETTINGS index_granularity = \d+, non_replicated_deduplication_window = 1000$/,
      );
  });

  it('reads the range and latency columns with LZ4 (migration 0007), on the tables that hold the rows', () => {
    const codecs = (statements: string[]) => alters(statements).filter((a) => a.includes('MODIFY COLUMN'));
    expect(codecs(all(single)).map((a) => a.replace(/\s+/g, ' '))).toEqual([
      'ALTER TABLE gatescope.http_requests MODIFY COLUMN start_time CODEC(Delta, LZ4), MODIFY COLUMN duration_ms CODEC(LZ4);'.replace(
        /;$/,
        '',
      ),
      'ALTER TABLE gatescope.tcp_connections MODIFY COLUMN start_time CODEC(Delta, LZ4)',
    ]);
    for (const a of codecs(all(cluster)))
      expect(a).toMatch(/^ALTER TABLE gatescope\.\w+_local ON CLUSTER 'gs_cluster'\s+MODIFY COLUMN /);
  });

  it('backfills the hourly totals and the tiers from the tier below, through the names users query', () => {
    const sources = inserts(all(single)).map((sql) => [
      /^INSERT INTO gatescope\.(\w+) /.exec(sql)?.[1],
      /\bFROM gatescope\.(\w+)/.exec(sql)?.[1],
    ]);
    expect(sources).toEqual([
      ['http_totals_1h', 'http_routes_1h'],
      // 0008: each rollup copied into its small-granule rebuild, then the new tiers filled from the tier below.
      ['http_routes_1m_rebuild', 'http_routes_1m'],
      ['http_routes_1h_rebuild', 'http_routes_1h'],
      ['http_requests_1m_rebuild', 'http_requests_1m'],
      ['http_requests_1h_rebuild', 'http_requests_1h'],
      ['http_routes_10m', 'http_routes_1m'],
      ['http_requests_10m', 'http_requests_1m'],
    ]);
    // A cluster's backfill goes through the Distributed tables once (INSERT has no ON CLUSTER): every shard's
    // hourly rows in, sharded rows out.
    for (const sql of inserts(all(cluster))) {
      expect(sql).not.toMatch(/_local\b|ON CLUSTER/);
      expect(sql).toContain('SETTINGS distributed_foreground_insert = 1');
    }
  });

  it('hangs the rollup views on those same tables', () => {
    const mv = Object.fromEntries(views(statements).map((v) => [v.name, v.sql]));
    expect(mv.http_requests_1m_mv).toMatch(/TO gatescope\.http_requests_1m\b/);
    expect(mv.http_requests_1m_mv).toMatch(/FROM gatescope\.http_requests\s*\n/);
    expect(mv.http_routes_1h_mv).toMatch(/FROM gatescope\.http_routes_1m AS http_routes_1m/);
  });

  it('fills retention from the options', () => {
    const raw = tables(statements).find((t) => t.name === 'http_requests')!;
    expect(raw.sql).toContain('TTL toDateTime(start_time) + INTERVAL 14 DAY');
    expect(tables(statements).find((t) => t.name === 'http_routes_1h')!.sql).toContain('INTERVAL 400 DAY');
  });
});

describe('migrations rendered for a cluster', () => {
  const statements = created(all(cluster));
  const local = tables(statements).filter((t) => t.engine !== 'Distributed');
  const distributed = tables(statements).filter((t) => t.engine === 'Distributed');
  const singleNames = tables(created(all(single))).map((t) => t.name);

  it('runs every statement ON CLUSTER', () => {
    for (const s of statements)
      expect(s.sql, s.name).toMatch(/ IF NOT EXISTS gatescope\.\w+ ON CLUSTER 'gs_cluster'/);
    expect(alters(all(cluster)).length).toBe(8);
  });

  it('stores rows in replicated `_local` tables with per-shard Keeper paths and replica macros', () => {
    expect(local.length).toBe(singleNames.length);
    for (const t of local) {
      expect(t.name, t.name).toMatch(/_local$/);
      expect(t.engine).toMatch(/^Replicated(Aggregating|Replacing)?MergeTree$/);
      expect(t.sql).toContain(
        `ENGINE = ${t.engine}('/clickhouse/tables/{shard}/{database}/{table}', '{replica}'`,
      );
    }
    expect(local.find((t) => t.name === 'http_routes_1m_local')?.engine).toBe(
      'ReplicatedAggregatingMergeTree',
    );
    // Engine parameters follow the Keeper path and replica.
    expect(local.find((t) => t.name === 'ingest_dead_letters_local')?.sql).toContain(
      "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', updated_at)",
    );
    // The deduplication windows are set on the tables that hold the rows, on every node.
    // So are the codecs (migration 0007).
    for (const a of alters(all(cluster)))
      expect(a).toMatch(
        /^ALTER TABLE gatescope\.\w+_local ON CLUSTER 'gs_cluster'\s+MODIFY (SETTING|COLUMN) /,
      );
    // The per-table settings and TTL survive the rendering.
    expect(local.find((t) => t.name === 'http_requests_local')?.sql).toMatch(
      /TTL toDateTime\(start_time\) \+ INTERVAL 14 DAY\s+SETTINGS ttl_only_drop_parts = 1$/,
    );
  });

  it('puts a Distributed table with the user-facing name in front of every local table', () => {
    expect(distributed.map((t) => t.name).sort()).toEqual([...singleNames].sort());
    for (const d of distributed) {
      expect(d.sql).toContain(`AS gatescope.${d.name}_local`);
      const m = /ENGINE = Distributed\('gs_cluster', 'gatescope', '(\w+)', (.+)\)$/s.exec(d.sql);
      expect(m, d.sql).not.toBeNull();
      expect(m![1]).toBe(`${d.name}_local`);
      // A deterministic key: a retried insert splits across shards exactly as the first attempt did.
      expect(m![2]).not.toMatch(/rand/i);
    }
    const key = (name: string) =>
      /, (cityHash64\(.+\))\)$/s.exec(distributed.find((d) => d.name === name)!.sql)?.[1];
    expect(key('http_requests')).toBe('cityHash64(route_name, toStartOfHour(start_time))');
    // Rollups shard by the same (route, hour) as the rows they summarise.
    for (const r of ['http_routes_1m', 'http_requests_1m', 'http_routes_1h', 'http_requests_1h'])
      expect(key(r), r).toBe('cityHash64(route_name, toStartOfHour(bucket_start))');
    expect(key('http_totals_1h')).toBe('cityHash64(bucket_start)');
  });

  it('keeps the materialized views local: they read local inserts and write local rollups', () => {
    const vs = views(statements);
    expect(vs.map((v) => v.name).sort()).toEqual(
      views(created(all(single)))
        .map((v) => v.name)
        .sort(),
    );
    for (const v of vs) {
      const to = /\bTO gatescope\.(\w+)/.exec(v.sql)?.[1];
      const from = /\bFROM gatescope\.(\w+)/.exec(v.sql)?.[1];
      expect(to, v.name).toMatch(/_local$/);
      expect(from, v.name).toMatch(/_local$/);
    }
    expect(vs.find((v) => v.name === 'http_requests_1m_mv')!.sql).toMatch(
      /FROM gatescope\.http_requests_local\s/,
    );
  });
});

describe('renderMigration', () => {
  it('rejects what it cannot render', () => {
    expect(() => renderMigration('SELECT {{nope}}', single)).toThrow(/unknown parameter \{\{nope\}\}/);
    expect(() => renderMigration('ENGINE = {{engine:Log}}', cluster)).toThrow(/unknown engine/);
    expect(() => renderMigration('ENGINE = {{engine:Log(x)}}', single)).toThrow(/unknown engine/);
    expect(() => renderMigration('{{distributed:t}}', cluster)).toThrow(/sharding key/);
    expect(() => renderMigration('{{table:a-b}}', single)).toThrow(/table name/);
    expect(() => renderMigration('SELECT 1', { ...single, cluster: "x'; DROP" })).toThrow(/cluster name/);
  });
});
