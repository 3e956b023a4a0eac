import { ConfigError, loadConfig, type Config } from '@gatescope/config';
import type { Logger } from 'pino';
import { createLogger } from './logger.js';
import { startTelemetry, type Telemetry } from '@gatescope/telemetry';

export interface Running {
  close(): Promise<void>;
}

/** The process's shutdown state, for `/readyz` (`opsRoutes`' `lifecycle`): `stopping` from the first signal on. */
export interface Lifecycle {
  readonly stopping: boolean;
}

/** OpenTelemetry first, then the configuration (a bad one is printed whole and exits 2), then the logger. */
async function prepare(name: string): Promise<{
  config: Readonly<Config>;
  logger: Logger;
  telemetry: Telemetry;
}> {
  const telemetry = await startTelemetry(process.env, name);
  let config: Readonly<Config>;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config, name);
  return { config, logger, telemetry };
}

/**
 * A one-shot command (`gatescope migrate`): prepared like a service, exits 0 when `task` resolves and 1 (with
 * the error logged) when it throws.
 */
export async function runTask(
  name: string,
  task: (config: Readonly<Config>, logger: Logger) => Promise<void>,
): Promise<void> {
  const { config, logger, telemetry } = await prepare(name);
  let code = 0;
  try {
    await task(config, logger);
  } catch (err) {
    logger.fatal({ err }, (err as Error).message);
    code = 1;
  }
  await telemetry.shutdown().catch(() => {});
  process.exit(code);
}

/**
 * The one way a gatescope process starts and stops: OpenTelemetry first, then the configuration (a bad one
 * is printed whole and exits 2), then the service. SIGTERM/SIGINT close it within `shutdownMs` (stop
 * accepting, commit what was received, close sockets and ClickHouse), else the process exits 1.
 */
export async function runService(
  name: string,
  start: (config: Readonly<Config>, logger: Logger, lifecycle: Lifecycle) => Promise<Running>,
  shutdownMs = 30_000,
): Promise<void> {
  const { config, logger, telemetry } = await prepare(name);
  if (config.auth.tokens.length === 0 && config.auth.allowUnauthenticated) {
    logger.warn(
      { host: config.host },
      'GATESCOPE_ALLOW_UNAUTHENTICATED=1: serving the API and live data to anyone who can reach this address, without a token',
    );
  }
  const lifecycle = { stopping: false };
  let running: Running;
  try {
    running = await start(config, logger, lifecycle);
  } catch (err) {
    logger.fatal({ err }, (err as Error).message);
    await telemetry.shutdown().catch(() => {});
    process.exit(1);
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    lifecycle.stopping = true;
    logger.info({ signal }, 'shutting down: committing every received entry first');
    const hard = setTimeout(() => {
      logger.error(`shutdown took longer than ${shutdownMs / 1000} s; exiting`);
      process.exit(1);
    }, shutdownMs);
    hard.unref();
    try {
      await running.close();
      await telemetry.shutdown();
    } catch (err) {
      logger.error({ err }, 'error during shutdown');
      process.exit(1);
    }
    logger.info('bye');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
