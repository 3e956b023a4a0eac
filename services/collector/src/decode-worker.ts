import { parentPort, workerData } from 'node:worker_threads';
import { DecodeCore, type DecodeCoreOptions } from './decode-core.js';
import type { ToWorker, FromWorker } from './decoder-pool.js';

const core = new DecodeCore(workerData as DecodeCoreOptions);
const port = parentPort!;

port.on('message', (msg: ToWorker) => {
  if (msg.kind === 'end') {
    core.end(msg.stream);
    return;
  }
  const result = core.decode(msg.stream, msg.data);
  const reply: FromWorker = { kind: 'decoded', stream: msg.stream, result };
  const transfer = result.ok
    ? [
        result.http.data.buffer,
        result.tcp.data.buffer,
        result.outside.http.data.buffer,
        result.outside.tcp.data.buffer,
      ].filter((b, i, all) => b.byteLength > 0 && all.indexOf(b) === i)
    : [];
  port.postMessage(reply, transfer as ArrayBuffer[]);
});
