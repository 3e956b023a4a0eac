import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClickHouse, type ClickHouse } from './clickhouse.js';
import { acquireMigrationLock, lockState, type LockRow } from './lock.js';
import { listMigrations, migrate, requiredSchemaVersion, schemaStatus } from './migrations.js';

// The single-server rendering on the embedded engine (what runs today), and the migration lock against one
// engine with several migrators at once.
let ch: ClickHouse;
beforeAll(async () => {
  ch = await createClickHouse({ database: 'gatescope', dataDir: mkdtempSync(join(tmpdir(), 'gs-migrate-')) });
});
afterAll(async () => {
  await ch?.close();
});

const json = async <T>(query: string): Promise<T[]> =>
  (await ch.client.query({ query, format: 'JSONEachRow' })).json<T>();

describe('migrate on the embedded engine', () => {
  it('reports a database that was never migrated as not ready, with what to run', async () => {
    const status = await schemaStatus(ch);
    expect(status).toMatchObject({ version: 0, required: requiredSchemaVersion(), ready: false });
    expect(status.problem).toMatch(new RegExp(`needs ${requiredSchemaVersion()}: run \`gatescope migrate\``));
  });

  it('creates the plain MergeTree schema, records each version once, and is idempotent', async () => {
    const first = await migrate(ch, { retentionDays: 14, rollupRetentionDays: 400 });
    expect(first.applied).toEqual(listMigrations().map((m) => m.name));
    const second = await migrate(ch, { retentionDays: 14, rollupRetentionDays: 400 });
    expect(second.applied).toEqual([]);

    const versions = await json<{ version: number; n: number }>(
      'SELECT version, count() AS n FROM gatescope.schema_migrations GROUP BY version ORDER BY version',
    );
    expect(versions.map((v) => [Number(v.version), Number(v.n)])).toEqual(
      listMigrations().map((m) => [m.version, 1]),
    );
    const engines = Object.fromEntries(
      (
        await json<{ name: string; engine: string }>(
          "SELECT name, engine FROM system.tables WHERE database = 'gatescope'",
        )
      ).map((t) => [t.name, t.engine]),
    );
    expect(engines).toMatchObject({
      http_requests: 'MergeTree',
      tcp_connections: 'MergeTree',
      http_routes_1m: 'AggregatingMergeTree',
      http_requests_1h: 'AggregatingMergeTree',
      http_requests_1m_mv: 'MaterializedView',
      schema_lock: 'MergeTree',
      ingest_dead_letters: 'ReplacingMergeTree',
    });
    expect(Object.values(engines)).not.toContain('Distributed');
    // The range and latency columns are read with LZ4 (0007); the long strings keep ZSTD.
    const codecs = await json<{ c: string }>(
      "SELECT concat(table, '.', name, ' ', compression_codec) AS c FROM system.columns WHERE database = 'gatescope' AND ((table = 'http_requests' AND name IN ('start_time', 'duration_ms', 'path')) OR (table = 'tcp_connections' AND name = 'start_time')) ORDER BY c",
    );
    expect(codecs.map((r) => r.c)).toEqual([
      'http_requests.duration_ms CODEC(LZ4)',
      'http_requests.path CODEC(ZSTD(1))',
      'http_requests.start_time CODEC(Delta(8), LZ4)',
      'tcp_connections.start_time CODEC(Delta(8), LZ4)',
    ]);
    const required = requiredSchemaVersion();
    expect(await schemaStatus(ch)).toEqual({ version: required, required, ready: true });
  });

  it('feeds the rollups from raw inserts (the views hang on the tables the single rendering names)', async () => {
    await ch.client.command({
      query:
        "INSERT INTO gatescope.http_requests (start_time, duration_ms, response_code, route_name) VALUES ('2030-01-01 10:00:01', 12.5, 200, 'r1'), ('2030-01-01 10:00:02', 40, 503, 'r1')",
    });
    const [r] = await json<{ requests: number; e: number }>(
      "SELECT sum(requests) AS requests, sum(requests_5xx) AS e FROM gatescope.http_routes_1h WHERE route_name = 'r1'",
    );
    expect([Number(r.requests), Number(r.e)]).toEqual([2, 1]);
  });

  it('applies a changed retention to the raw tables and the rollups', async () => {
    await migrate(ch, { retentionDays: 7, rollupRetentionDays: 90 });
    const ttl = Object.fromEntries(
      (
        await json<{ name: string; engine_full: string }>(
          "SELECT name, engine_full FROM system.tables WHERE database = 'gatescope' AND engine LIKE '%MergeTree'",
        )
      ).map((t) => [t.name, /TTL (.+?)( SETTINGS|$)/.exec(t.engine_full)?.[1]]),
    );
    expect(ttl.http_requests).toBe('toDateTime(start_time) + toIntervalDay(7)');
    expect(ttl.http_routes_1m).toBe('toDateTime(bucket_start) + toIntervalDay(90)');
    expect(ttl.schema_lock).toBeUndefined();
    // materialize_ttl_after_modify = 0 rode in the statement: no rewrite of existing parts was queued.
    const [m] = await json<{ n: number }>(
      "SELECT count() AS n FROM system.mutations WHERE database = 'gatescope'",
    );
    expect(Number(m.n)).toBe(0);
  });

  it('refuses to migrate a single-server database as a cluster, and says why', async () => {
    await expect(migrate(ch, { retentionDays: 7, rollupRetentionDays: 90, cluster: 'c' })).rejects.toThrow(
      /holds a single-server schema \(http_requests is MergeTree\) but CLICKHOUSE_CLUSTER=c/,
    );
    const status = await schemaStatus(ch, { cluster: 'c' });
    expect(status.ready).toBe(false);
  });
});

describe('the migration lock', () => {
  it('lets exactly one of several concurrent migrators hold it at a time, and every one gets its turn', async () => {
    let inside = 0;
    let most = 0;
    const epochs: number[] = [];
    await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const lock = await acquireMigrationLock(ch, { pollMs: 20, owner: `migrator-${i}` });
        inside++;
        most = Math.max(most, inside);
        epochs.push(lock.epoch);
        await new Promise((r) => setTimeout(r, 30));
        lock.assertHeld();
        inside--;
        await lock.release();
      }),
    );
    expect(most).toBe(1);
    expect(new Set(epochs).size).toBe(6);
    // One claim row per epoch survived the racing inserts: deduplication by token, not luck.
    const claims = await json<{ epoch: number; n: number }>(
      "SELECT epoch, count() AS n FROM gatescope.schema_lock WHERE kind = 'claim' GROUP BY epoch HAVING n > 1",
    );
    expect(claims).toEqual([]);
  });

  it('passes to the next migrator when a holder dies without releasing (its lease runs out)', async () => {
    // What a migrator killed mid-migration leaves behind: a claim for the next epoch and nothing after it.
    const [top] = await json<{ epoch: number }>('SELECT max(epoch) AS epoch FROM gatescope.schema_lock');
    const deadEpoch = Number(top.epoch) + 1;
    await ch.client.command({
      query:
        "INSERT INTO gatescope.schema_lock (epoch, owner, kind, expires_at) SELECT {e:UInt64}, 'dies', 'claim', now64(3) + toIntervalMillisecond(1500)",
      query_params: { e: deadEpoch },
    });
    const started = Date.now();
    const waits: string[] = [];
    const next = await acquireMigrationLock(ch, {
      pollMs: 50,
      owner: 'next',
      onWait: (s) => waits.push(s.holder ?? '?'),
    });
    expect(next.epoch).toBe(deadEpoch + 1);
    expect(waits[0]).toBe('dies');
    // It waited for the lease to run out by the server's clock, not for a release that never comes.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    await next.release();
  }, 20_000);

  it('gives up waiting with a clear error when asked to', async () => {
    const holder = await acquireMigrationLock(ch, { owner: 'holder' });
    await expect(acquireMigrationLock(ch, { waitMs: 200, pollMs: 50 })).rejects.toThrow(
      /Timed out waiting for the migration lock held by holder/,
    );
    await holder.release();
  });
});

describe('lockState', () => {
  const row = (r: Partial<LockRow>): LockRow => ({
    epoch: 1,
    owner: 'a',
    kind: 'claim',
    expires_ms: 2_000,
    now_ms: 1_000,
    ...r,
  });
  it('reads free, held, expired and released epochs', () => {
    expect(lockState([])).toEqual({ epoch: 0, free: true });
    expect(lockState([row({})])).toEqual({ epoch: 1, holder: 'a', expiresMs: 2_000, free: false });
    expect(lockState([row({}), row({ kind: 'renew', expires_ms: 5_000 })]).expiresMs).toBe(5_000);
    expect(lockState([row({ now_ms: 2_000 })]).free).toBe(true);
    expect(lockState([row({}), row({ kind: 'release', expires_ms: 1_000 })]).free).toBe(true);
    // Only the holder's rows count; the newest epoch wins; an epoch whose claim is not visible is not free.
    expect(lockState([row({}), row({ owner: 'b', kind: 'release' })]).free).toBe(false);
    expect(lockState([row({}), row({ epoch: 2, owner: 'b' })]).holder).toBe('b');
    expect(lockState([row({ epoch: 3, kind: 'renew' })])).toEqual({ epoch: 3, free: false });
  });
});
