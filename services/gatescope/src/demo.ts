#!/usr/bin/env node
import { startDemoTraffic } from '@gatescope/demo-traffic';
import { main } from './main.js';

// The all-in-one gatescope plus a generator streaming realistic ALS traffic to it over real gRPC.
await main(async (gs) => {
  const demo = startDemoTraffic({ target: `127.0.0.1:${gs.alsPort}`, rps: Number(process.env.GATESCOPE_DEMO_RPS ?? 200) });
  console.log(`demo traffic is streaming to 127.0.0.1:${gs.alsPort}; open http://127.0.0.1:${gs.httpPort}/`);
  return async () => demo.stop();
});
