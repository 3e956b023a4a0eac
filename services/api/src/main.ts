// Runs the query API alone against a ClickHouse server (or the embedded engine): OpenTelemetry first.
import { NodeSDK } from '@opentelemetry/sdk-node';
const otel = new NodeSDK();
otel.start();

const { loadConfig } = await import('@gatescope/config');
const { createClickHouse, migrate } = await import('@gatescope/clickhouse');
const { buildApp } = await import('./app.js');

const config = loadConfig(process.env);
const clickhouse = await createClickHouse({ ...config.clickhouse, dataDir: config.dataDir });
await migrate(clickhouse, {
  retentionDays: config.retentionDays,
  rollupRetentionDays: config.rollupRetentionDays,
  cluster: config.clickhouse.cluster,
});
const app = await buildApp({ config, clickhouse, webRoot: process.env.GATESCOPE_WEB_ROOT || undefined });
await app.listen({ host: config.host, port: config.httpPort });

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  app.log.info({ signal }, 'shutting down');
  const timer = setTimeout(() => process.exit(1), 10_000);
  timer.unref();
  await app.close();
  await clickhouse.close();
  await otel.shutdown().catch(() => undefined);
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
