#!/usr/bin/env node
// The collector alone (scale-out): gRPC ALS plus /metrics /healthz /readyz.
//
// This entry is CommonJS on purpose: libuv sizes its thread pool once, when it is first used, and the ESM loader
// already uses it to read an ESM entry file. chdb runs every query on that pool (4 threads by default) beside the
// collector's file writes, so a few long queries could leave ingest waiting; it is sized here before anything
// else loads (a UV_THREADPOOL_SIZE in the environment wins). See the README, "Ad-hoc SQL and ingest".
process.env.UV_THREADPOOL_SIZE ??= '16';
void import('./serve.js');
