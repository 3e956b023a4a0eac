export { buildCollector } from './collector.js';
export { buildCollectorHttp } from './http.js';
export type { Collector, CollectorDeps } from './collector.js';
