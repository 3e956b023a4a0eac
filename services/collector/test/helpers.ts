import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeStreamAccessLogsMessage } from '@gatescope/als';
import { createClickHouse, migrate, type ClickHouse } from '@gatescope/clickhouse';
import { loadConfig, type Config } from '@gatescope/config';
import type { Registry } from 'prom-client';

export const tempDir = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));

/** A fresh embedded engine, migrated, in its own data directory. */
export async function openTestEngine(prefix: string): Promise<ClickHouse> {
  const ch = await createClickHouse({ database: 'gatescope', dataDir: tempDir(prefix) });
  await migrate(ch, { retentionDays: 3650, rollupRetentionDays: 3650 });
  return ch;
}

/**
 * The collector's configuration for tests: the defaults, small fast batches, one decoder thread, a fresh data
 * directory (its write-ahead log) unless one is given, group commits every 20 ms.
 */
export const collectorConfig = (
  over: Partial<Config['ingest']> = {},
  wal: Partial<Config['wal']> & { dataDir?: string } = {},
) => {
  const { dataDir, ...walOver } = wal;
  return {
    ingest: {
      ...loadConfig({}).ingest,
      maxMessageBytes: 256 * 1024,
      batchMaxRows: 1_000,
      batchMaxDelayMs: 50,
      decoderWorkers: 1,
      // The fixtures are dated 2024-2025 and some in the future of that: a wide window.
      maxClockSkewS: 86_400,
      ...over,
    },
    pathTemplates: { maxTemplatesPerRoute: 100 },
    // The fixtures are dated 2024-2025; entries older than the retention are dead-lettered.
    retentionDays: 3650,
    dataDir: dataDir ?? tempDir('gs-collector-'),
    wal: { ...loadConfig({}).wal, syncIntervalMs: 20, ...walOver },
  };
};

/** Rows of http_requests matching `where` (bound parameters in `params`). */
export async function countRows(
  ch: ClickHouse,
  where: string,
  params: Record<string, unknown> = {},
): Promise<number> {
  const rs = await ch.client.query({
    query: `SELECT count() AS n FROM gatescope.http_requests WHERE ${where}`,
    query_params: params,
    format: 'JSONEachRow',
  });
  return Number((await rs.json<{ n: number }>())[0].n);
}

export { alsClient } from '../../../test/support/als-client.js';

let seq = 0;
/** An HTTP entry in protobufjs object form; every call gives a distinct request id. */
export function httpEntry(over: Record<string, unknown> = {}) {
  const n = ++seq;
  const { commonProperties: common, ...rest } = over;
  return {
    commonProperties: {
      startTime: { seconds: 1_764_150_000 + n, nanos: 123_456_000 },
      duration: { seconds: 0, nanos: 12_500_000 },
      routeName: 'productpage',
      upstreamCluster: 'outbound|9080||productpage.default.svc.cluster.local',
      downstreamRemoteAddress: { socketAddress: { address: '10.1.2.3', portValue: 40000 + (n % 1000) } },
      ...(common as object),
    },
    protocolVersion: 'HTTP11',
    request: {
      requestMethod: 'GET',
      authority: 'bookinfo.example.com',
      path: `/productpage?u=${n}`,
      requestId: `req-${n}`,
    },
    response: { responseCode: 200, responseBodyBytes: 1024 },
    ...rest,
  };
}

export function message(entries: object[], identifier?: { nodeId: string; cluster?: string }) {
  return encodeStreamAccessLogsMessage({
    ...(identifier && {
      identifier: {
        node: { id: identifier.nodeId, cluster: identifier.cluster ?? 'istio-ingressgateway' },
        logName: 'als',
      },
    }),
    httpLogs: { logEntry: entries },
  });
}

/** The value of one metric series (0 when absent). */
export async function metric(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

export { until } from '../../../test/support/probes.js';
