export { nodeKey, parseNodeKey, NODE_COLUMNS } from './keys.js';
export type { NodeIdentity } from './keys.js';
export { LedgerBook, NO_FIRST_SEEN, minuteOf } from './book.js';
export type { LedgerRow, BatchOutcome, NodeCounters } from './book.js';
export {
  ledgerNodesQuery,
  ledgerSeriesQuery,
  ledgerReadable,
  shapeLedgerNodes,
  shapeLedgerSeries,
  nodeStatus,
  GONE_AFTER_MS,
} from './read.js';
export type {
  LedgerNode,
  LedgerPoint,
  NodeStatus,
  LedgerNodeRow,
  LedgerSeriesRow,
  LedgerQuery,
} from './read.js';
export { ingestSilenceSeconds, ingestDropRate, ingestSamples } from './signals.js';
export type { IngestSample } from './signals.js';
export { NodeLabelCap, OTHER } from './labels.js';
