/* eslint-disable @typescript-eslint/no-explicit-any -- the tests read JSON response bodies */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ISTIO_HTTP_STREAM } from '../fixtures/als.js';
import { sendWithPythonClient } from '../support/als-client.js';
import { startGatescopeProcess, type GatescopeProcess } from '../support/gatescope-process.js';

// Hostile ad-hoc SQL by class, against the real all-in-one process (what `npm start` runs) on the embedded engine.
// Afterwards the process is alive, ingest stores entries exactly, and nothing was written outside its data dir.
const ADMIN = 'ops-admin-token-123456';
let gs: GatescopeProcess;
const outside = mkdtempSync(join(tmpdir(), 'gs-sql-attack-'));
const target = (name: string) => join(outside, name);

async function sql(query: string, format?: 'csv') {
  const res = await fetch(`${gs.http}api/v1/sql${format ? `?format=${format}` : ''}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query }),
  });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* csv */
  }
  return { status: res.status, body, text, headers: res.headers };
}

/** What no answer may ever contain: gatescope's own statements, settings, framing, or file contents. */
function expectNoLeak(text: string) {
  for (const s of [
    'formatQuerySingleLine',
    'EXPLAIN AST',
    'additional_table_filters',
    'gatescope-result',
    'format_custom',
    'readonly = 1',
    'root:x:0:0',
  ]) {
    expect(text, `answer leaks "${s}"`).not.toContain(s);
  }
}

beforeAll(async () => {
  gs = await startGatescopeProcess({
    env: {
      GATESCOPE_TOKENS: `ops:${ADMIN}:admin`,
      GATESCOPE_RETENTION_DAYS: '3650', // the ALS fixtures are dated 2024
      GATESCOPE_BATCH_MAX_DELAY_MS: '100',
      GATESCOPE_SQL_MAX_EXECUTION_TIME_S: '2',
      GATESCOPE_SQL_MAX_MEMORY_BYTES: String(256 * 1024 ** 2),
      GATESCOPE_SQL_MAX_RESULT_ROWS: '1000',
      GATESCOPE_SQL_MAX_RESULT_BYTES: String(256 * 1024),
      GATESCOPE_SQL_QUEUE: '2',
    },
  });
});
afterAll(async () => {
  await gs?.stop();
  rmSync(outside, { recursive: true, force: true });
});

describe('statement closing and multi-statement text runs nothing', () => {
  const cases = [
    `SELECT 1\n); INSERT INTO FUNCTION file('${target('a.txt')}', 'LineAsString') SELECT 'x'; SELECT (1`,
    `SELECT 1; INSERT INTO FUNCTION file('${target('b.txt')}', 'LineAsString') SELECT 'x'`,
    `SELECT 1 ;; CREATE TABLE gatescope.pwned (x UInt8) ENGINE = Memory`,
    `SELECT 1) UNION ALL SELECT * FROM file('/etc/passwd', 'LineAsString') --`,
    `SELECT 1 /* ); INSERT INTO FUNCTION file('${target('c.txt')}', 'LineAsString') SELECT 'x'; -- */`,
    `INSERT INTO FUNCTION file('${target('d.txt')}', 'LineAsString') SELECT 'x'`,
    `SELECT 1\n--\n; INSERT INTO FUNCTION file('${target('e.txt')}', 'LineAsString') SELECT 'x'`,
    `SELECT '\\'); INSERT INTO FUNCTION file(''${target('f.txt')}'', ''LineAsString'') SELECT 1; --'`,
  ];
  it.each(cases)('%s', async (query) => {
    const res = await sql(query);
    expectNoLeak(res.text);
    if (res.status === 200) {
      // Only a harmless single SELECT (a comment or a string literal swallowed the rest) may run.
      expect(res.body.rows).toBe(1);
    } else {
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(res.body.error.message.length).toBeGreaterThan(10);
    }
    for (const f of ['a', 'b', 'c', 'd', 'e', 'f']) expect(existsSync(target(`${f}.txt`))).toBe(false);
  });
  it('says where the second statement starts, and that SELEC is a syntax error', async () => {
    const multi = await sql('SELECT 1;\nSELECT 2');
    expect(multi.status).toBe(400);
    expect(multi.body.error).toMatchObject({ code: 'ERR_SQL_MULTI_STATEMENT' });
    expect(multi.body.error.message).toMatch(/line 1, column 9/);
    const typo = await sql('SELEC 1');
    expect(typo.status).toBe(400);
    expect(typo.body.error.code).toBe('ERR_SQL_SYNTAX');
    expect(typo.body.error.message).toMatch(/^Syntax error at line 1, column 7/);
    expect((await sql('SELECT count() FROM gatescope.pwned')).body.error.message).toMatch(/pwned/);
  });
});

describe('table functions: every one the engine lists is refused unless it only generates rows', () => {
  let names: string[] = [];
  beforeAll(async () => {
    // The same engine build as the process, opened here on its own directory.
    const require = createRequire(import.meta.url);
    const { Session } = require('chdb') as typeof import('chdb');
    const dir = mkdtempSync(join(tmpdir(), 'gs-tf-list-'));
    const s = new Session(dir);
    names = (
      await s.queryAsync('SELECT name FROM system.table_functions ORDER BY name', { format: 'JSONEachRow' })
    )
      .text()
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { name: string }).name);
    s.close();
    rmSync(dir, { recursive: true, force: true });
  });
  it('walks system.table_functions', async () => {
    const allowed = [
      'numbers',
      'numbers_mt',
      'zeros',
      'zeros_mt',
      'generate_series',
      'generateSeries',
      'generateRandom',
      'primes',
      'values',
      'SQLStandardValues',
      'null',
    ];
    expect(names.length).toBeGreaterThan(40);
    const outcomes: string[] = [];
    for (const name of names) {
      let res = await sql(`SELECT * FROM ${name}('${target('tf.txt')}') LIMIT 1`);
      // view(), viewIfPermitted(), … take a query, not a string: ask again in their own form.
      if (res.body?.error?.code === 'ERR_SQL_SYNTAX')
        res = await sql(`SELECT * FROM ${name}(SELECT 1) LIMIT 1`);
      if (res.body?.error?.code === 'ERR_SQL_SYNTAX')
        res = await sql(`SELECT * FROM ${name}(SELECT 1 ELSE null('x UInt8')) LIMIT 1`);
      expectNoLeak(res.text);
      const refused = res.status === 403 && res.body.error.code === 'ERR_SQL_FUNCTION';
      if (allowed.includes(name)) expect(refused, `${name} is a generator`).toBe(false);
      else expect(refused, `${name}: ${res.status} ${res.text.slice(0, 200)}`).toBe(true);
      outcomes.push(`${name}:${res.status}`);
    }
    expect(existsSync(target('tf.txt'))).toBe(false);
  });
});

describe('other databases, dictionaries, files and settings are out of reach', () => {
  it.each([
    ['SELECT * FROM system.users', 'ERR_SQL_DATABASE'],
    ['SELECT name FROM `system`.`tables`', 'ERR_SQL_DATABASE'],
    ['SELECT * FROM INFORMATION_SCHEMA.TABLES', 'ERR_SQL_DATABASE'],
    ['WITH x AS (SELECT * FROM system.settings) SELECT * FROM x', 'ERR_SQL_DATABASE'],
    [
      'SELECT * FROM gatescope.http_requests AS r JOIN system.one AS o ON 1 = 1 JOIN system.processes AS p ON 1 = 1',
      'ERR_SQL_DATABASE',
    ],
    ['SELECT 1 WHERE 1 IN system.numbers', 'ERR_SQL_UNSUPPORTED'],
    // Alert receivers' URLs and signing secrets (the API never returns them either).
    ['SELECT url, secret FROM gatescope.alert_receiver_secrets', 'ERR_SQL_DATABASE'],
    ['SELECT * FROM alert_receiver_secrets', 'ERR_SQL_DATABASE'],
    ["SELECT 1 WHERE 'x' IN (SELECT secret FROM alert_receiver_secrets)", 'ERR_SQL_DATABASE'],
    ["SELECT file('/etc/passwd')", 'ERR_SQL_FUNCTION'],
    ["SELECT dictGet('d', 'a', 1)", 'ERR_SQL_FUNCTION'],
    ["SELECT hasColumnInTable('system', 'users', 'name')", 'ERR_SQL_FUNCTION'],
    ["SELECT getSetting('readonly')", 'ERR_SQL_FUNCTION'],
    ["SELECT joinGet('system.x', 'y', 1)", 'ERR_SQL_FUNCTION'],
    ["SELECT * FROM merge('system', '.*')", 'ERR_SQL_FUNCTION'],
    ["SELECT * FROM url('http://127.0.0.1:9/x', 'LineAsString', 'a String')", 'ERR_SQL_FUNCTION'],
  ])('%s -> %s', async (query, code) => {
    const res = await sql(query);
    expect(res.status, res.text).toBeGreaterThanOrEqual(400);
    expect(res.body.error.code).toBe(code);
    expectNoLeak(res.text);
  });

  it.each([
    'SELECT 1 SETTINGS readonly = 0',
    'SELECT 1 SETTINGS max_execution_time = 1000, readonly = 0',
    'SELECT * FROM (SELECT 1 SETTINGS readonly = 0)',
    'WITH c AS (SELECT 1 SETTINGS max_threads = 64) SELECT * FROM c',
    'SELECT 1 SETTINGS readonly = 0 UNION ALL SELECT 2',
    'SELECT 1 UNION ALL SELECT 2 SETTINGS readonly = 0',
    'SELECT (SELECT 1 SETTINGS max_memory_usage = 0)',
    'SELECT 1 WHERE 1 IN (SELECT 1 SETTINGS max_result_rows = 0)',
  ])('SETTINGS anywhere is refused: %s', async (query) => {
    const res = await sql(query);
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('ERR_SQL_SETTINGS');
  });

  it.each([
    `SELECT 1 INTO OUTFILE '${target('o1.txt')}'`,
    `SELECT 1 INTO OUTFILE '${target('o2.txt')}' TRUNCATE FORMAT CSV`,
    'SELECT 1 FORMAT JSON',
    'SELECT 1 FORMAT Native',
    'SELECT * FROM (SELECT 1) FORMAT TSV',
  ])('FORMAT and INTO OUTFILE are refused: %s', async (query) => {
    const res = await sql(query);
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('ERR_SQL_OUTPUT');
    expect(existsSync(target('o1.txt')) || existsSync(target('o2.txt'))).toBe(false);
  });
});

describe('resource bombs are stopped by the engine with a clear answer', () => {
  it('time', async () => {
    const res = await sql('SELECT count() FROM numbers(1e13) WHERE cityHash64(number) = 42');
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('ERR_SQL_TIMEOUT');
    expect(res.body.error.message).toMatch(/longer than allowed \(2 s\)/);
  });
  it('memory', async () => {
    const res = await sql("SELECT length(groupArray(repeat('x', 100000))) FROM numbers(100000)");
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('ERR_SQL_MEMORY');
  });
  it('result rows and bytes: cut at the cap, flagged', async () => {
    const rows = await sql('SELECT number FROM numbers(1e12)');
    expect(rows.status, rows.text).toBe(200);
    expect(rows.body).toMatchObject({ rows: 1000, truncated: true, truncated_by: 'rows' });
    const bytes = await sql("SELECT repeat('x', 1000) AS s FROM numbers(1e9)");
    expect(bytes.status, bytes.text).toBe(200);
    expect(bytes.body).toMatchObject({ truncated: true, truncated_by: 'bytes' });
    expect(bytes.body.rows).toBeLessThan(262);
    expect(bytes.body.rows).toBeGreaterThan(200);
    const csv = await sql('SELECT number FROM numbers(1e12)', 'csv');
    expect(csv.headers.get('x-gatescope-truncated')).toBe('rows');
    expect(csv.text.trim().split('\n')).toHaveLength(1001);
  });
  it('concurrency: one runs, two wait, the rest get 429 with Retry-After', async () => {
    const slow = 'SELECT count() FROM numbers(1e13) WHERE cityHash64(number) = 42';
    const answers = await Promise.all(Array.from({ length: 6 }, () => sql(slow)));
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses.filter((s) => s === 429)).toHaveLength(3);
    expect(statuses.filter((s) => s === 400)).toHaveLength(3);
    const busy = answers.find((a) => a.status === 429)!;
    expect(busy.body.error.code).toBe('ERR_SQL_BUSY');
    expect(Number(busy.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});

describe('after the attacks', () => {
  it('the process is alive, ingest stores every entry exactly, nothing was written outside the data dir', async () => {
    expect((await fetch(`${gs.http}healthz`)).status).toBe(200);
    const client = await sendWithPythonClient(gs.als, [ISTIO_HTTP_STREAM.map((f) => f.bytes)]);
    const expected = ISTIO_HTTP_STREAM.reduce((n, f) => n + f.expected.http.length, 0);
    let stored = -1;
    for (let i = 0; i < 100 && stored !== expected; i++) {
      await new Promise((r) => setTimeout(r, 200));
      stored = (await sql('SELECT count() AS n FROM http_requests')).body.data?.[0]?.n;
    }
    await client.finish();
    expect(stored).toBe(expected);
    // Not one more row later either (no duplicate from a retried batch).
    await new Promise((r) => setTimeout(r, 500));
    expect((await sql('SELECT count() AS n FROM http_requests')).body.data[0].n).toBe(expected);
    expect(readdirSync(outside)).toEqual([]);
    expect(gs.child.exitCode).toBeNull();
  });
});
