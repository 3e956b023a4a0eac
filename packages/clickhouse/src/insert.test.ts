import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AccessLogDecoder, HTTP_REQUEST_COLUMNS } from '@gatescope/als';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_PATH_TEMPLATER, makeTrafficMessage } from '../../../test/fixtures/als.js';
import { createClickHouse, type ClickHouse } from './clickhouse.js';
import { classifyInsertError } from './insert-errors.js';
import { migrate } from './migrations.js';

// The engine's own answers, not hand-written errors: each failure is produced on the real embedded engine
// (a server answers with the same codes over HTTP).
let ch: ClickHouse;
let dir: string;
const columns = HTTP_REQUEST_COLUMNS.map((c) => c.name);
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gs-insert-'));
  ch = await createClickHouse({ database: 'gatescope', dataDir: dir });
  await migrate(ch, { retentionDays: 3650, rollupRetentionDays: 3650 });
});
afterAll(async () => {
  await ch?.close();
});

function rows(seed: number, entries: number, start?: Date): Buffer {
  const d = new AccessLogDecoder({ pathTemplater: FIXTURE_PATH_TEMPLATER });
  d.decode(makeTrafficMessage({ entries, seed, start }).bytes, {});
  return d.takeHttp().data;
}

const one = async (sql: string) =>
  Object.values(
    (await (await ch.client.query({ query: sql, format: 'JSONEachRow' })).json())[0] as object,
  ).map(Number);

const failure = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    return classifyInsertError(err);
  }
  throw new Error('the insert succeeded');
};

describe('the embedded engine', () => {
  it('fsyncs every part it writes (and its directory) before an insert returns', async () => {
    const rs = await ch.client.query({
      query:
        "SELECT name, engine_full FROM system.tables WHERE database = 'gatescope' AND engine LIKE '%MergeTree'",
      format: 'JSONEachRow',
    });
    const tables = await rs.json<{ name: string; engine_full: string }>();
    expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(['http_requests', 'http_routes_1h']));
    for (const t of tables) {
      expect(t.engine_full, t.name).toMatch(/fsync_after_insert = 1/);
      expect(t.engine_full, t.name).toMatch(/fsync_part_directory = 1/);
    }
  });
});

describe('insert deduplication', () => {
  it('a retry with the same token stores nothing twice: raw table and every rollup of the cascade', async () => {
    const start = new Date('2030-03-01T10:00:00Z');
    const data = rows(11, 400, start);
    const file = join(dir, 'batch.native');
    writeFileSync(file, data);
    const where = "toDate(start_time) = '2030-03-01'";
    const settings = {
      insert_deduplication_token: 'test:epoch:1',
      deduplicate_blocks_in_dependent_materialized_views: 1,
    };
    expect(
      await ch.insertNative('http_requests', columns, { file }, settings, { checkDuplicate: true }),
    ).toEqual({
      duplicate: false,
    });
    // The same bytes again (from memory this time), as after a timeout whose insert had landed.
    expect(await ch.insertNative('http_requests', columns, data, settings, { checkDuplicate: true })).toEqual(
      {
        duplicate: true,
      },
    );
    const rollupWhere = "toDate(bucket_start) = '2030-03-01'";
    expect([
      (await one(`SELECT count() FROM gatescope.http_requests WHERE ${where}`))[0],
      (await one(`SELECT sum(requests) FROM gatescope.http_requests_1m WHERE ${rollupWhere}`))[0],
      (await one(`SELECT sum(requests) FROM gatescope.http_routes_1m WHERE ${rollupWhere}`))[0],
      (await one(`SELECT sum(requests) FROM gatescope.http_requests_1h WHERE ${rollupWhere}`))[0],
      (await one(`SELECT sum(requests) FROM gatescope.http_routes_1h WHERE ${rollupWhere}`))[0],
    ]).toEqual([400, 400, 400, 400, 400]);
    // Another token is other rows: stored.
    await ch.insertNative('http_requests', columns, data, {
      ...settings,
      insert_deduplication_token: 'test:epoch:2',
    });
    expect(await one(`SELECT count() FROM gatescope.http_requests WHERE ${where}`)).toEqual([800]);
  });
});

describe('classifyInsertError on the engine', () => {
  it('rows the engine refuses are permanent: a constraint, too many partitions, a type, truncated data', async () => {
    await ch.client.command({
      query: "ALTER TABLE gatescope.http_requests ADD CONSTRAINT no_poison CHECK route_name != 'poison'",
    });
    try {
      const d = new AccessLogDecoder({ pathTemplater: FIXTURE_PATH_TEMPLATER });
      const { encodeStreamAccessLogsMessage } = await import('@gatescope/als');
      d.decode(
        encodeStreamAccessLogsMessage({
          http_logs: {
            log_entry: [
              { common_properties: { route_name: 'poison', start_time: { seconds: 1_900_000_000 } } },
            ],
          },
        }),
        {},
      );
      const poison = d.takeHttp().data;
      expect(await failure(ch.insertNative('http_requests', columns, poison))).toMatchObject({
        transient: false,
        code: 469,
        name: 'VIOLATED_CONSTRAINT',
      });
    } finally {
      await ch.client.command({ query: 'ALTER TABLE gatescope.http_requests DROP CONSTRAINT no_poison' });
    }
    // 30 days in one insert, 10 partitions allowed.
    const spread = Buffer.concat(
      Array.from({ length: 30 }, (_, i) => rows(100 + i, 1, new Date(Date.UTC(2030, 4, 1 + i)))),
    );
    expect(
      await failure(
        ch.insertNative('http_requests', columns, spread, { max_partitions_per_insert_block: 10 }),
      ),
    ).toMatchObject({ transient: false, code: 252 });
    // A column declared with another type than the table's.
    const typed = rows(12, 3);
    const bad = Buffer.from(typed);
    const at = bad.indexOf(Buffer.from('UInt16'));
    bad.write('String', at); // same length: response_code is now declared a String, its data no longer lines up
    expect((await failure(ch.insertNative('http_requests', columns, bad))).transient).toBe(false);
    expect(
      await failure(ch.insertNative('http_requests', columns, typed.subarray(0, typed.length - 7))),
    ).toMatchObject({ transient: false });
  });

  it('everything else is transient: unknown table, no server, a timeout', async () => {
    expect(await failure(ch.insertNative('no_such_table', columns, rows(13, 2)))).toMatchObject({
      transient: true,
      code: 60,
    });
    const dead = await createClickHouse({ url: 'http://127.0.0.1:9', database: 'gatescope', dataDir: dir });
    expect(await failure(dead.insertNative('http_requests', columns, rows(14, 2)))).toMatchObject({
      transient: true,
    });
    await dead.close();
    expect(classifyInsertError(new Error('Timeout error.'))).toEqual({
      transient: true,
      message: 'Timeout error.',
    });
    // TOO_MANY_PARTS without "partitions": merges are behind, back off.
    expect(
      classifyInsertError(
        Object.assign(new Error('Too many parts (3001 with average size of 1.00 MiB) in table'), {
          code: '252',
          type: 'TOO_MANY_PARTS',
        }),
      ).transient,
    ).toBe(true);
  });
});
