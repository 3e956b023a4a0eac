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

type Queued = { stream: number; data: Uint8Array } | { end: number };
let queue: Queued[] = [];
let scheduled = false;

// Everything queued for this thread is decoded together, once the port has handed over what it holds: one batch,
// one answer, one block per table (a busy collector sends fewer, bigger blocks downstream; an idle one, batches of one).
port.on('message', (msg: ToWorker) => {
  if (msg.kind === 'end') queue.push({ end: msg.stream });
  else {
    let start = 0;
    for (let i = 0; i < msg.bounds.length; i += 2) {
      queue.push({ stream: msg.bounds[i], data: msg.data.subarray(start, msg.bounds[i + 1]) });
      start = msg.bounds[i + 1];
    }
  }
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
});

function flush(): void {
  scheduled = false;
  const items = queue;
  queue = [];
  let batch: { stream: number; data: Uint8Array }[] = [];
  for (const item of items) {
    if ('end' in item) {
      // The stream's earlier messages need its state: decode them before it goes.
      if (batch.length > 0) answer(batch);
      batch = [];
      core.end(item.end);
    } else batch.push(item);
  }
  if (batch.length > 0) answer(batch);
}

function answer(messages: { stream: number; data: Uint8Array }[]): void {
  const batch = core.decode(messages);
  const transfer = [batch.http, batch.tcp, batch.outside.http, batch.outside.tcp]
    .flatMap((b) => [b.data.buffer, b.streams?.buffer])
    .filter((b, i, all) => b !== undefined && b.byteLength > 0 && all.indexOf(b) === i);
  port.postMessage({ kind: 'decoded', batch } satisfies FromWorker, transfer as ArrayBuffer[]);
}
