export { runService, runTask, type Lifecycle, type Running } from './run.js';
export { openStorage, connectStorage, watchSchema, SCHEMA_READY, type SchemaWatch } from './storage.js';
export { startTelemetry } from '@gatescope/telemetry';
export { createLogger, credentialScrubber } from './logger.js';
