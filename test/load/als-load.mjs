// The load tests' ALS client, a process of its own: Envoy-like streams (one HTTP/2 connection each, the identifier
// first, never half-closed until the end) sending realistic entries at a steady rate, or as fast as gatescope
// takes them (rate 0). Every entry has a unique request id and a current start_time (test/bench/traffic.mjs
// stamps them into a pool of pre-encoded messages). It never drops an entry: when gatescope stops reading
// (HTTP/2 flow control) it waits, and falls behind schedule, which it reports.
//
// argv[2]: JSON { target, rate, seconds, total, streams, perMessage, routes, paths, clients, prefix }: `total` stops
// after that many entries; `paths` and `clients` set the number of distinct paths (with query strings) and client
// addresses (traffic.mjs cardinality()). IPC: sends { progress } every
// second and { done: { sent, seconds, behindMax } } after half-closing every stream and getting every answer;
// 'stop' from the parent ends early.
import * as grpc from '@grpc/grpc-js';
import { AlsClient, cardinality, identifierMessage, stamp, stampedPool } from '../bench/traffic.mjs';

const opts = {
  streams: 4,
  perMessage: 100,
  routes: 48,
  total: Infinity,
  prefix: Math.floor(Math.random() * 0xffff)
    .toString(16)
    .padStart(4, '0'),
  ...JSON.parse(process.argv[2]),
};
const shape =
  opts.paths || opts.clients
    ? cardinality({ routes: opts.routes, paths: opts.paths, clients: opts.clients })
    : undefined;
const pool = stampedPool(400, opts.perMessage, opts.routes, shape);
process.send?.({
  ready: {
    cardinality: shape?.counts,
    bytesPerEntry: pool.reduce((n, m) => n + m.bytes.length, 0) / (pool.length * opts.perMessage),
  },
});

const streams = Array.from({ length: opts.streams }, (_, i) => {
  // One connection per stream, as Envoy's workers have.
  const client = new AlsClient(opts.target, grpc.credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
    'grpc.max_send_message_length': -1,
  });
  let answered;
  const done = new Promise((r) => (answered = r));
  const call = client.StreamAccessLogs((err) => answered(err));
  call.write(identifierMessage(i));
  return { client, call, done, blocked: false };
});

let sent = 0;
let next = 0;
let stopping = false;
let behindMax = 0;
/** Resolves the main loop's wait for a stream to take messages again (a drain, or 'stop'). */
let wake;
const wakeUp = () => {
  const w = wake;
  wake = undefined;
  w?.();
};
process.on('message', (m) => {
  if (m === 'stop') {
    stopping = true;
    wakeUp();
  }
});
// `waitForGo`: streams open and messages encoded, start on the parent's 'go' (a benchmark times from there).
if (opts.waitForGo) await new Promise((r) => process.on('message', (m) => m === 'go' && r()));
const t0 = performance.now();
const cpu0 = process.cpuUsage();

const progress = setInterval(
  () => process.send?.({ progress: { sent, seconds: (performance.now() - t0) / 1000 } }),
  1000,
);

/** Writes one message on the next stream that can take it; false when all are blocked by flow control. */
function writeOne() {
  for (let k = 0; k < streams.length; k++) {
    const s = streams[(next + k) % streams.length];
    if (s.blocked) continue;
    next = (next + k + 1) % streams.length;
    const msg = stamp(
      pool[(sent / opts.perMessage) % pool.length],
      opts.prefix,
      sent,
      Math.floor(Date.now() / 1000),
    );
    sent += opts.perMessage;
    if (!s.call.write(msg)) {
      s.blocked = true;
      s.call.once('drain', () => {
        s.blocked = false;
        wakeUp();
      });
    }
    return true;
  }
  return false;
}

while (!stopping) {
  const elapsed = (performance.now() - t0) / 1000;
  if (elapsed >= opts.seconds || sent >= opts.total) break;
  const due = opts.rate > 0 ? Math.floor(opts.rate * elapsed) : Infinity;
  let wrote = 0;
  while (sent + opts.perMessage <= Math.min(due, opts.total) && wrote < 200 && writeOne()) wrote++;
  if (opts.rate > 0) behindMax = Math.max(behindMax, (due - sent) / opts.rate);
  // Let the event loop flush; at a steady rate, wake up every 10 ms. As fast as taken and every stream held back by
  // flow control: sleep until one drains (at most 50 ms), never spin: a spinning client takes the CPU of the machine
  // it shares with the server it measures (measured: 0.99–1.20 CPU-s per 100k entries spinning, 0.31–0.39 sleeping).
  if (opts.rate === 0 && streams.every((st) => st.blocked))
    await new Promise((r) => {
      wake = r;
      setTimeout(wakeUp, 50);
    });
  else await new Promise((r) => (opts.rate > 0 ? setTimeout(r, 10) : setImmediate(r)));
}
clearInterval(progress);
for (const s of streams) s.call.end();
const errors = (await Promise.all(streams.map((s) => s.done))).filter(Boolean);
for (const s of streams) s.client.close();
process.send?.({
  done: {
    sent,
    seconds: (performance.now() - t0) / 1000,
    // This process's CPU (user + system) from the first message on: how much of the machine the load took.
    cpuSeconds: ((u) => (u.user + u.system) / 1e6)(process.cpuUsage(cpu0)),
    behindMax,
    errors: errors.map((e) => e.message),
  },
});
process.exit(0);
