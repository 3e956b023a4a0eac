import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClickHouse } from '@gatescope/clickhouse';
import { buildCollector } from '@gatescope/collector';
import { alsClient, collectorConfig, httpEntry, message, metric, openTestEngine, until } from './helpers.js';

let ch: ClickHouse;
beforeAll(async () => {
  ch = await openTestEngine('gs-ledger-metrics-');
});
afterAll(async () => {
  await ch?.close();
});

describe('the ledger as Prometheus series', () => {
  it('gives the first GATESCOPE_LEDGER_MAX_METRIC_NODES nodes series of their own and sums the rest into "other"', async () => {
    const registry = new Registry();
    const collector = await buildCollector({
      config: { ...collectorConfig(), ledger: { staleAfterMs: 60_000, maxMetricNodes: 2 } },
      clickhouse: ch,
      registry,
    });
    const port = await collector.listen('127.0.0.1', 0);
    const client = alsClient(port);
    const sent: Record<string, number> = { 'gw-1': 3, 'gw-2': 4, 'gw-3': 5, 'gw-4': 6 };
    const streams = [];
    /** Messages booked, every series summed. */
    const messages = async () =>
      (await registry.getMetricsAsJSON())
        .find((m) => m.name === 'gatescope_ingest_node_messages_total')!
        .values.reduce((n, v) => n + v.value, 0);
    for (const [node, n] of Object.entries(sent)) {
      const s = client.open();
      streams.push(s);
      s.call.write(
        message(
          Array.from({ length: n }, () => httpEntry()),
          { nodeId: node, cluster: 'edge' },
        ),
      );
      // One node after the other: the cap keeps the first ones seen.
      await until(async () => (await messages()) === streams.length, node);
    }
    await until(async () => {
      await collector.flush();
      return (
        (await metric(registry, 'gatescope_ingest_node_entries_stored_total', { node_id: 'other' })) === 11
      );
    }, 'every entry stored');
    const own = (node: string) => ({ node_id: node, node_cluster: 'edge', log_name: 'als' });
    expect(await metric(registry, 'gatescope_ingest_node_entries_received_total', own('gw-1'))).toBe(3);
    expect(await metric(registry, 'gatescope_ingest_node_entries_stored_total', own('gw-2'))).toBe(4);
    expect(await metric(registry, 'gatescope_ingest_node_entries_received_total', { node_id: 'other' })).toBe(
      11,
    );
    expect(await metric(registry, 'gatescope_ingest_node_streams_open', { node_id: 'other' })).toBe(2);
    expect(await metric(registry, 'gatescope_ingest_nodes_folded')).toBe(2);
    const series = (await registry.getMetricsAsJSON()).find(
      (m) => m.name === 'gatescope_ingest_node_entries_stored_total',
    )!;
    expect(series.values.map((v) => v.labels.node_id).sort()).toEqual(['gw-1', 'gw-2', 'other']);
    expect(collector.inFlight().size).toBe(0);
    for (const s of streams) s.call.cancel();
    client.close();
    await collector.close(5_000);
  });
});
