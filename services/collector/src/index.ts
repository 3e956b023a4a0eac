export { buildCollector, ALS_METHOD_PATH } from './collector.js';
export { buildCollectorHttp } from './http.js';
export type { Collector, CollectorDeps } from './collector.js';
