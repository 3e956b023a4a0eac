#!/usr/bin/env node
// The live server alone, next to a ClickHouse server (scale-out): several of these behind a load balancer push
// the same numbers, since each reads ClickHouse and keeps no state of its own that matters.
import { createServer } from 'node:http';
import { createClickHouse } from '@gatescope/clickhouse';
import { ConfigError, loadConfig } from '@gatescope/config';
import { pino } from 'pino';
import { attachLive } from './live.js';

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
const logger = pino({ level: config.logLevel, redact: ['*.token', '*.password', 'auth'] });
if (!config.clickhouse.url)
  logger.warn({}, 'CLICKHOUSE_URL is not set: using the embedded engine (single process only)');
const clickhouse = await createClickHouse({ ...config.clickhouse, dataDir: config.dataDir });

const server = createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
  } else if (req.url === '/readyz') {
    void clickhouse.ping().then(
      (up) =>
        res
          .writeHead(up ? 200 : 503, { 'content-type': 'application/json' })
          .end(JSON.stringify({ clickhouse: up })),
      () => res.writeHead(503, { 'content-type': 'application/json' }).end('{"clickhouse":false}'),
    );
  } else if (!req.url?.startsWith('/socket.io/')) {
    res
      .writeHead(404, { 'content-type': 'application/json' })
      .end(
        '{"error":{"code":"ERR_NOT_FOUND","message":"This is the gatescope live server: connect socket.io to namespace /live"}}',
      );
  }
});
const live = attachLive({
  httpServer: server,
  config,
  clickhouse,
  logger: logger.child({ component: 'live' }),
});
server.listen(config.httpPort, config.host, () => {
  logger.info(
    { url: `http://${config.host}:${config.httpPort}/live`, engine: clickhouse.engine },
    'gatescope live server is up',
  );
});

let stopping = false;
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'stopping');
  const force = setTimeout(() => process.exit(1), 10_000);
  force.unref();
  await live.close();
  await new Promise<void>((r) => server.close(() => r()));
  await clickhouse.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
