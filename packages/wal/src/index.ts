export { WriteAheadLog, INBOX, mergeTally } from './wal.js';
export type { Segment, WalOptions, RecoveryReport, CommitResult, KeyTally } from './wal.js';
export {
  DeadLetterStore,
  deadLetterId,
  listDeadLetters,
  readDeadLetterRows,
  requeueDeadLetters,
} from './dead-letters.js';
export type {
  DeadLetter,
  DeadLetterError,
  DeadLetterReason,
  DeadLetterStoreOptions,
} from './dead-letters.js';
export { readSegment, SegmentWriter } from './segment.js';
export type { SegmentHeader, StoredSegment } from './segment.js';
export { WalLockedError } from './lock.js';
