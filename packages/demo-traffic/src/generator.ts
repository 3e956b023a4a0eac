import * as grpc from '@grpc/grpc-js';
import { encodeStreamAccessLogsMessage, loadAccessLogServiceDefinition } from '@gatescope/als';
import { demoEntry, demoIdentifier, seededRandom, type Random } from './traffic.js';

export interface DemoTrafficOptions {
  /** gatescope's gRPC ALS address, `host:port`. */
  target: string;
  /** Requests per second across all streams. Default 200. */
  rps?: number;
  /** Concurrent streams, as Envoy opens one per worker thread. Default 2. */
  streams?: number;
  /** How often each stream flushes a message, like Envoy's buffer_flush_interval (shorter here). Default 250 ms. */
  flushMs?: number;
  seed?: number;
  onError?: (err: Error) => void;
}

export interface DemoTraffic {
  /** Entries sent so far. */
  readonly sent: number;
  /** Goes away the way a restarting Envoy does: the streams are cancelled (what is still buffered may be lost). */
  stop(): Promise<void>;
  /**
   * Stops sending and half-closes every stream, then waits until gatescope answered each: every entry sent was
   * read by then. Resolves with the entries sent (tests compare it with what was stored).
   */
  end(): Promise<number>;
}

/**
 * Streams realistic ALS traffic to gatescope over real gRPC, as an Envoy would: a few long-lived streams that
 * never half-close, the identifier in each stream's first message, entries batched per flush. Reconnects when
 * gatescope is not up yet or restarts.
 */
export function startDemoTraffic(options: DemoTrafficOptions): DemoTraffic {
  const rps = options.rps ?? 200;
  const streamCount = Math.max(1, options.streams ?? 2);
  const flushMs = options.flushMs ?? 250;
  const rnd: Random = options.seed === undefined ? Math.random : seededRandom(options.seed);
  const method = loadAccessLogServiceDefinition().StreamAccessLogs;
  const client = new grpc.Client(options.target, grpc.credentials.createInsecure());
  let sent = 0;
  let stopped = false;
  let carry = 0;

  interface Stream {
    call?: grpc.ClientWritableStream<Buffer>;
    /** Settles when gatescope answers the call (after a half-close) or it fails. */
    answered?: Promise<void>;
    fresh: boolean;
    retryAt: number;
  }
  const streams: Stream[] = Array.from({ length: streamCount }, () => ({ fresh: true, retryAt: 0 }));

  function open(s: Stream): grpc.ClientWritableStream<Buffer> {
    let answer!: () => void;
    s.answered = new Promise<void>((r) => (answer = r));
    const call = client.makeClientStreamRequest<Buffer, Buffer>(
      method.path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      (err) => {
        answer();
        // Envoy ignores what the server says; the demo only reconnects.
        if (s.call === call) {
          s.call = undefined;
          s.retryAt = Date.now() + 1_000;
        }
        if (err && !stopped && err.code !== grpc.status.CANCELLED) options.onError?.(err);
      },
    );
    call.on('error', () => {});
    s.call = call;
    s.fresh = true;
    return call;
  }

  const timer = setInterval(() => {
    const exact = (rps * flushMs) / 1000 + carry;
    const total = Math.floor(exact);
    carry = exact - total;
    const now = Date.now();
    for (let i = 0; i < streams.length; i++) {
      const s = streams[i];
      const n = Math.floor(total / streams.length) + (i < total % streams.length ? 1 : 0);
      if (n === 0) continue;
      if (!s.call && now < s.retryAt) continue;
      const call = s.call ?? open(s);
      const entries = Array.from({ length: n }, () => demoEntry(rnd, now - Math.floor(rnd() * flushMs)));
      const msg: Record<string, unknown> = { http_logs: { log_entry: entries } };
      if (s.fresh) msg.identifier = demoIdentifier();
      s.fresh = false;
      call.write(encodeStreamAccessLogsMessage(msg));
      sent += n;
    }
  }, flushMs);

  return {
    get sent() {
      return sent;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      // Let the last writes reach the wire, then go away the way a restarting Envoy does.
      await new Promise((r) => setTimeout(r, 50));
      for (const s of streams) s.call?.cancel();
      client.close();
    },
    async end() {
      if (!stopped) {
        stopped = true;
        clearInterval(timer);
        const answers = streams.map((s) => s.answered);
        for (const s of streams) s.call?.end();
        await Promise.all(answers);
        client.close();
      }
      return sent;
    },
  };
}
