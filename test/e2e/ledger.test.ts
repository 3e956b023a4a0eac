/**
 * The delivery ledger (issue 14) with real components: the embedded engine, the collector on a real gRPC port,
 * the query API, streams from three gateway nodes (one an Istio ingress gateway whose identifier carries a node
 * with 360 extensions). Every count is what was sent, per node, exactly.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeStreamAccessLogsMessage } from '@gatescope/als';
import { createClickHouse, migrate, type ClickHouse } from '@gatescope/clickhouse';
import { buildCollector, type Collector } from '@gatescope/collector';
import { loadConfig } from '@gatescope/config';
import type { LedgerNode } from '@gatescope/ledger';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alsClient } from '../support/als-client.js';
import { until } from '../support/probes.js';
import { ISTIO_LOG_NAME, ISTIO_NODE_CLUSTER, ISTIO_NODE_ID, istioGatewayNode } from '../fixtures/als.js';

const READ = 'reader:ledger-read-token:read';
const GATEWAY_B = 'gw-b:ledger-gw-b-token:read:gateway=node-b';
const AUTHORITY = 'shop:ledger-shop-token:read:authority=shop.example.com';

let dir: string;
let ch: ClickHouse;
let collector: Collector;
let app: FastifyInstance;
let port: number;
const registry = new Registry();

type Node = LedgerNode & { series?: { minute: string; entries_received: number; entries_stored: number }[] };

async function nodes(token = 'ledger-read-token', query = 'range=1h'): Promise<Node[]> {
  const res = await app.inject({
    url: `/api/v1/ingest/nodes?${query}`,
    headers: { authorization: `Bearer ${token}` },
  });
  expect(res.statusCode, res.body).toBe(200);
  return (res.json() as { nodes: Node[] }).nodes;
}
const byId = async (id: string) => (await nodes()).find((n) => n.node_id === id);
const dropped = (n: Node) => Object.values(n.entries_dropped).reduce((a, b) => a + b, 0);
/** The ledger's invariant, for one node over one range. */
const balanced = (n: Node) =>
  n.entries_received === n.entries_stored + dropped(n) + n.entries_in_flight - n.entries_in_flight_at_start;

let seq = 0;
const nowS = () => Math.floor(Date.now() / 1000);
function entry(route: string, over: { startS?: number; path?: string } = {}) {
  const n = ++seq;
  return {
    commonProperties: {
      startTime: { seconds: over.startS ?? nowS() - 5, nanos: 0 },
      duration: { seconds: 0, nanos: 12_500_000 },
      routeName: route,
      upstreamCluster: 'outbound|9080||productpage.default.svc.cluster.local',
    },
    protocolVersion: 'HTTP11',
    request: {
      requestMethod: 'GET',
      authority: 'shop.example.com',
      path: over.path ?? `/p?u=${n}`,
      requestId: `ledger-${n}`,
    },
    response: { responseCode: 200 },
  };
}
const entries = (route: string, n: number, over: { startS?: number; path?: string } = {}) =>
  Array.from({ length: n }, () => entry(route, over));
const msg = (list: object[], identifier?: object) =>
  encodeStreamAccessLogsMessage({ ...(identifier && { identifier }), httpLogs: { logEntry: list } });
const simpleNode = (id: string) => ({ node: { id, cluster: 'edge' }, logName: 'als' });
const ISTIO = { node: istioGatewayNode(360), log_name: ISTIO_LOG_NAME };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gatescope-ledger-'));
  const config = loadConfig({
    GATESCOPE_DATA_DIR: dir,
    GATESCOPE_LOG_LEVEL: 'silent',
    GATESCOPE_TOKENS: [READ, GATEWAY_B, AUTHORITY].join(','),
    GATESCOPE_STALE_AFTER: '2s',
    GATESCOPE_BATCH_MAX_DELAY_MS: '100',
    GATESCOPE_WAL_SYNC_INTERVAL_MS: '20',
    GATESCOPE_DECODER_WORKERS: '1',
    // The tests poll the API several times a second.
    GATESCOPE_RATE_LIMIT_PER_MINUTE: '100000',
  });
  ch = await createClickHouse({ database: 'gatescope', dataDir: dir });
  await migrate(ch, { retentionDays: config.retentionDays, rollupRetentionDays: config.rollupRetentionDays });
  // Rows ClickHouse refuses for good: split off and dead-lettered (insert_refused).
  await ch.client.command({
    query: "ALTER TABLE gatescope.http_requests ADD CONSTRAINT ledger_poison CHECK path != '/poison'",
  });
  collector = await buildCollector({ config, clickhouse: ch, registry });
  port = await collector.listen('127.0.0.1', 0);
  const { buildApp } = await import('@gatescope/api');
  app = await buildApp({ config, clickhouse: ch, logger: false });
}, 60_000);

afterAll(async () => {
  await app?.close();
  await collector?.close(5_000);
  await ch?.close();
});

describe('the delivery ledger', () => {
  it('counts what three nodes sent, per node, exactly; rejected and dropped entries land under their reason', async () => {
    const client = alsClient(port);
    const a = client.open();
    const b = client.open();
    const c = client.open();
    const bad = client.open();
    // A: the Istio gateway, 3 messages (the identifier with its 360 extensions in the first).
    a.call.write(msg(entries('a', 40), ISTIO));
    a.call.write(msg(entries('a', 25)));
    a.call.write(msg(entries('a', 35)));
    // B: 2 messages, and on a second stream one message that is not protobuf at all (refused).
    b.call.write(msg(entries('b', 70), simpleNode('node-b')));
    b.call.write(msg(entries('b', 30)));
    bad.call.write(msg(entries('b', 5), simpleNode('node-b')));
    bad.call.write(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]));
    // C: 50 good entries, 7 dated ten days ahead (outside the clock-skew window: dead-lettered) and 2 that
    // ClickHouse refuses (insert_refused).
    c.call.write(
      msg(
        [
          ...entries('c', 20),
          ...entries('c', 7, { startS: nowS() + 10 * 86_400 }),
          entry('c', { path: '/poison' }),
          ...entries('c', 30),
          entry('c', { path: '/poison' }),
        ],
        simpleNode('node-c'),
      ),
    );
    expect((await bad.done).error?.code).toBe(3); // INVALID_ARGUMENT
    await until(
      async () => {
        await collector.flush();
        const list = await nodes();
        return (
          list.length === 3 &&
          list.every((n) => n.entries_in_flight === 0) &&
          list.every((n) => n.messages > 0)
        );
      },
      'three nodes settled',
      30_000,
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(await nodes())}`);
    });
    const list = await nodes();
    const [na, nb, nc] = [ISTIO_NODE_ID, 'node-b', 'node-c'].map((id) => list.find((n) => n.node_id === id)!);
    expect(na).toMatchObject({
      node_cluster: ISTIO_NODE_CLUSTER,
      log_name: ISTIO_LOG_NAME,
      messages: 3,
      entries_received: 100,
      entries_stored: 100,
      entries_dropped: {},
      messages_rejected: {},
      entries_in_flight: 0,
      streams_open: 1,
      status: 'live',
    });
    expect(nb).toMatchObject({
      node_cluster: 'edge',
      log_name: 'als',
      messages: 4,
      entries_received: 105,
      entries_stored: 105,
      entries_dropped: {},
      messages_rejected: { malformed_protobuf: 1 },
      streams_open: 1,
    });
    expect(nc).toMatchObject({
      messages: 1,
      entries_received: 59,
      entries_stored: 50,
      entries_dropped: { start_time_out_of_range: 7, insert_refused: 2 },
      entries_in_flight: 0,
    });
    for (const n of list) expect(balanced(n), JSON.stringify(n)).toBe(true);
    // What ClickHouse holds per node is what the ledger says was stored.
    const rs = await ch.client.query({
      query:
        "SELECT node_id, count() AS n FROM gatescope.http_requests WHERE startsWith(request_id, 'ledger-') GROUP BY node_id ORDER BY node_id",
      format: 'JSONEachRow',
    });
    const stored = Object.fromEntries(
      (await rs.json<{ node_id: string; n: number }>()).map((r) => [r.node_id, Number(r.n)]),
    );
    expect(stored).toEqual({ [ISTIO_NODE_ID]: 100, 'node-b': 105, 'node-c': 50 });
    expect(na.first_seen! <= na.last_seen!).toBe(true);

    // The per-node view adds the per-minute series; they sum to the totals.
    const one = await app.inject({
      url: `/api/v1/ingest/nodes/${encodeURIComponent(ISTIO_NODE_ID)}?range=1h`,
      headers: { authorization: 'Bearer ledger-read-token' },
    });
    expect(one.statusCode).toBe(200);
    const [detail] = (one.json() as { nodes: Node[] }).nodes;
    expect(detail.series!.reduce((s, p) => s + p.entries_received, 0)).toBe(100);
    expect(detail.series!.reduce((s, p) => s + p.entries_stored, 0)).toBe(100);
    const missing = await app.inject({
      url: '/api/v1/ingest/nodes/no-such-node',
      headers: { authorization: 'Bearer ledger-read-token' },
    });
    expect(missing.statusCode).toBe(404);

    // Prometheus: per node, with the same numbers.
    const text = await registry.metrics();
    expect(text).toContain(
      `gatescope_ingest_node_entries_dropped_total{node_id="node-c",node_cluster="edge",log_name="als",reason="start_time_out_of_range"} 7`,
    );
    expect(text).toContain(
      `gatescope_ingest_node_entries_stored_total{node_id="node-b",node_cluster="edge",log_name="als"} 105`,
    );
    const metricsFile = join(dir, 'metrics.txt');
    writeFileSync(metricsFile, text);
    execFileSync('sh', ['-c', `promtool check metrics < ${metricsFile}`], { stdio: 'pipe' });
    for (const s of [a, b, c]) s.call.cancel();
    client.close();
  }, 60_000);

  it('a node that stops turns stale after GATESCOPE_STALE_AFTER, and live again when it resumes', async () => {
    const client = alsClient(port);
    const d = client.open();
    d.call.write(msg(entries('d', 10), simpleNode('node-d')));
    // An idle Envoy keeps its stream: live while it is open, however long it is silent.
    await until(async () => (await byId('node-d'))?.entries_stored === 10, 'node-d stored', 20_000);
    await new Promise((r) => setTimeout(r, 2_500));
    expect((await byId('node-d'))!.status).toBe('live');
    // The stream goes away: stale once 2 s passed since its last message.
    d.call.cancel();
    await until(async () => (await byId('node-d'))!.streams_open === 0, 'the stream closed in the ledger');
    await until(async () => (await byId('node-d'))!.status === 'stale', 'stale', 10_000);
    const resumed = client.open();
    resumed.call.write(msg(entries('d', 5), simpleNode('node-d')));
    await until(async () => (await byId('node-d'))!.status === 'live', 'live again', 10_000);
    await until(async () => (await byId('node-d'))!.entries_stored === 15, 'all of node-d stored', 20_000);
    resumed.call.cancel();
    client.close();
  }, 60_000);

  it('token restrictions: a gateway-restricted token sees its node only, an authority-restricted one none', async () => {
    const seen = await nodes('ledger-gw-b-token');
    expect(seen.map((n) => n.node_id)).toEqual(['node-b']);
    const other = await app.inject({
      url: '/api/v1/ingest/nodes/node-c?range=1h',
      headers: { authorization: 'Bearer ledger-gw-b-token' },
    });
    expect(other.statusCode).toBe(404);
    const res = await app.inject({
      url: '/api/v1/ingest/nodes',
      headers: { authorization: 'Bearer ledger-shop-token' },
    });
    expect(res.statusCode).toBe(403);
    const anonymous = await app.inject({ url: '/api/v1/ingest/nodes' });
    expect(anonymous.statusCode).toBe(401);
    const badRange = await app.inject({
      url: '/api/v1/ingest/nodes?range=forever',
      headers: { authorization: 'Bearer ledger-read-token' },
    });
    expect(badRange.statusCode).toBe(400);
    expect(badRange.json().error.code).toBe('ERR_QUERY_BAD_RANGE');
  });
});
