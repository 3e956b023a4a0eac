export { parseAlertDuration, formatDuration } from './duration.js';
export { resolveMetric, ingestSeries, METRIC_NAMES_HELP } from './metrics.js';
export type {
  MetricDef,
  MetricSourceName,
  TrafficObservation,
  TrafficMetricDef,
  IngestMetricDef,
  IngestObservation,
} from './metrics.js';
export {
  parseRule,
  parseReceiver,
  parseAlertsFile,
  crossProblems,
  urlProblems,
  ruleSchema,
  receiverSchema,
  AlertConfigError,
  COMPARISONS,
  GROUP_BY_DIMENSIONS,
  INGEST_SERIES_LABELS,
} from './rule.js';
export type { AlertRule, Receiver, CompiledRule, Comparison, AlertsFile } from './rule.js';
export { fillTemplate, fillAnnotations, templateProblems, formatNumber } from './template.js';
export type { TemplateData } from './template.js';
export { fingerprint, labelSetString } from './fingerprint.js';
export { advance, breaches } from './state.js';
export type { AlertStateName, SeriesState, Observation, Judgement, Transition } from './state.js';
export { dueNotification, buildPayload, groupKey, groupLabelsOf, alertLink, ZERO_TIME } from './notify.js';
export type { AlertInstance, GroupState, GroupTiming, Due, WebhookPayload } from './notify.js';
export { sign, verify, webhookHeaders, secretKey, newMessageId } from './signing.js';
export { checkAddress, isPrivateAddress, ReceiverAddressError } from './address.js';
export { AlertStore } from './store.js';
export type {
  Origin,
  StoredRule,
  ReceiverView,
  ReceiverTarget,
  StoredState,
  HistoryRow,
  DeliveryAttempt,
} from './store.js';
