export { startDemoTraffic } from './generator.js';
export type { DemoTrafficOptions, DemoTraffic } from './generator.js';
export {
  demoEntry,
  demoIdentifier,
  seededRandom,
  DEMO_ROUTES,
  FRONTEND_V1,
  FRONTEND_V2,
  DEMO_NODE_ID,
  DEMO_NODE_CLUSTER,
  DEMO_LOG_NAME,
} from './traffic.js';
export type { Random } from './traffic.js';
