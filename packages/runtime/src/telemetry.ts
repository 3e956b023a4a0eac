import { NodeSDK } from '@opentelemetry/sdk-node';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';

/**
 * OpenTelemetry, started before anything else. Tracing is exported only when the standard OTEL_* variables
 * ask for it (e.g. OTEL_EXPORTER_OTLP_ENDPOINT); otherwise nothing is started and nothing dials out.
 */
export function startTelemetry(
  env: NodeJS.ProcessEnv,
  serviceName = 'gatescope',
): { shutdown(): Promise<void> } {
  const wanted =
    env.OTEL_SDK_DISABLED !== 'true' &&
    Boolean(
      env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_TRACES_EXPORTER,
    );
  if (!wanted) return { shutdown: async () => {} };
  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME ?? serviceName,
    instrumentations: [new HttpInstrumentation()],
  });
  sdk.start();
  return { shutdown: () => sdk.shutdown() };
}
