import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClickHouse, migrate, type ClickHouse } from '@gatescope/clickhouse';
import type { Config } from '@gatescope/config';

export const H = 3_600_000;
export const READ = 'read-token-123456';
export const ADMIN = 'admin-token-123456';

export function testConfig(overrides: Partial<Config['auth']> = {}): Config {
  return {
    dataDir: '/nonexistent',
    host: '127.0.0.1',
    httpPort: 0,
    alsPort: 0,
    logLevel: 'silent',
    clickhouse: { username: 'default', password: '', database: 'gatescope' },
    retentionDays: 3650,
    rollupRetentionDays: 3650,
    ingest: {
      batchMaxRows: 1000,
      batchMaxDelayMs: 100,
      maxPendingRows: 10000,
      maxMessageBytes: 1 << 20,
      decoderWorkers: 0,
    },
    pathTemplates: { maxTemplatesPerRoute: 100 },
    auth: {
      tokens: [
        { name: 'grafana', token: READ, scopes: ['read'] },
        { name: 'ops', token: ADMIN, scopes: ['read', 'admin'] },
      ],
      allowUnauthenticated: false,
      rateLimitPerMinute: 100_000,
      ...overrides,
    },
    live: { windowSeconds: 60, tickMs: 1000 },
    health: { degradedErrorRate: 0.001, failingErrorRate: 0.1 },
  };
}

export async function openEngine(): Promise<{ ch: ClickHouse; cleanup: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'gatescope-api-'));
  const ch = await createClickHouse({ database: 'gatescope', dataDir: dir });
  await migrate(ch, { retentionDays: 3650, rollupRetentionDays: 3650 });
  return {
    ch,
    cleanup: async () => {
      await ch.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Generated traffic: `count` rows evenly over [startMs, startMs + spanMs), 20 routes with per-route log-normal
 * latency (route-07 bimodal: cache hits ~1 ms, misses ~200 ms), ~1 % 5xx, ~3 % 4xx, 0.2 % no response.
 */
export const GENERATE_SQL = `
INSERT INTO gatescope.http_requests (start_time, duration_ms, response_code, response_flags, route_name, upstream_cluster,
  upstream_host, authority, method, path, path_template, downstream_remote_address, user_agent, request_id, bytes_sent,
  bytes_received, node_id, node_cluster)
SELECT
  fromUnixTimestamp64Micro(toInt64({start_ms:Int64} * 1000 + intDiv((n * 1000 + h3 % 1000) * {span_ms:Int64}, {total:UInt64}))) AS start_time,
  round(if(r = 7,
     if(h2 % 10 < 7, 1.0 * exp(0.3 * z), 200.0 * exp(0.25 * z)),
     (4 + (r % 10) * 6 + intDiv(r, 10) * 3) * exp(0.7 * z)), 3) AS duration_ms,
  multiIf(u < 10, 503, u < 12, 0, u < 40, 404, u < 50, 301, 200) AS response_code,
  multiIf(u < 7, ['UF'], u < 10, ['URX', 'UF'], u < 12, ['DC'], []) AS response_flags,
  concat('route-', leftPad(toString(r), 2, '0')) AS route_name,
  concat('outbound|80||svc-', toString(r), '.default.svc.cluster.local') AS upstream_cluster,
  concat('10.1.', toString(r), '.', toString(h3 % 4), ':8080') AS upstream_host,
  concat('app', toString(r % 5), '.example.com') AS authority,
  if(h2 % 10 < 8, 'GET', 'POST') AS method,
  concat('/api/r', toString(r), '/items/', toString(h3 % 500)) AS path,
  concat('/api/r', toString(r), '/items/{id}') AS path_template,
  concat('10.0.', toString(h1 % 256), '.', toString(h2 % 256)) AS downstream_remote_address,
  ['curl/8.5.0', 'Mozilla/5.0', 'okhttp/4.12'][h1 % 3 + 1] AS user_agent,
  concat('gen-', lower(hex(h1))) AS request_id,
  200 + h2 % 5000 AS bytes_sent,
  h3 % 1000 AS bytes_received,
  concat('gw-', toString(n % 2)) AS node_id,
  'istio-ingressgateway' AS node_cluster
FROM (
  SELECT number + {offset:UInt64} AS n, cityHash64(n, 1) AS h1, cityHash64(n, 2) AS h2, cityHash64(n, 3) AS h3,
         cityHash64(n, 4) % 1000 AS u, toUInt32(floor(pow((h3 % 100000) / 100000.0, 2) * {routes:UInt32})) AS r,
         sqrt(-2 * log((h1 % 1000000 + 1) / 1000001.0)) * cos(2 * pi() * (cityHash64(n, 5) % 1000000) / 1000000.0) AS z
  FROM numbers({count:UInt64})
)`;

export async function generate(
  ch: ClickHouse,
  opts: { startMs: number; spanMs: number; total: number; routes?: number; chunk?: number },
) {
  const chunk = opts.chunk ?? 1_000_000;
  for (let offset = 0; offset < opts.total; offset += chunk) {
    await ch.client.command({
      query: GENERATE_SQL,
      query_params: {
        start_ms: opts.startMs,
        span_ms: opts.spanMs,
        total: opts.total,
        offset,
        count: Math.min(chunk, opts.total - offset),
        routes: opts.routes ?? 20,
      },
    });
  }
}
