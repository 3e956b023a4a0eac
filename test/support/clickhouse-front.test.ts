import { createClient, type ClickHouseClient, ClickHouseLogLevel } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startClickHouseFront, type ClickHouseFront } from './clickhouse-front.js';

// The test front, driven by the real @clickhouse/client exactly as gatescope's server mode drives a server.
let front: ClickHouseFront;
let client: ClickHouseClient;
const connect = (extra: Parameters<typeof createClient>[0] = {}) =>
  createClient({ url: front.url, log: { level: ClickHouseLogLevel.OFF }, ...extra });

beforeAll(async () => {
  front = await startClickHouseFront();
  client = connect();
  await client.command({ query: 'CREATE DATABASE IF NOT EXISTS t' });
  await client.command({
    query:
      "CREATE TABLE t.events (at DateTime64(3, 'UTC'), name String, tags Array(String), n UInt64) ENGINE = MergeTree ORDER BY at",
  });
});
afterAll(async () => {
  await client?.close();
  await front?.close();
});

const one = async <T>(query: string, extra: object = {}) =>
  (await (await client.query({ query, format: 'JSONEachRow', ...extra })).json<T>())[0];

describe('the ClickHouse HTTP interface, as the client uses it', () => {
  it('answers /ping and queries, with bound parameters passed through exactly', async () => {
    expect((await client.ping()).success).toBe(true);
    const tricky = "it's\ta \\ back\nslash";
    const row = await one<{ s: string; a: string[]; n: number }>(
      'SELECT {s:String} AS s, {a:Array(String)} AS a, {n:UInt32} + 1 AS n',
      { query_params: { s: tricky, a: ["x'y", 'z\\w', ''], n: 41 } },
    );
    expect(row).toEqual({ s: tricky, a: ["x'y", 'z\\w', ''], n: 42 });
  });

  it('applies URL settings to their own query only, DDL included (no process-wide SET left behind)', async () => {
    const setting = async (name: string, extra: object = {}) =>
      (await one<{ v: string }>(`SELECT toString(getSetting('${name}')) AS v`, extra)).v;
    expect(await setting('max_block_size', { clickhouse_settings: { max_block_size: '1234' } })).toBe('1234');
    expect(await setting('max_block_size')).not.toBe('1234');

    // readonly on one statement refuses it, and the next statement is not read-only.
    await expect(
      client.command({
        query: 'CREATE TABLE t.nope (a UInt8) ENGINE = Memory',
        clickhouse_settings: { readonly: '1' },
      }),
    ).rejects.toMatchObject({ type: 'READONLY' });
    await client.command({ query: 'CREATE TABLE t.yes (a UInt8) ENGINE = Memory' });
    await client.command({ query: 'INSERT INTO t.yes VALUES (1)', clickhouse_settings: { max_threads: 1 } });
    expect(await setting('max_threads')).not.toBe('1');
    expect(await setting('readonly')).toBe('0');

    // A client-side SET is a no-op over HTTP without a session.
    await client.command({ query: 'SET max_block_size = 77' });
    expect(await setting('max_block_size')).not.toBe('77');
  });

  it('stores JSONEachRow, Native and RowBinary insert bodies, and reports written rows in X-ClickHouse-Summary', async () => {
    const rows = [
      { at: '2024-05-01 10:00:00.123', name: 'a', tags: ['x', "it's"], n: 1 },
      { at: '2024-05-01 10:00:01.000', name: 'b\tc', tags: [], n: 2 ** 40 },
    ];
    const inserted = await client.insert({ table: 't.events', values: rows, format: 'JSONEachRow' });
    expect(inserted.summary?.written_rows).toBe('2');

    // Round-trip the same rows through binary formats the collector and other clients send.
    const exported: Record<string, Buffer> = {};
    for (const format of ['Native', 'RowBinary'] as const) {
      const r = await client.exec({ query: `SELECT * FROM t.events ORDER BY at FORMAT ${format}` });
      exported[format] = Buffer.concat((await r.stream.toArray()) as Buffer[]);
      expect(exported[format].length).toBeGreaterThan(0);
    }
    for (const [format, bytes] of Object.entries(exported)) {
      const r = await client.exec({ query: `INSERT INTO t.events FORMAT ${format}`, values: bytes as never });
      r.stream.resume();
      expect(r.summary?.written_rows, format).toBe('2');
    }
    const stored = await (
      await client.query({
        query: 'SELECT at, name, tags, n FROM t.events ORDER BY at, name',
        format: 'JSONEachRow',
        clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
      })
    ).json();
    expect(stored).toEqual([rows[0], rows[0], rows[0], rows[1], rows[1], rows[1]]);
  });

  it('sends errors as ClickHouse does: status by code, exception code header, Code/DB::Exception text', async () => {
    await expect(client.query({ query: 'SELECT * FROM t.missing' })).rejects.toMatchObject({
      code: '60',
      type: 'UNKNOWN_TABLE',
    });
    const res = await fetch(`${front.url}/?query=${encodeURIComponent('SELEC 1')}`, { method: 'POST' });
    expect(res.status).toBe(400);
    expect(res.headers.get('x-clickhouse-exception-code')).toBe('62');
    expect(await res.text()).toMatch(
      /^Code: 62\. DB::Exception: Syntax error.*\(SYNTAX_ERROR\) \(version 26\./s,
    );

    const get = await fetch(`${front.url}/?query=${encodeURIComponent('DROP TABLE t.events')}`);
    expect(get.status).toBe(500);
    expect(await get.text()).toMatch(/method GET implies readonly.*\(READONLY\)/);
    expect(await one<{ n: number }>('SELECT count() AS n FROM t.events')).toBeDefined();

    const session = await fetch(`${front.url}/?session_id=abc&query=SELECT+1`, { method: 'POST' });
    expect(session.status).toBe(501);
  });

  it('answers with the headers clients read, and compresses both ways when asked', async () => {
    const res = await fetch(
      `${front.url}/?query_id=q-1&default_format=JSONCompact&enable_http_compression=1`,
      {
        method: 'POST',
        body: 'SELECT 1 AS x',
        headers: { 'Accept-Encoding': 'gzip' },
      },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('x-clickhouse-query-id')).toBe('q-1');
    expect(res.headers.get('x-clickhouse-format')).toBe('JSONCompact');
    expect(JSON.parse(res.headers.get('x-clickhouse-summary')!)).toMatchObject({ read_rows: '1' });
    expect(JSON.parse(Buffer.from(await res.arrayBuffer()).toString()).data).toEqual([[1]]); // fetch gunzips
    const raw = await fetch(`${front.url}/?enable_http_compression=1`, {
      method: 'POST',
      body: 'SELECT 42',
      headers: { 'Accept-Encoding': 'gzip' },
    });
    expect(raw.headers.get('content-encoding')).toBe('gzip');

    const compressed = connect({ compression: { request: true, response: true } });
    await compressed.insert({
      table: 't.events',
      values: [{ at: '2024-05-02 00:00:00', name: 'gz', tags: [], n: 7 }],
      format: 'JSONEachRow',
    });
    const gz = await compressed.query({
      query: "SELECT n FROM t.events WHERE name = 'gz'",
      format: 'JSONEachRow',
    });
    expect((await gz.json<{ n: number }>()).map((r) => Number(r.n))).toEqual([7]);
    await compressed.close();
  });
});

describe('faults at the boundary', () => {
  const count = async (name: string) =>
    Number(
      (await front.rows<{ n: string }>(`SELECT count() AS n FROM t.events WHERE name = '${name}'`))[0].n,
    );
  const row = (name: string) => [{ at: '2024-06-01 00:00:00', name, tags: [], n: 1 }];

  it('error: a 500 before the statement runs stores nothing; the retry lands once', async () => {
    const fault = front.fault({ kind: 'error', match: /^INSERT/ });
    await expect(
      client.insert({ table: 't.events', values: row('e1'), format: 'JSONEachRow' }),
    ).rejects.toMatchObject({
      code: '1002',
    });
    expect(fault.hits).toBe(1);
    await client.insert({ table: 't.events', values: row('e1'), format: 'JSONEachRow' });
    expect(await count('e1')).toBe(1);
    expect(
      front.requests.filter((r) => r.statement.startsWith('INSERT INTO t.events') && r.fault === 'error')
        .length,
    ).toBeGreaterThanOrEqual(1);
  });

  it('error after: the insert committed but the client hears a failure (what dedup tokens are for)', async () => {
    front.fault({
      kind: 'error',
      after: true,
      match: /^INSERT/,
      status: 503,
      name: 'SOCKET_TIMEOUT',
      code: 209,
    });
    await expect(
      client.insert({ table: 't.events', values: row('e2'), format: 'JSONEachRow' }),
    ).rejects.toMatchObject({
      type: 'SOCKET_TIMEOUT',
    });
    expect(await count('e2')).toBe(1);
  });

  it('hang: the client times out with its own error', async () => {
    const impatient = connect({ request_timeout: 300 });
    const fault = front.fault({ kind: 'hang' });
    await expect(impatient.query({ query: 'SELECT 1' })).rejects.toThrow('Timeout error.');
    await fault.done;
    expect(
      (await impatient.query({ query: 'SELECT 1', format: 'JSONEachRow' }).then((r) => r.json())).length,
    ).toBe(1);
    await impatient.close();
  });

  it('reset and drop-body: the connection dies, nothing is stored', async () => {
    front.fault({ kind: 'reset', match: /^INSERT/ });
    await expect(
      client.insert({ table: 't.events', values: row('r1'), format: 'JSONEachRow' }),
    ).rejects.toThrow(/socket hang up|ECONNRESET/);
    const big = Array.from({ length: 5_000 }, () => row('d1')[0]);
    const drop = front.fault({ kind: 'drop-body', match: /^INSERT/ });
    await expect(client.insert({ table: 't.events', values: big, format: 'JSONEachRow' })).rejects.toThrow(
      /socket hang up|ECONNRESET|EPIPE/,
    );
    expect(drop.hits).toBe(1);
    expect(await count('r1')).toBe(0);
    expect(await count('d1')).toBe(0);
  });

  it('refuse: the port is closed until the fault is cleared', async () => {
    const fault = front.fault({ kind: 'refuse' });
    const ping = await client.ping();
    expect(ping.success).toBe(false);
    expect(String((ping as { error?: Error }).error)).toMatch(/ECONNREFUSED/);
    fault.clear();
    await fault.done;
    expect((await client.ping()).success).toBe(true);
    const timed = front.fault({ kind: 'refuse', forMs: 300 });
    expect((await client.ping()).success).toBe(false);
    await timed.done;
    expect((await client.ping()).success).toBe(true);
  });
});
