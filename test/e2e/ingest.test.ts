import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HTTP_REQUEST_COLUMNS, TCP_CONNECTION_COLUMNS } from '@gatescope/als';
import { loadConfig } from '@gatescope/config';
import { startGatescope, type Gatescope } from '@gatescope/gatescope';
import { PathTemplater } from '@gatescope/path-template';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ISTIO_HTTP_STREAM, NO_IDENTIFIER_MESSAGE, TCP_STREAM, type Row } from '../fixtures/als.js';
import { sendWithPythonClient } from '../support/als-client.js';

// The all-in-one process on port 0, fed by an independent gRPC client (Python grpcio) over four concurrent,
// never half-closed streams: two Istio gateway streams with identical identifiers, a TCP stream, and a
// stream that never sent an identifier. Every mapped column of every row is read back and compared.
let gs: Gatescope;
beforeAll(async () => {
  const config = loadConfig({
    GATESCOPE_DATA_DIR: mkdtempSync(join(tmpdir(), 'gs-e2e-ingest-')),
    GATESCOPE_HTTP_PORT: '0',
    GATESCOPE_ALS_PORT: '0',
    GATESCOPE_RETENTION_DAYS: '3650', // the fixtures are dated 2024
    GATESCOPE_BATCH_MAX_DELAY_MS: '200',
  });
  gs = await startGatescope(config, pino({ level: 'silent' }));
});
afterAll(async () => {
  await gs?.close();
});

const key = (r: Row) =>
  `${r.start_time}|${r.request_id ?? ''}|${r.path ?? ''}|${String(r.downstream_remote_port).padStart(5, '0')}`;
const byKey = (a: Row, b: Row) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);

async function rows(table: string, columns: readonly { name: string }[]): Promise<Row[]> {
  const rs = await gs.clickhouse.client.query({
    query: `SELECT ${columns.map((c) => c.name).join(', ')} FROM gatescope.${table}`,
    format: 'JSONEachRow',
    clickhouse_settings: { date_time_output_format: 'simple', output_format_json_quote_64bit_integers: 0 },
  });
  return ((await rs.json()) as Row[]).sort(byKey);
}

describe('ALS -> ClickHouse, end to end', () => {
  it('stores every entry of every stream with every column mapped, while the streams stay open', async () => {
    const http = ISTIO_HTTP_STREAM.map((f) => f.bytes);
    const client = await sendWithPythonClient(`127.0.0.1:${gs.alsPort}`, [
      http,
      TCP_STREAM.map((f) => f.bytes),
      [NO_IDENTIFIER_MESSAGE.bytes],
      http,
    ]);

    // The same path templating the collector applies (built-in rules, default cap).
    const templater = new PathTemplater();
    const expectedHttp = [...ISTIO_HTTP_STREAM, ...ISTIO_HTTP_STREAM, NO_IDENTIFIER_MESSAGE]
      .flatMap((f) => f.expected.http)
      .map((r) => ({ ...r, path_template: templater.template(String(r.route_name), String(r.path)) }))
      .sort(byKey);
    const expectedTcp = TCP_STREAM.flatMap((f) => f.expected.tcp).sort(byKey);
    expect(expectedHttp.length).toBeGreaterThan(30);
    expect(expectedTcp.length).toBeGreaterThan(0);

    const deadline = Date.now() + 20_000;
    let gotHttp: Row[] = [];
    let gotTcp: Row[] = [];
    while (Date.now() < deadline) {
      [gotHttp, gotTcp] = await Promise.all([
        rows('http_requests', HTTP_REQUEST_COLUMNS),
        rows('tcp_connections', TCP_CONNECTION_COLUMNS),
      ]);
      if (gotHttp.length >= expectedHttp.length && gotTcp.length >= expectedTcp.length) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(gotHttp).toHaveLength(expectedHttp.length);
    gotHttp.forEach((row, i) => expect(row, `http row ${i} (${key(row)})`).toEqual(expectedHttp[i]));
    expect(gotTcp).toEqual(expectedTcp);

    // Identical identifiers on two streams, and a stream without one, are attributed as Envoy meant.
    const byNode = await gs.clickhouse.client.query({
      query: 'SELECT node_id, count() AS n FROM gatescope.http_requests GROUP BY node_id ORDER BY node_id',
      format: 'JSONEachRow',
    });
    const nodes = (await byNode.json()) as { node_id: string; n: number }[];
    expect(nodes.find((n) => n.node_id === 'unknown')?.n).toBe(NO_IDENTIFIER_MESSAGE.expected.http.length);

    const out = await client.finish();
    expect(out).toMatch(/^sent$/m);
  });

  it('exposes Prometheus metrics that promtool accepts, with the ingest counters moved', async () => {
    const res = await fetch(`http://127.0.0.1:${gs.httpPort}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    for (const name of [
      'gatescope_als_entries_received_total{type="http"}',
      'gatescope_als_entries_received_total{type="tcp"}',
      'gatescope_clickhouse_rows_inserted_total{table="http_requests"}',
      'gatescope_clickhouse_insert_batches_total{table="http_requests",outcome="ok"}',
    ]) {
      const m = new RegExp(`^${name.replace(/[{}|]/g, '\\$&')} (\\d+)`, 'm').exec(text);
      expect(Number(m?.[1]), name).toBeGreaterThan(0);
    }
    expect(text).toMatch(/^gatescope_clickhouse_insert_duration_seconds_bucket\{/m);
    expect(text).toMatch(/^gatescope_als_open_streams /m);
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(lint.error, 'promtool must be installed (test/setup/system-deps.sh)').toBeUndefined();
    // prom-client's own default gauges nodejs_active_{handles,requests,resources}_total break the lint's
    // naming rule upstream; every other line, all of gatescope's own metrics included, must be clean.
    const problems = (lint.stdout + lint.stderr)
      .split('\n')
      .filter(
        (l) => l.trim() !== '' && !/^nodejs_active_(handles|requests|resources)_total non-counter/.test(l),
      );
    expect(problems).toEqual([]);
  });
});
