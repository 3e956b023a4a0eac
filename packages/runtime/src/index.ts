export { runService, type Running } from './run.js';
export { openStorage } from './storage.js';
export { startTelemetry } from './telemetry.js';
export { createLogger, credentialScrubber } from './logger.js';
