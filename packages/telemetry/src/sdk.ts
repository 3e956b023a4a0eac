import type { SpanProcessor } from '@opentelemetry/sdk-trace';
import { setTracingEnabled } from './spans.js';

export interface Telemetry {
  /** Export what is buffered and stop. */
  shutdown(): Promise<void>;
}

/** Whether the standard OTEL_* variables ask for traces to be exported. */
export function tracesWanted(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED === 'true') return false;
  if (env.OTEL_TRACES_EXPORTER) return env.OTEL_TRACES_EXPORTER !== 'none';
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/**
 * OpenTelemetry, started before anything else. Traces are exported only when the standard OTEL_* variables ask
 * for it (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_EXPORTER, …; OTEL_SERVICE_NAME names the service); otherwise
 * the SDK is not even loaded, nothing dials out, and every span of ours is the API's no-op. `spanProcessors`
 * (tests: an in-memory exporter) starts it whatever the environment says.
 */
export async function startTelemetry(
  env: NodeJS.ProcessEnv,
  serviceName = 'gatescope',
  options: { spanProcessors?: SpanProcessor[] } = {},
): Promise<Telemetry> {
  if (!options.spanProcessors && !tracesWanted(env)) return { shutdown: async () => {} };
  const [{ NodeSDK }, { HttpInstrumentation }] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/instrumentation-http'),
  ]);
  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME ?? serviceName,
    // Outgoing requests (ClickHouse over HTTP, webhooks) carry the trace context. Incoming requests are traced by
    // @fastify/otel (@gatescope/http), which also takes a caller's `traceparent`.
    instrumentations: [new HttpInstrumentation()],
    ...(options.spanProcessors ? { spanProcessors: options.spanProcessors } : {}),
  });
  sdk.start();
  setTracingEnabled(true);
  return {
    async shutdown() {
      setTracingEnabled(false);
      await sdk.shutdown();
    },
  };
}
