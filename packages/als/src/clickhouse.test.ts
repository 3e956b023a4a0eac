/**
 * Inserts the decoder's Native blocks into a real embedded ClickHouse (chdb), with the tables created
 * from the migration file, and compares what ClickHouse returns with the fixtures' expected rows. The
 * blocks declare plain String where the tables have LowCardinality(String): the engine converts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { renderMigration } from '@gatescope/clickhouse';
import { createChdbConnection } from 'chdb/connection';
import {
  ALL_FIXTURES,
  FIXTURE_PATH_TEMPLATER,
  ISTIO_HTTP_STREAM,
  NO_IDENTIFIER_MESSAGE,
  TCP_STREAM,
  makeTrafficMessage,
} from '../../../test/fixtures/als.js';
import { HTTP_REQUEST_COLUMNS, TCP_CONNECTION_COLUMNS, columnList, type ColumnSpec } from './columns.js';
import { AccessLogDecoder, type StreamState } from './decoder.js';
import { concatNativeBlocks } from './native-concat.js';
import { readNative, type Row } from './native-reader.js';

const MIGRATION = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../clickhouse/migrations/0001_create_access_log.sql',
);

function migrationStatements(): string[] {
  // The fixtures are dated 2024: a 30-day TTL would drop them as soon as they are written.
  return renderMigration(readFileSync(MIGRATION, 'utf8'), {
    database: 'gatescope',
    retentionDays: 3650,
    rollupRetentionDays: 3650,
  });
}

let dir: string;
let client: ClickHouseClient;
let fileNo = 0;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'gatescope-als-chdb-'));
  // The type comes from @clickhouse/client-common: chdb implements the same Connection contract.
  client = createClient({ connection: createChdbConnection({ path: path.join(dir, 'data') }) as never });
  await client.command({ query: 'CREATE DATABASE IF NOT EXISTS gatescope' });
  for (const statement of migrationStatements()) await client.command({ query: statement });
});

afterAll(async () => {
  await client?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function insertNative(table: string, columns: readonly ColumnSpec[], data: Buffer): Promise<void> {
  const file = path.join(dir, `batch-${fileNo++}.bin`);
  writeFileSync(file, data);
  await client.command({
    query: `INSERT INTO gatescope.${table} (${columnList(columns)}) FROM INFILE '${file}' FORMAT Native`,
  });
}

async function selectRows(table: string, columns: readonly ColumnSpec[], where: string): Promise<Row[]> {
  const rs = await client.query({
    query:
      `SELECT ${columnList(columns)} FROM gatescope.${table} WHERE ${where} ORDER BY start_time, request_key`.replace(
        ', request_key',
        table === 'http_requests' ? ', request_id, path' : ', downstream_remote_port',
      ),
    format: 'JSONEachRow',
    clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
  });
  return (await rs.json()) as Row[];
}

const byTimeThenId = (table: string) => (a: Row, b: Row) => {
  const k = (r: Row) =>
    `${r.start_time}|${table === 'http_requests' ? `${r.request_id}|${r.path}` : String(r.downstream_remote_port).padStart(5, '0')}`;
  return k(a) < k(b) ? -1 : k(a) > k(b) ? 1 : 0;
};

describe('Native blocks into ClickHouse (chdb)', () => {
  it('the column specs match the migration (names, types, order, no MATERIALIZED columns)', async () => {
    for (const [table, columns] of [
      ['http_requests', HTTP_REQUEST_COLUMNS],
      ['tcp_connections', TCP_CONNECTION_COLUMNS],
    ] as const) {
      const rs = await client.query({
        query: `SELECT name, type FROM system.columns WHERE database = 'gatescope' AND table = {t:String} AND default_kind != 'MATERIALIZED' ORDER BY position`,
        query_params: { t: table },
        format: 'JSONEachRow',
      });
      const actual = (await rs.json()) as { name: string; type: string }[];
      expect(actual.map((c) => c.name)).toEqual(columns.map((c) => c.name));
      // ClickHouse normalises `DateTime64(6, 'UTC')` the same way the SQL spells it.
      expect(actual.map((c) => c.type)).toEqual(columns.map((c) => c.type));
    }
  });

  it('round-trips every fixture through ClickHouse to the expected rows', async () => {
    const decoder = new AccessLogDecoder({ pathTemplater: FIXTURE_PATH_TEMPLATER });
    const expected = { http: [] as Row[], tcp: [] as Row[] };
    for (const stream of [ISTIO_HTTP_STREAM, TCP_STREAM, [NO_IDENTIFIER_MESSAGE]]) {
      const state: StreamState = {};
      for (const f of stream) {
        decoder.decode(f.bytes, state);
        expected.http.push(...f.expected.http);
        expected.tcp.push(...f.expected.tcp);
      }
    }
    expect(ALL_FIXTURES.length).toBe(7);
    const h = decoder.takeHttp();
    const t = decoder.takeTcp();
    await insertNative('http_requests', HTTP_REQUEST_COLUMNS, h.data);
    await insertNative('tcp_connections', TCP_CONNECTION_COLUMNS, t.data);
    const httpRows = await selectRows('http_requests', HTTP_REQUEST_COLUMNS, `start_time < '2024-05-02'`);
    const tcpRows = await selectRows('tcp_connections', TCP_CONNECTION_COLUMNS, `start_time < '2024-05-02'`);
    expect(httpRows).toEqual([...expected.http].sort(byTimeThenId('http_requests')));
    expect(tcpRows).toEqual([...expected.tcp].sort(byTimeThenId('tcp_connections')));

    const status = await client.query({
      query: `SELECT status_class, count() AS n FROM gatescope.http_requests WHERE start_time < '2024-05-02' GROUP BY status_class ORDER BY status_class`,
      format: 'JSONEachRow',
      clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
    });
    expect(await status.json()).toEqual([
      { status_class: '2xx', n: 10 },
      { status_class: '4xx', n: 4 },
      { status_class: '5xx', n: 4 },
      { status_class: 'none', n: 1 },
    ]);
  });

  it('a generated batch reads back from ClickHouse exactly as the Native reader sees it', async () => {
    const decoder = new AccessLogDecoder({ pathTemplater: FIXTURE_PATH_TEMPLATER });
    const state: StreamState = {};
    const start = new Date('2024-06-01T00:00:00Z');
    decoder.decode(makeTrafficMessage({ entries: 500, identifier: true, start, seed: 11 }).bytes, state);
    decoder.decode(
      makeTrafficMessage({ entries: 500, start: new Date(start.getTime() + 10_000), seed: 12 }).bytes,
      state,
    );
    const h = decoder.takeHttp();
    expect(h.rows).toBe(1000);
    const local = readNative(h.data).sort(byTimeThenId('http_requests'));
    await insertNative('http_requests', HTTP_REQUEST_COLUMNS, h.data);
    const stored = await selectRows(
      'http_requests',
      HTTP_REQUEST_COLUMNS,
      `toDate(start_time) = '2024-06-01'`,
    );
    expect(stored).toEqual(local);
  });

  it('many per-message blocks, concatenated or merged, insert the same rows', async () => {
    const decoder = new AccessLogDecoder({ pathTemplater: FIXTURE_PATH_TEMPLATER });
    const state: StreamState = {};
    const blocks: Buffer[] = [];
    const streams: (Uint32Array | undefined)[] = [];
    for (let i = 0; i < 20; i++) {
      const start = new Date(Date.UTC(2024, 6, 1, 0, 0, i));
      decoder.decode(
        makeTrafficMessage({ entries: 25, identifier: i === 0, start, seed: 100 + i }).bytes,
        state,
      );
      const taken = decoder.takeHttp();
      blocks.push(taken.data);
      streams.push(taken.streams);
    }
    // The writer's stream ranges make the same block as walking every string, into any buffer handed out.
    const merged = concatNativeBlocks(blocks);
    const scratch = Buffer.alloc(merged.length + 100, 0xee);
    expect(concatNativeBlocks(blocks, streams).equals(merged)).toBe(true);
    expect(concatNativeBlocks(blocks, streams, (n) => scratch.subarray(0, n)).equals(merged)).toBe(true);
    expect(concatNativeBlocks(blocks, [undefined, ...streams.slice(1)]).equals(merged)).toBe(true);
    // Ranges that do not describe the block are refused, not trusted.
    const wrong = Uint32Array.from(streams[1]!);
    wrong[3] += 1;
    expect(() => concatNativeBlocks(blocks.slice(0, 2), [streams[0], wrong])).toThrow(/stream ranges/);
    const local = readNative(Buffer.concat(blocks)).sort(byTimeThenId('http_requests'));
    expect(local).toHaveLength(500);
    // Several blocks back to back in one insert are valid Native ...
    await insertNative('http_requests', HTTP_REQUEST_COLUMNS, Buffer.concat(blocks));
    expect(
      await selectRows('http_requests', HTTP_REQUEST_COLUMNS, `toDate(start_time) = '2024-07-01'`),
    ).toEqual(local);
    // ... and so is the one block concatNativeBlocks makes of them.
    await client.command({
      query: `ALTER TABLE gatescope.http_requests DELETE WHERE toDate(start_time) = '2024-07-01' SETTINGS mutations_sync = 1`,
    });
    await insertNative('http_requests', HTTP_REQUEST_COLUMNS, concatNativeBlocks(blocks));
    expect(
      await selectRows('http_requests', HTTP_REQUEST_COLUMNS, `toDate(start_time) = '2024-07-01'`),
    ).toEqual(local);
  });
});
