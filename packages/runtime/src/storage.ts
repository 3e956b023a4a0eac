import { createClickHouse, migrate, type ClickHouse } from '@gatescope/clickhouse';
import type { Config } from '@gatescope/config';
import type { Logger } from 'pino';

/**
 * Open ClickHouse and bring the schema up to date. A server that is still starting (scale-out, compose) is
 * retried for a minute; then the error says what to check.
 */
export async function openStorage(config: Config, logger: Logger): Promise<ClickHouse> {
  const { clickhouse } = config;
  const where = clickhouse.url
    ? `ClickHouse at ${clickhouse.url}`
    : `the embedded ClickHouse in ${config.dataDir}`;
  const deadline = Date.now() + (clickhouse.url ? 60_000 : 0);
  for (let attempt = 1; ; attempt++) {
    const ch = await createClickHouse({ ...clickhouse, dataDir: config.dataDir });
    try {
      const { applied } = await migrate(ch, {
        retentionDays: config.retentionDays,
        rollupRetentionDays: config.rollupRetentionDays,
        cluster: clickhouse.cluster,
      });
      logger.info({ engine: ch.engine, database: ch.database, applied }, `storage ready: ${where}`);
      return ch;
    } catch (err) {
      await ch.close().catch(() => {});
      if (Date.now() >= deadline) {
        throw new Error(
          `Could not prepare ${where}: ${(err as Error).message}. ` +
            (clickhouse.url
              ? 'Check that the server is up and CLICKHOUSE_URL, CLICKHOUSE_USER and CLICKHOUSE_PASSWORD are right.'
              : 'Check that GATESCOPE_DATA_DIR is writable and not used by another gatescope process.'),
          { cause: err },
        );
      }
      logger.warn({ err, attempt }, `${where} not ready yet; retrying`);
      await new Promise((r) => setTimeout(r, Math.min(5_000, 500 * attempt)));
    }
  }
}
