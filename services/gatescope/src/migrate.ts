#!/usr/bin/env node
// `gatescope migrate`: create or upgrade the schema, then exit (0: up to date; 1: it could not, and why).
// The scale-out step that runs before the services (docker compose: the `migrate` service; Kubernetes: a Job).
// Concurrent runs take turns on the migration lock; the standalone services never run DDL and wait for it.
import { openStorage, runTask } from '@gatescope/runtime';

await runTask('gatescope-migrate', async (config, logger) => {
  const clickhouse = await openStorage(config, logger);
  await clickhouse.close();
});
