import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '@gatescope/config';
import { startGatescope, type Gatescope } from '@gatescope/gatescope';
import { createLogger } from '@gatescope/runtime';
import { startTelemetry, type Telemetry } from '@gatescope/telemetry';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASE_SECONDS, ISTIO_HTTP_STREAM } from '../fixtures/als.js';
import { alsClient } from '../support/als-client.js';

// gatescope's own traces, checked with an in-memory exporter on the real all-in-one process (embedded engine,
// gRPC ALS, HTTP on port 0): the span tree of one API call (the caller's traceparent continued, down to the
// ClickHouse query and its rows) and of one insert (the batch flush and the insert with its row count), and
// trace ids in the log lines written inside them.
const exporter = new InMemorySpanExporter();
// Exports are asynchronous: `spans()` waits for the pending ones.
const processor = new SimpleSpanProcessor({ exporter });
let telemetry: Telemetry;
let gs: Gatescope;
const logLines: Record<string, unknown>[] = [];

beforeAll(async () => {
  telemetry = await startTelemetry({}, 'gatescope-test', {
    spanProcessors: [processor],
  });
  const config = loadConfig({
    GATESCOPE_DATA_DIR: mkdtempSync(join(tmpdir(), 'gs-e2e-tracing-')),
    GATESCOPE_HTTP_PORT: '0',
    GATESCOPE_ALS_PORT: '0',
    GATESCOPE_RETENTION_DAYS: '3650', // the fixtures are dated 2024
    GATESCOPE_ROLLUP_RETENTION_DAYS: '3650',
    GATESCOPE_LOG_LEVEL: 'info',
  });
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean))
        logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  gs = await startGatescope(config, createLogger(config, 'gatescope', sink));
});
afterAll(async () => {
  await gs?.close();
  await telemetry?.shutdown();
});

async function spans(): Promise<ReadableSpan[]> {
  await processor.forceFlush();
  return exporter.getFinishedSpans();
}
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;
function ancestors(s: ReadableSpan, all: ReadableSpan[]): ReadableSpan[] {
  const out: ReadableSpan[] = [];
  for (let p = parentOf(s); p;) {
    const parent = all.find((x) => x.spanContext().spanId === p);
    if (!parent) break;
    out.push(parent);
    p = parentOf(parent);
  }
  return out;
}

describe('OpenTelemetry spans', () => {
  it('one insert: a collector.flush span with the ClickHouse insert and its row count under it', async () => {
    const rows = ISTIO_HTTP_STREAM.flatMap((f) => f.expected.http).length;
    const client = alsClient(gs.alsPort);
    await client.ready();
    const { call } = client.open();
    for (const f of ISTIO_HTTP_STREAM) call.write(f.bytes);
    // Under load the entries may arrive in more than one batch: wait until the flushes hold them all.
    const flushes = async () =>
      (await spans()).filter(
        (s) => s.name === 'collector.flush' && s.attributes['db.collection.name'] === 'http_requests',
      );
    await expect
      .poll(
        async () => {
          await gs.flush();
          return (await flushes()).reduce((n, s) => n + Number(s.attributes['gatescope.batch.rows']), 0);
        },
        { timeout: 30_000 },
      )
      .toBe(rows);
    call.end();
    client.close();

    const all = await spans();
    for (const flush of await flushes()) {
      // Each flush holds exactly one insert, with the flush's rows, in the same trace.
      const inserts = all.filter(
        (s) => s.name === 'clickhouse.insert_native' && parentOf(s) === flush.spanContext().spanId,
      );
      expect(inserts).toHaveLength(1);
      expect(inserts[0].attributes).toMatchObject({
        'db.system.name': 'clickhouse',
        'db.namespace': 'gatescope',
        'db.collection.name': 'http_requests',
        'db.operation.name': 'INSERT',
        'gatescope.clickhouse.written_rows': flush.attributes['gatescope.batch.rows'],
      });
      expect(inserts[0].spanContext().traceId).toBe(flush.spanContext().traceId);
    }
    // The rows are there.
    const stored = await (
      await gs.clickhouse.client.query({
        query: "SELECT count() AS n FROM gatescope.http_requests WHERE route_name = 'frontend-canary'",
        format: 'JSONEachRow',
      })
    ).json<{ n: number }>();
    expect(Number(stored[0].n)).toBeGreaterThan(0);
  });

  it('one API call: the caller’s trace continued, request → handler → ClickHouse query with its rows; logs carry the trace id', async () => {
    exporter.reset();
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';
    const from = new Date((BASE_SECONDS - 3600) * 1000).toISOString();
    const to = new Date((BASE_SECONDS + 3600) * 1000).toISOString();
    const res = await fetch(
      `http://127.0.0.1:${gs.httpPort}/api/v1/summary?from=${from}&to=${to}&route=frontend-canary&bad_param_for_a_log=1`,
      { headers: { traceparent: `00-${traceId}-${callerSpan}-01` } },
    );
    expect(res.status).toBeLessThan(500);
    const ok = await fetch(
      `http://127.0.0.1:${gs.httpPort}/api/v1/summary?from=${from}&to=${to}&route=frontend-canary`,
      { headers: { traceparent: `00-${traceId}-${callerSpan}-01` } },
    );
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as { requests: number };
    expect(body.requests, JSON.stringify(body)).toBeGreaterThan(0);

    await expect.poll(async () => (await spans()).filter((s) => s.name === 'request').length).toBe(2);
    const all = (await spans()).filter((s) => s.spanContext().traceId === traceId);
    const requests = all.filter((s) => s.name === 'request');
    expect(requests).toHaveLength(2);
    const request = requests.find((s) => s.attributes['http.response.status_code'] === 200)!;
    expect(request.attributes['http.route']).toBe('/api/v1/summary');
    // The request span continues the caller's span (directly, or under the HTTP server span).
    const chain = [request, ...ancestors(request, all)];
    expect(parentOf(chain[chain.length - 1])).toBe(callerSpan);

    const queries = all.filter((s) => s.name === 'clickhouse.query' && ancestors(s, all).includes(request));
    expect(queries.length).toBeGreaterThanOrEqual(1);
    const summary = queries.find((q) => /FROM gatescope\.http_/.test(String(q.attributes['db.query.text'])))!;
    expect(summary.attributes).toMatchObject({
      'db.system.name': 'clickhouse',
      'db.operation.name': 'SELECT',
      'gatescope.clickhouse.role': 'reader',
      'db.response.returned_rows': 1,
    });
    // Under the handler span, itself under the request span.
    const names = ancestors(summary, all).map((s) => s.name);
    expect(names.some((n) => n.startsWith('handler'))).toBe(true);
    expect(names).toContain('request');

    // Log lines written while serving the request carry its trace id.
    const traced = logLines.filter((l) => l.trace_id === traceId);
    expect(traced.length).toBeGreaterThan(0);
    for (const l of traced) expect(l.span_id).toMatch(/^[0-9a-f]{16}$/);
  });

  it('probes are not traced', async () => {
    exporter.reset();
    await fetch(`http://127.0.0.1:${gs.httpPort}/readyz`);
    await new Promise((r) => setTimeout(r, 100));
    expect((await spans()).filter((s) => s.name === 'request')).toHaveLength(0);
  });
});
