// `npm run demo`: the all-in-one gatescope plus a generator streaming realistic ALS traffic to it over real gRPC.
import { startDemoTraffic } from '@gatescope/demo-traffic';
import { runService } from '@gatescope/runtime';
import { startGatescope } from './gatescope.js';

await runService('gatescope-demo', async (config, logger) => {
  const gs = await startGatescope(config, logger);
  const demo = startDemoTraffic({
    target: `127.0.0.1:${gs.alsPort}`,
    rps: Number(process.env.GATESCOPE_DEMO_RPS ?? 200),
  });
  logger.info(
    `demo traffic is streaming to 127.0.0.1:${gs.alsPort}; open http://${config.host}:${gs.httpPort}/`,
  );
  return {
    async close() {
      await demo.stop();
      await gs.close();
    },
  };
});
