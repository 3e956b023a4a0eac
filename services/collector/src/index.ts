export { buildCollector, ALS_METHOD_PATH } from './collector.js';
export type { Collector, CollectorDeps } from './collector.js';
