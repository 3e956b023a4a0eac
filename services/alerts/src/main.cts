#!/usr/bin/env node
// The alert evaluator alone (scale-out): rules evaluated against ClickHouse, webhooks delivered, plus /healthz,
// /readyz and /metrics. CommonJS entry for the same reason as the other services: UV_THREADPOOL_SIZE is sized
// before anything else loads (chdb runs its queries on that pool).
process.env.UV_THREADPOOL_SIZE ??= '16';
void import('./serve.js');
