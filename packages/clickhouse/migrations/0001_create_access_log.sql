-- One row per Envoy HTTP access-log entry (envoy.data.accesslog.v3.HTTPAccessLogEntry).
-- Times are UTC; every *_ms column is milliseconds with sub-millisecond precision.
CREATE TABLE IF NOT EXISTS {{table:http_requests}} {{on_cluster}}
(
    start_time                         DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1)),
    duration_ms                        Float64 CODEC(ZSTD(1)),
    response_code                      UInt16,
    response_code_details              LowCardinality(String),
    response_flags                     Array(LowCardinality(String)),
    route_name                         LowCardinality(String),
    upstream_cluster                   LowCardinality(String),
    upstream_host                      LowCardinality(String),
    upstream_local_address             String CODEC(ZSTD(1)),
    upstream_transport_failure_reason  LowCardinality(String),
    upstream_request_attempt_count     UInt16,
    authority                          LowCardinality(String),
    method                             LowCardinality(String),
    scheme                             LowCardinality(String),
    path                               String CODEC(ZSTD(1)),
    path_template                      LowCardinality(String),
    protocol                           LowCardinality(String),
    downstream_remote_address          String CODEC(ZSTD(1)),
    downstream_remote_port             UInt16,
    downstream_local_address           LowCardinality(String),
    user_agent                         LowCardinality(String),
    referer                            String CODEC(ZSTD(1)),
    forwarded_for                      String CODEC(ZSTD(1)),
    request_id                         String CODEC(ZSTD(1)),
    grpc_status                        LowCardinality(String),
    bytes_received                     UInt64,
    bytes_sent                         UInt64,
    request_headers_bytes              UInt64,
    response_headers_bytes             UInt64,
    tls_version                        LowCardinality(String),
    tls_sni                            LowCardinality(String),
    tls_cipher_suite                   LowCardinality(String),
    time_to_last_rx_byte_ms            Nullable(Float64),
    time_to_first_upstream_tx_byte_ms  Nullable(Float64),
    time_to_last_upstream_tx_byte_ms   Nullable(Float64),
    time_to_first_upstream_rx_byte_ms  Nullable(Float64),
    time_to_last_upstream_rx_byte_ms   Nullable(Float64),
    time_to_first_downstream_tx_byte_ms Nullable(Float64),
    time_to_last_downstream_tx_byte_ms Nullable(Float64),
    node_id                            LowCardinality(String),
    node_cluster                       LowCardinality(String),
    log_name                           LowCardinality(String),
    status_class                       LowCardinality(String) MATERIALIZED
        multiIf(response_code = 0, 'none', response_code < 200, '1xx', response_code < 300, '2xx',
                response_code < 400, '3xx', response_code < 500, '4xx', '5xx'),
    INDEX idx_request_id request_id TYPE bloom_filter(0.001) GRANULARITY 4,
    INDEX idx_upstream_cluster upstream_cluster TYPE set(256) GRANULARITY 4
)
ENGINE = {{engine:MergeTree}}
PARTITION BY toDate(start_time)
ORDER BY (toStartOfHour(start_time), route_name, start_time)
TTL toDateTime(start_time) + INTERVAL {{retention_days}} DAY
SETTINGS ttl_only_drop_parts = 1;

-- In a cluster: the table users query, over every shard. A route's hour lives on one shard (README: Scale-out).
{{distributed:http_requests:cityHash64(route_name, toStartOfHour(start_time))}};

-- One row per Envoy TCP access-log entry (envoy.data.accesslog.v3.TCPAccessLogEntry).
CREATE TABLE IF NOT EXISTS {{table:tcp_connections}} {{on_cluster}}
(
    start_time                  DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1)),
    duration_ms                 Float64,
    response_flags              Array(LowCardinality(String)),
    route_name                  LowCardinality(String),
    upstream_cluster            LowCardinality(String),
    upstream_host               LowCardinality(String),
    upstream_transport_failure_reason LowCardinality(String),
    downstream_remote_address   String CODEC(ZSTD(1)),
    downstream_remote_port      UInt16,
    downstream_local_address    LowCardinality(String),
    received_bytes              UInt64,
    sent_bytes                  UInt64,
    tls_version                 LowCardinality(String),
    tls_sni                     LowCardinality(String),
    connection_termination_details LowCardinality(String),
    node_id                     LowCardinality(String),
    node_cluster                LowCardinality(String),
    log_name                    LowCardinality(String)
)
ENGINE = {{engine:MergeTree}}
PARTITION BY toDate(start_time)
ORDER BY (toStartOfHour(start_time), upstream_cluster, start_time)
TTL toDateTime(start_time) + INTERVAL {{retention_days}} DAY
SETTINGS ttl_only_drop_parts = 1;

{{distributed:tcp_connections:cityHash64(upstream_cluster, toStartOfHour(start_time))}};
