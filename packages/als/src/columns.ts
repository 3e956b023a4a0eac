/**
 * The insertable (non-MATERIALIZED) columns of `http_requests` and `tcp_connections`
 * (packages/clickhouse/migrations/0001_create_access_log.sql), in SQL order. The Native blocks
 * written by {@link AccessLogDecoder} carry exactly these columns in this order (LowCardinality
 * declared as its plain type), for `INSERT INTO t (${columnList(HTTP_REQUEST_COLUMNS)}) FORMAT Native`.
 * clickhouse.test.ts checks these lists against the migration file.
 */
export interface ColumnSpec {
  readonly name: string;
  readonly type: string;
}

export const HTTP_REQUEST_COLUMNS: readonly ColumnSpec[] = Object.freeze(
  [
    { name: 'start_time', type: "DateTime64(6, 'UTC')" },
    { name: 'duration_ms', type: 'Float64' },
    { name: 'response_code', type: 'UInt16' },
    { name: 'response_code_details', type: 'LowCardinality(String)' },
    { name: 'response_flags', type: 'Array(LowCardinality(String))' },
    { name: 'route_name', type: 'LowCardinality(String)' },
    { name: 'upstream_cluster', type: 'LowCardinality(String)' },
    { name: 'upstream_host', type: 'LowCardinality(String)' },
    { name: 'upstream_local_address', type: 'String' },
    { name: 'upstream_transport_failure_reason', type: 'LowCardinality(String)' },
    { name: 'upstream_request_attempt_count', type: 'UInt16' },
    { name: 'authority', type: 'LowCardinality(String)' },
    { name: 'method', type: 'LowCardinality(String)' },
    { name: 'scheme', type: 'LowCardinality(String)' },
    { name: 'path', type: 'String' },
    { name: 'path_template', type: 'LowCardinality(String)' },
    { name: 'protocol', type: 'LowCardinality(String)' },
    { name: 'downstream_remote_address', type: 'String' },
    { name: 'downstream_remote_port', type: 'UInt16' },
    { name: 'downstream_local_address', type: 'LowCardinality(String)' },
    { name: 'user_agent', type: 'LowCardinality(String)' },
    { name: 'referer', type: 'String' },
    { name: 'forwarded_for', type: 'String' },
    { name: 'request_id', type: 'String' },
    { name: 'grpc_status', type: 'LowCardinality(String)' },
    { name: 'bytes_received', type: 'UInt64' },
    { name: 'bytes_sent', type: 'UInt64' },
    { name: 'request_headers_bytes', type: 'UInt64' },
    { name: 'response_headers_bytes', type: 'UInt64' },
    { name: 'tls_version', type: 'LowCardinality(String)' },
    { name: 'tls_sni', type: 'LowCardinality(String)' },
    { name: 'tls_cipher_suite', type: 'LowCardinality(String)' },
    { name: 'time_to_last_rx_byte_ms', type: 'Nullable(Float64)' },
    { name: 'time_to_first_upstream_tx_byte_ms', type: 'Nullable(Float64)' },
    { name: 'time_to_last_upstream_tx_byte_ms', type: 'Nullable(Float64)' },
    { name: 'time_to_first_upstream_rx_byte_ms', type: 'Nullable(Float64)' },
    { name: 'time_to_last_upstream_rx_byte_ms', type: 'Nullable(Float64)' },
    { name: 'time_to_first_downstream_tx_byte_ms', type: 'Nullable(Float64)' },
    { name: 'time_to_last_downstream_tx_byte_ms', type: 'Nullable(Float64)' },
    { name: 'node_id', type: 'LowCardinality(String)' },
    { name: 'node_cluster', type: 'LowCardinality(String)' },
    { name: 'log_name', type: 'LowCardinality(String)' },
  ].map((c) => Object.freeze(c)),
);

export const TCP_CONNECTION_COLUMNS: readonly ColumnSpec[] = Object.freeze(
  [
    { name: 'start_time', type: "DateTime64(6, 'UTC')" },
    { name: 'duration_ms', type: 'Float64' },
    { name: 'response_flags', type: 'Array(LowCardinality(String))' },
    { name: 'route_name', type: 'LowCardinality(String)' },
    { name: 'upstream_cluster', type: 'LowCardinality(String)' },
    { name: 'upstream_host', type: 'LowCardinality(String)' },
    { name: 'upstream_transport_failure_reason', type: 'LowCardinality(String)' },
    { name: 'downstream_remote_address', type: 'String' },
    { name: 'downstream_remote_port', type: 'UInt16' },
    { name: 'downstream_local_address', type: 'LowCardinality(String)' },
    { name: 'received_bytes', type: 'UInt64' },
    { name: 'sent_bytes', type: 'UInt64' },
    { name: 'tls_version', type: 'LowCardinality(String)' },
    { name: 'tls_sni', type: 'LowCardinality(String)' },
    { name: 'connection_termination_details', type: 'LowCardinality(String)' },
    { name: 'node_id', type: 'LowCardinality(String)' },
    { name: 'node_cluster', type: 'LowCardinality(String)' },
    { name: 'log_name', type: 'LowCardinality(String)' },
  ].map((c) => Object.freeze(c)),
);

/** `a, b, c` — the column list for an INSERT of the decoder's Native blocks. */
export function columnList(columns: readonly ColumnSpec[]): string {
  return columns.map((c) => c.name).join(', ');
}
