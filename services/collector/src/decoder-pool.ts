import { Worker } from 'node:worker_threads';
import {
  DecodeCore,
  type DecodeCoreOptions,
  type DecodedMessage,
  type DecodeFailure,
} from './decode-core.js';

export type ToWorker =
  { kind: 'message'; stream: number; data: Uint8Array } | { kind: 'end'; stream: number };
export type FromWorker = { kind: 'decoded'; stream: number; result: DecodedMessage | DecodeFailure };

export type DecodedCallback = (stream: number, result: DecodedMessage | DecodeFailure) => void;

/**
 * Decodes ALS messages off the event loop: each stream is pinned to one worker thread (its identifier state
 * lives there, and its messages stay in order). With `workers: 0` decoding runs inline, on the caller's thread.
 */
export class DecoderPool {
  private readonly workers: Worker[] = [];
  private readonly inline?: DecodeCore;
  private inflightMessages = 0;
  private idleWaiters: Array<() => void> = [];
  private failed?: Error;

  constructor(
    workers: number,
    options: DecodeCoreOptions,
    private readonly onDecoded: DecodedCallback,
  ) {
    if (workers === 0) {
      this.inline = new DecodeCore(options);
      return;
    }
    for (let i = 0; i < workers; i++) {
      // A larger young generation (32 MB) lets the short-lived strings of decoding die cheaply (fewer scavenges).
      const worker = new Worker(new URL('./decode-worker.js', import.meta.url), {
        workerData: options,
        resourceLimits: { maxYoungGenerationSizeMb: 32 },
      });
      worker.on('message', (msg: FromWorker) => this.delivered(msg.stream, msg.result));
      worker.on('error', (err) => {
        this.failed = err;
      });
      this.workers.push(worker);
    }
  }

  /** Messages handed over but not yet decoded. */
  get inflight(): number {
    return this.inflightMessages;
  }

  submit(stream: number, data: Buffer): void {
    if (this.failed) throw this.failed;
    this.inflightMessages++;
    if (this.inline) {
      this.delivered(stream, this.inline.decode(stream, data));
      return;
    }
    const copy = new Uint8Array(data); // just these bytes, in a buffer of their own we can transfer
    this.workerFor(stream).postMessage({ kind: 'message', stream, data: copy } satisfies ToWorker, [
      copy.buffer,
    ]);
  }

  end(stream: number): void {
    if (this.inline) this.inline.end(stream);
    else this.workerFor(stream).postMessage({ kind: 'end', stream } satisfies ToWorker);
  }

  /** Resolves once every submitted message has been decoded and delivered. */
  idle(): Promise<void> {
    if (this.inflightMessages === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private workerFor(stream: number): Worker {
    return this.workers[stream % this.workers.length];
  }

  private delivered(stream: number, result: DecodedMessage | DecodeFailure): void {
    this.inflightMessages--;
    this.onDecoded(stream, result);
    if (this.inflightMessages === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
