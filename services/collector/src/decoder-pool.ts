import { Worker, type ResourceLimits } from 'node:worker_threads';
import type { LiveWindowPartial } from '@gatescope/live-window';
import { DecodeCore, type DecodeCoreOptions, type DecodedBatch } from './decode-core.js';

/** Messages for one thread, in one buffer: `bounds` holds `[stream, end offset]` per message, in order. */
export type ToWorker =
  { kind: 'messages'; data: Uint8Array; bounds: Uint32Array } | { kind: 'end'; stream: number };
export type FromWorker =
  { kind: 'decoded'; batch: DecodedBatch } | { kind: 'live'; partial: LiveWindowPartial };

/** How often each decoder thread hands its live window partial over (bounds the live view's delay). */
export const LIVE_FLUSH_MS = 100;

export interface DecoderPoolEvents {
  /**
   * Every submitted message is answered exactly once, in a batch of consecutive messages of one thread (in the
   * order submitted): its rows, or why it was refused. `waitedMs[i]`: how long `batch.messages[i]` waited for it.
   */
  onDecoded(batch: DecodedBatch, waitedMs: readonly number[]): void;
  /**
   * A decoder thread died and was replaced: these streams lost their state (the identifier Envoy sends only
   * first) and must be ended. Their messages the thread held were answered before as `decoder_crashed`.
   */
  onStreamsLost?(streams: number[], error: Error | undefined): void;
  /** A decoder thread is being replaced (after `delayMs`). */
  onRestart?(thread: number, error: Error | undefined, delayMs: number): void;
  /** A live window partial (with the `liveWindow` option), every LIVE_FLUSH_MS per thread while rows come. */
  onLive?(partial: LiveWindowPartial): void;
}

export interface DecoderPoolOptions extends DecodeCoreOptions {
  /** Decoder threads; 0 decodes inline on the caller's thread. */
  workers: number;
  /** Limits of each decoder thread (a thread over them dies and is replaced). */
  resourceLimits?: ResourceLimits;
}

/** A message handed over and not yet answered; `seq` numbers submissions across all threads. */
interface Held {
  stream: number;
  bytes: number;
  rows: number;
  seq: number;
  /** When it was handed over (performance.now()). */
  at: number;
}

/** One decoder thread and what it holds: messages in submission order (it answers in that order). */
interface Slot {
  worker?: Worker;
  held: Held[];
  /** Messages submitted in this turn of the event loop, handed over together at its end. */
  pending: { stream: number; data: Buffer }[];
  pendingBytes: number;
  streams: Set<number>;
  /** Deaths since this slot last answered a message: a thread that cannot start is restarted ever slower. */
  crashes: number;
  error?: Error;
  restart?: NodeJS.Timeout;
}

const MAX_RESTART_DELAY_MS = 5_000;
const NO_ROWS = { rows: 0, data: new Uint8Array(0) };

/**
 * Decodes ALS messages off the event loop: each stream is pinned to one worker thread (its identifier state
 * lives there, and its messages stay in order). With `workers: 0` decoding runs inline, on the caller's thread.
 *
 * A thread that dies (a crash, or out of memory under `resourceLimits`) is replaced. The messages it held
 * are answered as refused (`decoder_crashed`), and the streams pinned to it are reported lost, so neither
 * `idle()` nor shutdown ever waits for a dead thread.
 */
export class DecoderPool {
  private readonly slots: Slot[] = [];
  private readonly inline?: DecodeCore;
  private inflightMessages = 0;
  private inflightByteCount = 0;
  private inflightRowCount = 0;
  private idleWaiters: Array<() => void> = [];
  private closing = false;
  private submitted = 0;
  private barriers: { seq: number; resolve: () => void }[] = [];
  private liveTimer?: NodeJS.Timeout;
  private handOver?: NodeJS.Immediate;

  constructor(
    private readonly options: DecoderPoolOptions,
    private readonly events: DecoderPoolEvents,
  ) {
    if (options.workers === 0) {
      const inline = new DecodeCore(options);
      this.inline = inline;
      if (options.liveWindow) {
        this.liveTimer = setInterval(() => {
          const partial = inline.takeLive();
          if (partial) events.onLive?.(partial);
        }, LIVE_FLUSH_MS);
        this.liveTimer.unref();
      }
      return;
    }
    for (let i = 0; i < options.workers; i++) {
      const slot: Slot = { held: [], pending: [], pendingBytes: 0, streams: new Set(), crashes: 0 };
      this.slots.push(slot);
      this.start(slot, i);
    }
  }

  /** Messages handed over but not yet answered. */
  get inflight(): number {
    return this.inflightMessages;
  }

  /** Bytes of the messages handed over but not yet answered (not decoded yet: they hold no rows so far). */
  get inflightBytes(): number {
    return this.inflightByteCount;
  }

  /** Entries of the messages handed over but not yet answered (counted by the caller before submitting). */
  get inflightRows(): number {
    return this.inflightRowCount;
  }

  /** The live decoder threads, by index (diagnostics; tests kill one to prove the pool recovers). */
  get threads(): readonly (Worker | undefined)[] {
    return this.slots.map((s) => s.worker);
  }

  /** Hands a message over for decoding; `rows` is its entry count (see countEntries), for accounting. */
  submit(stream: number, data: Buffer, rows = 0): void {
    this.inflightMessages++;
    this.inflightByteCount += data.length;
    this.inflightRowCount += rows;
    const held: Held = { stream, bytes: data.length, rows, seq: ++this.submitted, at: performance.now() };
    if (this.inline) {
      this.answer([held], this.inline.decode([{ stream, data }]));
      return;
    }
    const slot = this.slotFor(stream);
    if (!slot.worker) {
      // Between a crash and its delayed restart: refuse at once, never queue for a thread that is not there.
      this.answer(
        [held],
        refused(
          [held],
          'decoder_unavailable',
          'the decoder thread for this stream is restarting after a crash',
        ),
      );
      return;
    }
    slot.streams.add(stream);
    slot.held.push(held);
    slot.pending.push({ stream, data });
    slot.pendingBytes += data.length;
    this.handOver ??= setImmediate(() => {
      this.handOver = undefined;
      for (const s of this.slots) this.post(s);
    });
  }

  end(stream: number): void {
    if (this.inline) {
      this.inline.end(stream);
      return;
    }
    const slot = this.slotFor(stream);
    slot.streams.delete(stream);
    this.post(slot); // its messages first: they need the stream's state
    slot.worker?.postMessage({ kind: 'end', stream } satisfies ToWorker);
  }

  /** Hands the slot's pending messages to its thread: one copy into a buffer of their own, transferred. */
  private post(slot: Slot): void {
    if (slot.pending.length === 0 || !slot.worker) return;
    const data = new Uint8Array(slot.pendingBytes);
    const bounds = new Uint32Array(2 * slot.pending.length);
    let at = 0;
    slot.pending.forEach((m, i) => {
      data.set(m.data, at);
      at += m.data.length;
      bounds[2 * i] = m.stream;
      bounds[2 * i + 1] = at;
    });
    slot.pending = [];
    slot.pendingBytes = 0;
    slot.worker.postMessage({ kind: 'messages', data, bounds } satisfies ToWorker, [data.buffer]);
  }

  /**
   * Resolves once every message submitted so far has been answered (later ones may still be in flight): the
   * collector's group commit waits for it, so that an entry read before a commit started is in that commit.
   */
  settled(): Promise<void> {
    const seq = this.submitted;
    if (this.oldestHeld() > seq) return Promise.resolve();
    return new Promise((resolve) => this.barriers.push({ seq, resolve }));
  }

  /** The submission number of the oldest message not yet answered (Infinity: none). */
  private oldestHeld(): number {
    let oldest = Infinity;
    for (const slot of this.slots) if (slot.held.length > 0) oldest = Math.min(oldest, slot.held[0].seq);
    return oldest;
  }

  /** Resolves once every submitted message has been answered. */
  idle(): Promise<void> {
    if (this.inflightMessages === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops every thread; messages still held are answered as refused (`shutdown`). */
  async close(): Promise<void> {
    this.closing = true;
    if (this.liveTimer) clearInterval(this.liveTimer);
    if (this.handOver) clearImmediate(this.handOver);
    await Promise.all(
      this.slots.map(async (slot) => {
        if (slot.restart) clearTimeout(slot.restart);
        const worker = slot.worker;
        slot.worker = undefined;
        await worker?.terminate();
        this.release(slot, 'shutdown', 'gatescope shut down before this message was decoded');
      }),
    );
  }

  private slotFor(stream: number): Slot {
    return this.slots[stream % this.slots.length];
  }

  private start(slot: Slot, index: number): void {
    slot.restart = undefined;
    // A larger young generation (32 MB) lets the short-lived strings of decoding die cheaply (fewer scavenges).
    const worker = new Worker(new URL('./decode-worker.js', import.meta.url), {
      workerData: {
        pathTemplateRulesJson: this.options.pathTemplateRulesJson,
        maxTemplatesPerRoute: this.options.maxTemplatesPerRoute,
        limits: this.options.limits,
        liveWindow: this.options.liveWindow,
      } satisfies DecodeCoreOptions,
      resourceLimits: { maxYoungGenerationSizeMb: 32, ...this.options.resourceLimits },
    });
    slot.worker = worker;
    worker.on('message', (msg: FromWorker) => {
      if (msg.kind === 'live') {
        this.events.onLive?.(msg.partial);
        return;
      }
      const held = slot.held.splice(0, msg.batch.messages.length);
      slot.crashes = 0;
      this.answer(held, msg.batch);
    });
    // Without a listener an 'error' would take the whole process down; 'exit' follows it and does the work.
    worker.on('error', (err) => {
      slot.error = err;
    });
    worker.on('exit', () => {
      if (slot.worker !== worker || this.closing) return;
      slot.worker = undefined;
      const error = slot.error;
      slot.error = undefined;
      this.replace(slot, index, error);
    });
  }

  private replace(slot: Slot, index: number, error: Error | undefined): void {
    slot.crashes++;
    const delayMs =
      slot.crashes <= 1 ? 0 : Math.min(MAX_RESTART_DELAY_MS, 100 * 2 ** Math.min(slot.crashes - 2, 10));
    this.events.onRestart?.(index, error, delayMs);
    const why = error ? `: ${error.message}` : '';
    const held = new Set(slot.held.map((h) => h.stream));
    this.release(slot, 'decoder_crashed', `the decoder thread stopped while decoding it${why}`);
    const lost = [...slot.streams].filter((s) => !held.has(s));
    slot.streams.clear();
    if (lost.length > 0) this.events.onStreamsLost?.(lost, error);
    if (delayMs === 0) this.start(slot, index);
    else {
      slot.restart = setTimeout(() => this.start(slot, index), delayMs);
      slot.restart.unref?.();
    }
  }

  /** Answers every message the slot holds as refused. */
  private release(slot: Slot, reason: string, message: string): void {
    const held = slot.held;
    slot.held = [];
    slot.pending = [];
    slot.pendingBytes = 0;
    if (held.length > 0) this.answer(held, refused(held, reason, message));
  }

  private answer(held: Held[], batch: DecodedBatch): void {
    const now = performance.now();
    for (const h of held) {
      this.inflightMessages--;
      this.inflightByteCount -= h.bytes;
      this.inflightRowCount -= h.rows;
    }
    this.events.onDecoded(
      batch,
      held.map((h) => now - h.at),
    );
    if (this.barriers.length > 0) {
      const oldest = this.oldestHeld();
      const due = this.barriers.filter((b) => b.seq < oldest);
      if (due.length > 0) {
        this.barriers = this.barriers.filter((b) => b.seq >= oldest);
        for (const b of due) b.resolve();
      }
    }
    if (this.inflightMessages === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}

/** A batch answering every message in `held` as refused. */
function refused(held: readonly Held[], reason: string, message: string): DecodedBatch {
  return {
    messages: held.map((h) => ({ ok: false, stream: h.stream, reason, message })),
    http: NO_ROWS,
    tcp: NO_ROWS,
    outside: { http: NO_ROWS, tcp: NO_ROWS },
  };
}
