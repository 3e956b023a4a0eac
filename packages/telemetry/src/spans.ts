import {
  context,
  isSpanContextValid,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Span,
} from '@opentelemetry/api';

/**
 * gatescope's own spans. Everything here goes through the OpenTelemetry API only: until `startTelemetry` registers
 * an SDK (OTEL_* asks for an exporter), the API's tracer is a no-op, so a span costs a function call and
 * `traceFields` returns nothing.
 *
 * Span names: `<component>.<operation>` (`clickhouse.query`, `clickhouse.insert`, `collector.flush`, `live.tick`,
 * `alerts.deliver`); attributes follow OpenTelemetry's database conventions where they apply (`db.system.name`,
 * `db.namespace`, `db.collection.name`, `db.operation.name`, `db.query.text`, `db.response.returned_rows`) and are
 * `gatescope.*` otherwise.
 */
export const tracer = trace.getTracer('gatescope');

let enabled = false;
/** Whether an SDK was started in this process (`startTelemetry`): instrumentation that costs more checks it. */
export function tracingEnabled(): boolean {
  return enabled;
}
/** @internal set by startTelemetry. */
export function setTracingEnabled(on: boolean): void {
  enabled = on;
}

export interface SpanOptions {
  attributes?: Attributes;
  /** Default INTERNAL; CLIENT for calls to another system (ClickHouse, a webhook receiver). */
  kind?: 'internal' | 'client' | 'server' | 'producer' | 'consumer';
}

const KINDS = {
  internal: SpanKind.INTERNAL,
  client: SpanKind.CLIENT,
  server: SpanKind.SERVER,
  producer: SpanKind.PRODUCER,
  consumer: SpanKind.CONSUMER,
} as const;

/** Mark a span failed with this error (status ERROR, the exception recorded). */
export function failSpan(span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : String(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message ?? String(err) });
}

/**
 * Run `fn` inside a new active span (so the spans and log lines it causes are its children) and end it when `fn`
 * settles; a throw marks it failed and is rethrown. The one helper for every span of our own: ClickHouse calls,
 * batch flushes, live ticks, webhook deliveries.
 */
export async function withSpan<T>(
  name: string,
  options: SpanOptions,
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  return tracer.startActiveSpan(
    name,
    { kind: KINDS[options.kind ?? 'internal'], attributes: options.attributes },
    async (span) => {
      try {
        return await fn(span);
      } catch (err) {
        failSpan(span, err);
        throw err;
      } finally {
        span.end();
      }
    },
  );
}

/** Start a span that the caller ends (a result read later than the call that started it). */
export function startSpan(name: string, options: SpanOptions = {}): Span {
  return tracer.startSpan(name, {
    kind: KINDS[options.kind ?? 'internal'],
    attributes: options.attributes,
  });
}

/** Run `fn` with `span` as the active span. */
export function withActiveSpan<T>(span: Span, fn: () => T): T {
  return context.with(trace.setSpan(context.active(), span), fn);
}

/** `{ trace_id, span_id }` of the active span for a log line, or nothing (no SDK, or outside any span). */
export function traceFields(): { trace_id?: string; span_id?: string } {
  if (!enabled) return {};
  const span = trace.getActiveSpan();
  if (!span) return {};
  const c = span.spanContext();
  return isSpanContextValid(c) ? { trace_id: c.traceId, span_id: c.spanId } : {};
}
