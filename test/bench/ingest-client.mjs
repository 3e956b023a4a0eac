// The benchmark's load generator, in a process of its own: streams pre-encoded ALS messages over loopback
// on several concurrent, never half-closed streams, as fast as the server takes them.
import * as grpc from '@grpc/grpc-js';
import { AlsClient, encodedMessages, firstMessage } from './traffic.mjs';

const [port, total, streams, perMessage] = process.argv.slice(2).map(Number);
const pool = encodedMessages(200, perMessage);
const client = new AlsClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
const perStream = Math.ceil(total / perMessage / streams);
process.send?.({ ready: true });
await new Promise((r) => process.once('message', r));
const t0 = performance.now();
let sent = 0;
await Promise.all(
  Array.from({ length: streams }, async (_, s) => {
    const call = client.StreamAccessLogs(() => {});
    for (let i = 0; i < perStream; i++) {
      const msg = i === 0 ? firstMessage(s, perMessage) : pool[(i + s) % pool.length];
      sent += perMessage;
      if (!call.write(msg)) await new Promise((r) => call.once('drain', r));
    }
  }),
);
process.send?.({ sent, seconds: (performance.now() - t0) / 1000 });
// Envoy never half-closes: keep the streams open until the parent has counted everything.
await new Promise((r) => process.once('message', r));
client.close();
process.exit(0);
