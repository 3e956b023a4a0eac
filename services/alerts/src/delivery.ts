import {
  ReceiverAddressError,
  webhookHeaders,
  type DeliveryAttempt,
  type WebhookPayload,
} from '@gatescope/alerts';
import type { Logger } from 'pino';
import { postJson, type PostResult } from './post.js';

/**
 * Webhook delivery. Policy:
 * - A bounded queue (`queueSize` notifications waiting or in flight); a notification arriving when it is full
 *   is dropped and recorded as `dropped` (the next evaluation's group state still announces it again when the
 *   group next changes or repeats).
 * - Each attempt has its own timeout. Network errors, timeouts, 5xx and 429 are retried with exponential
 *   backoff (1 s, 2 s, 4 s … capped at 5 min) and equal jitter (half the delay fixed, half random), or after
 *   the receiver's Retry-After when that is longer; at most `maxAttempts` attempts. Other 4xx and 3xx are not
 *   retried (the receiver refused this body; sending it again changes nothing). SSRF refusals are not retried.
 * - The same `webhook-id` on every attempt of a notification (Standard Webhooks: receivers deduplicate on it);
 *   a fresh timestamp and signature per attempt.
 * - Every attempt is recorded (outcome, HTTP status, latency, error) through `record`.
 */
export interface Notification {
  id: string;
  receiver: string;
  url: string;
  secret?: string;
  allowPrivate: boolean;
  timeoutMs: number;
  payload: WebhookPayload;
}

export interface DeliveryOptions {
  queueSize: number;
  maxAttempts: number;
  /** First retry delay; doubles per attempt. Default 1 s. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  concurrency?: number;
  record: (attempt: DeliveryAttempt) => void;
  logger: Logger;
  /** Observed per attempt (metrics). */
  onAttempt?: (outcome: DeliveryAttempt['outcome'], seconds: number) => void;
}

export function backoffMs(attempt: number, base: number, max: number, random = Math.random): number {
  const d = Math.min(max, base * 2 ** (attempt - 1));
  return d / 2 + random() * (d / 2);
}

const retryable = (status: number) => status >= 500 || status === 429;

export class Delivery {
  private readonly waiting: { n: Notification; attempt: number; notBefore: number }[] = [];
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly idle = new Set<() => void>();

  constructor(private readonly o: DeliveryOptions) {}

  get queued(): number {
    return this.waiting.length + this.inFlight;
  }

  /** Queue a notification; false (and a `dropped` record) when the queue is full. */
  enqueue(n: Notification): boolean {
    if (this.closed || this.queued >= this.o.queueSize) {
      this.record(
        n,
        1,
        'dropped',
        0,
        0,
        `delivery queue full (${this.o.queueSize}); raise GATESCOPE_ALERTS_DELIVERY_QUEUE`,
      );
      return false;
    }
    this.waiting.push({ n, attempt: 1, notBefore: 0 });
    this.pump();
    return true;
  }

  /** Resolves once nothing is queued or in flight (tests, shutdown). */
  drained(): Promise<void> {
    if (this.queued === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.add(resolve));
  }

  /** Stop: wait up to `graceMs` for in-flight attempts; waiting retries are abandoned (recorded as failed). */
  async close(graceMs = 5_000): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const w of this.waiting.splice(0))
      this.record(w.n, w.attempt, 'failed', 0, 0, 'gatescope stopped before this attempt');
    const until = Date.now() + graceMs;
    while (this.inFlight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  }

  private record(
    n: Notification,
    attempt: number,
    outcome: DeliveryAttempt['outcome'],
    httpStatus: number,
    latencyMs: number,
    error: string,
  ) {
    this.o.onAttempt?.(outcome, latencyMs / 1000);
    this.o.record({
      at: Date.now(),
      notificationId: n.id,
      receiver: n.receiver,
      groupKey: n.payload.groupKey,
      status: n.payload.status,
      alerts: n.payload.alerts.length,
      attempt,
      outcome,
      httpStatus,
      latencyMs,
      error,
    });
  }

  private pump(): void {
    if (this.closed) return;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const now = Date.now();
    const concurrency = this.o.concurrency ?? 4;
    while (this.inFlight < concurrency) {
      const i = this.waiting.findIndex((w) => w.notBefore <= now);
      if (i < 0) break;
      const [w] = this.waiting.splice(i, 1);
      this.inFlight++;
      void this.attempt(w.n, w.attempt).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
    if (this.waiting.length > 0) {
      const next = Math.min(...this.waiting.map((w) => w.notBefore));
      this.timer = setTimeout(() => this.pump(), Math.max(10, next - now));
      this.timer.unref();
    } else if (this.inFlight === 0) {
      for (const resolve of this.idle) resolve();
      this.idle.clear();
    }
  }

  private async attempt(n: Notification, attempt: number): Promise<void> {
    const body = JSON.stringify(n.payload);
    const started = performance.now();
    let result: PostResult | undefined;
    let error = '';
    try {
      result = await postJson(n.url, body, {
        receiver: n.receiver,
        allowPrivate: n.allowPrivate,
        timeoutMs: n.timeoutMs,
        headers: webhookHeaders(n.id, Math.floor(Date.now() / 1000), body, n.secret),
      });
    } catch (err) {
      if (err instanceof ReceiverAddressError) {
        this.record(n, attempt, 'refused', 0, performance.now() - started, err.message);
        this.o.logger.warn({ receiver: n.receiver, err: err.message }, 'webhook refused by the SSRF guard');
        return;
      }
      error = (err as Error).message || String(err);
    }
    const latencyMs = performance.now() - started;
    const status = result?.status ?? 0;
    if (result && status >= 200 && status < 300) {
      this.record(n, attempt, 'delivered', status, latencyMs, '');
      return;
    }
    if (result && !retryable(status)) {
      this.record(n, attempt, 'failed', status, latencyMs, `the receiver answered ${status}: not retried`);
      this.o.logger.warn({ receiver: n.receiver, status }, 'webhook refused by the receiver; not retried');
      return;
    }
    const why = result ? `the receiver answered ${status}` : error;
    if (attempt >= this.o.maxAttempts) {
      this.record(n, attempt, 'failed', status, latencyMs, `${why}; gave up after ${attempt} attempts`);
      this.o.logger.warn({ receiver: n.receiver, status, err: why }, 'webhook delivery failed');
      return;
    }
    const delay = Math.max(
      backoffMs(attempt, this.o.baseDelayMs ?? 1_000, this.o.maxDelayMs ?? 300_000),
      Math.min(result?.retryAfterMs ?? 0, 600_000),
    );
    this.record(n, attempt, 'retry', status, latencyMs, `${why}; retrying in ${Math.round(delay)} ms`);
    this.waiting.push({ n, attempt: attempt + 1, notBefore: Date.now() + delay });
  }
}
