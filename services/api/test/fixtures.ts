import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClickHouse, migrate, type ClickHouse } from '@gatescope/clickhouse';
import { loadConfig, type Config } from '@gatescope/config';

const DEFAULTS = loadConfig({});

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
    clickhouse: { ...structuredClone(DEFAULTS.clickhouse), username: 'default', password: '', roles: {} },
    // The documented defaults, copied so a test may change them.
    query: structuredClone(DEFAULTS.query),
    sql: structuredClone(DEFAULTS.sql),
    retentionDays: 3650,
    rollupRetentionDays: 3650,
    ingest: {
      ...structuredClone(DEFAULTS.ingest),
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
    http: { allowedHosts: [], metricsPublic: false },
    live: { windowSeconds: 60, tickMs: 1000 },
    health: structuredClone(DEFAULTS.health),
    alerts: structuredClone(DEFAULTS.alerts),
    ledger: structuredClone(DEFAULTS.ledger),
    wal: structuredClone(DEFAULTS.wal),
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

export { generate } from '../../../test/fixtures/generated-traffic.mjs';
