export { startTelemetry, tracesWanted, type Telemetry } from './sdk.js';
export {
  failSpan,
  startSpan,
  traceFields,
  tracer,
  tracingEnabled,
  withActiveSpan,
  withSpan,
  type SpanOptions,
} from './spans.js';
export type { Span } from '@opentelemetry/api';
