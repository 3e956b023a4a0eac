import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClickHouse, type ClickHouse } from './clickhouse.js';
import { readJson } from './read.js';
import { renderMigratorGrants, renderRoleDdl, WRITER_INSERT_TABLES } from './users.js';

// Facts about the embedded engine (chdb 3.4 / ClickHouse 26.7) that the read paths are built on.
let ch: ClickHouse;
const dir = mkdtempSync(join(tmpdir(), 'gs-clickhouse-'));
beforeAll(async () => {
  ch = await createClickHouse({ database: 'gatescope', dataDir: dir });
});
afterAll(async () => {
  await ch?.close();
  rmSync(dir, { recursive: true, force: true });
});

const BOMB =
  "SELECT number FROM numbers(1e11) SETTINGS max_execution_time = 1, timeout_overflow_mode = 'throw', max_block_size = 1000";

describe('a stopped query hands its unread output to the next query on the same connection', () => {
  it('happens on chdb (so every read is framed) and stays on that connection', async () => {
    await expect(ch.reader.query({ query: BOMB, format: 'TabSeparated' })).rejects.toMatchObject({
      type: 'TIMEOUT_EXCEEDED',
    });
    // Another connection (ingest's) is clean.
    const other = await (
      await ch.client.query({ query: "SELECT 'clean' AS v", format: 'TabSeparated' })
    ).text();
    expect(other).toBe('clean\n');
    // The same connection's next query gets the leftovers in front of its own answer.
    const next = await (
      await ch.reader.query({ query: "SELECT 'mine' AS v", format: 'TabSeparated' })
    ).text();
    expect(next.length).toBeGreaterThan(1000);
    expect(next.endsWith('mine\n')).toBe(true);
  });
  it('readJson never returns them: the whole-document answer is checked and read again', async () => {
    await expect(ch.reader.query({ query: BOMB, format: 'TabSeparated' })).rejects.toBeDefined();
    const r = await readJson<{ v: string }>(ch.reader, { query: "SELECT 'mine' AS v" });
    expect(r.data).toEqual([{ v: 'mine' }]);
  });
});

describe('server users', () => {
  const ddl = renderRoleDdl({
    database: 'gatescope',
    writer: { username: 'gatescope_writer', password: 'wpw' },
    reader: {
      username: 'gatescope_reader',
      password: "r'pw",
      limits: { maxExecutionTimeS: 30, maxMemoryBytes: 2e9, maxThreads: 2 },
    },
    sql: {
      username: 'gatescope_sql',
      password: 'spw',
      limits: {
        maxExecutionTimeS: 30,
        maxMemoryBytes: 1e9,
        maxThreads: 1,
        maxResultRows: 10_100_000,
        maxResultBytes: 1_610_612_736,
      },
    },
  });
  it('renders the profile, user, grants and quota of each role', () => {
    expect(ddl).toContain(
      "CREATE USER IF NOT EXISTS gatescope_sql IDENTIFIED WITH sha256_password BY 'spw' DEFAULT DATABASE gatescope SETTINGS PROFILE 'gatescope_sql'",
    );
    expect(ddl).toContain('GRANT SELECT ON gatescope.* TO gatescope_reader');
    expect(ddl).toContain('REVOKE ALL ON *.* FROM gatescope_sql');
    // Receiver URLs and webhook secrets: no read role sees them.
    for (const user of ['gatescope_reader', 'gatescope_sql'])
      expect(ddl).toContain(`REVOKE SELECT ON gatescope.alert_receiver_secrets FROM ${user}`);
    const sqlProfile = ddl.find((s) => s.startsWith('CREATE SETTINGS PROFILE OR REPLACE gatescope_sql'))!;
    expect(sqlProfile).toMatch(/^CREATE SETTINGS PROFILE OR REPLACE gatescope_sql SETTINGS readonly = 1,/);
    expect(sqlProfile).toContain('max_execution_time = 30 MAX 30 CHANGEABLE_IN_READONLY');
    expect(sqlProfile).toContain('max_result_rows = 10100000 MAX 10100000 CHANGEABLE_IN_READONLY');
    expect(sqlProfile).toContain('additional_table_filters CHANGEABLE_IN_READONLY');
    expect(
      ddl.some((s) =>
        /^CREATE QUOTA OR REPLACE gatescope_sql FOR INTERVAL 1 minute MAX queries = 120/.test(s),
      ),
    ).toBe(true);
    expect(ddl.join('\n')).toContain("BY 'r\\'pw'");
    expect(() =>
      renderRoleDdl({
        database: 'gatescope',
        sql: {
          username: 'x; DROP',
          password: '',
          limits: {
            maxExecutionTimeS: 1,
            maxMemoryBytes: 1,
            maxThreads: 1,
            maxResultRows: 1,
            maxResultBytes: 1,
          },
        },
      }),
    ).toThrow(/identifier/);
  });
  it('gives the writer INSERT on the tables the collector fills, the schema version, and nothing else', () => {
    const grants = ddl.filter((s) => /^(GRANT|REVOKE)\b.* gatescope_writer$/.test(s));
    expect(grants).toEqual([
      'REVOKE ALL ON *.* FROM gatescope_writer',
      ...WRITER_INSERT_TABLES.map((t) => `GRANT INSERT ON gatescope.${t} TO gatescope_writer`),
      'GRANT SELECT ON gatescope.schema_migrations TO gatescope_writer',
    ]);
    expect(WRITER_INSERT_TABLES).toContain('http_requests');
    expect(WRITER_INSERT_TABLES).toContain('ingest_dead_letters');
    const profile = ddl.find((s) => s.startsWith('CREATE SETTINGS PROFILE OR REPLACE gatescope_writer'))!;
    expect(profile).toContain('allow_ddl = 0 CONST');
    expect(profile).not.toContain('readonly');
    // In a cluster every statement goes to every node.
    const clustered = renderRoleDdl({
      database: 'gatescope',
      cluster: 'c1',
      writer: { username: 'gatescope_writer', password: 'wpw' },
    });
    for (const s of clustered) expect(s).toMatch(/ ON CLUSTER 'c1'/);
  });
  const migrator = renderMigratorGrants({
    username: 'gatescope_migrator',
    database: 'gatescope',
    cluster: 'c1',
  });
  it('is valid ClickHouse: every statement parses with the engine’s own parser', async () => {
    for (const statement of [...ddl, ...migrator]) {
      const r = await readJson<{ f: string }>(ch.sql, {
        query: 'SELECT formatQuerySingleLine({q:String}) AS f',
        params: { q: statement },
      });
      expect(r.data[0].f.length, statement).toBeGreaterThan(10);
    }
  });
  it('cannot run on the embedded engine: chdb has no writable access storage', async () => {
    await expect(ch.client.command({ query: ddl[1] })).rejects.toMatchObject({ type: 'ACCESS_DENIED' });
  });
});
