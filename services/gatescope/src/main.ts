#!/usr/bin/env node
import { startTelemetry } from './telemetry.js';
const telemetry = startTelemetry(process.env);

import { ConfigError, loadConfig } from '@gatescope/config';
import { pino } from 'pino';
import { startGatescope, type Gatescope } from './gatescope.js';

export async function main(extra?: (gs: Gatescope) => Promise<() => Promise<void>>): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  const logger = pino({
    level: config.logLevel,
    redact: ['req.headers.authorization', 'config.clickhouse.password', '*.token'],
  });
  let gs: Gatescope;
  try {
    gs = await startGatescope(config, logger);
  } catch (err) {
    logger.fatal({ err }, (err as Error).message);
    process.exit(1);
  }
  const stopExtra = extra ? await extra(gs) : async () => {};
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: committing every received entry first');
    const hard = setTimeout(() => {
      logger.error('shutdown took longer than 30 s; exiting');
      process.exit(1);
    }, 30_000);
    hard.unref();
    await stopExtra();
    await gs.close();
    await telemetry.shutdown();
    logger.info('bye');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/gatescope/dist/main.js')) {
  void main();
}
