export { attachLive } from './live.js';
export type { LiveDeps, LiveServer, LiveLogger } from './live.js';
export type { LiveStats, LiveFilters, LiveRoute, LivePoint, LiveTotals } from '@gatescope/live-stats';
