import { parentPort, workerData } from 'node:worker_threads';
import { DecodeCore, type DecodeCoreOptions } from './decode-core.js';
import { LIVE_FLUSH_MS, type ToWorker, type FromWorker } from './decoder-pool.js';

const core = new DecodeCore(workerData as DecodeCoreOptions);
const port = parentPort!;

// The live window's partial, handed over a few times a second (not per message: a message's cells are few rows).
if ((workerData as DecodeCoreOptions).liveWindow) {
  setInterval(() => {
    const partial = core.takeLive();
    if (partial) port.postMessage({ kind: 'live', partial } satisfies FromWorker);
  }, LIVE_FLUSH_MS).unref();
}

port.on('message', (msg: ToWorker) => {
  if (msg.kind === 'end') {
    core.end(msg.stream);
    return;
  }
  const result = core.decode(msg.stream, msg.data);
  const reply: FromWorker = { kind: 'decoded', stream: msg.stream, result };
  const transfer = result.ok
    ? [result.http, result.tcp, result.outside.http, result.outside.tcp]
        .flatMap((b) => [b.data.buffer, b.streams?.buffer])
        .filter((b, i, all) => b !== undefined && b.byteLength > 0 && all.indexOf(b) === i)
    : [];
  port.postMessage(reply, transfer as ArrayBuffer[]);
});
