export { HTTP_REQUEST_COLUMNS, TCP_CONNECTION_COLUMNS, columnList } from './columns.js';
export type { ColumnSpec } from './columns.js';
export {
  AccessLogDecoder,
  DecodeError,
  countEntries,
  DEFAULT_DECODE_LIMITS,
  UNKNOWN_IDENTITY,
  RESPONSE_FLAG_CODES,
  TLS_CIPHER_NAMES,
  tlsCipherName,
} from './decoder.js';
export type {
  StreamIdentity,
  StreamState,
  DecodeResult,
  DecodeLimits,
  DecodeErrorReason,
  PathTemplaterLike,
  AccessLogDecoderOptions,
  HttpRowObserver,
} from './decoder.js';
export {
  accessLogProtoRoot,
  encodeStreamAccessLogsMessage,
  decodeStreamAccessLogsMessageWithProtobufjs,
  loadAccessLogServiceDefinition,
  envoyProtoIncludeDirs,
  envoyProtoRoot,
  ACCESS_LOG_SERVICE,
  STREAM_ACCESS_LOGS_PATH,
  STREAM_ACCESS_LOGS_MESSAGE,
  ALS_PROTO_FILE,
} from './proto.js';
export { readNative, readNativeBlocks } from './native-reader.js';
export { leb, nativeType } from './native-block.js';
export type { NativeData } from './native-block.js';
export { concatNativeBlocks } from './native-concat.js';
export {
  selectNativeRows,
  nativeMatchRows,
  nativeRowDays,
  nativeRowKeys,
  nativeStringColumns,
} from './native-select.js';
export type { StringMatch } from './native-select.js';
export type { RowValue, Row, NativeBlock, NativeColumn } from './native-reader.js';
export { RecentRows } from './native-recent.js';
export type { RecentRowsOptions, RecentRowsRead } from './native-recent.js';
