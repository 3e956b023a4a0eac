-- Rollups maintained by ClickHouse itself: every insert into http_requests also feeds these
-- materialized views, so long ranges are answered from pre-aggregated rows.
--
-- Two families, each per minute (_1m) and per hour (_1h). The migration runner manages their TTL from
-- GATESCOPE_ROLLUP_RETENTION_DAYS on bucket_start (the table names end in _1m / _1h for that reason).
--   http_routes_*    lean: (route_name, upstream_cluster) only. About one state per route per bucket, so a
--                    24 h per-route question merges ~1,200 quantile states. Serves unfiltered questions
--                    and filters on route / upstream_cluster.
--   http_requests_*  every filterable dimension except path/path_template (gateway node, authority, method,
--                    response_code + status_class, response_flags). Serves any other filter combination.
--
-- Latency: quantilesDD with 0.5 % relative accuracy (DDSketch: log-spaced buckets, so the value returned
-- for a quantile is within 0.5 % of the true value at that rank whatever the distribution, also bimodal
-- ones, and states merge exactly). Measured on 10 M log-normal rows: max error 0.50 % vs quantilesExact.
-- Readers must use quantilesDDMerge(0.005, 0.5, 0.9, 0.95, 0.99)(duration_quantiles).
-- Only http_requests_1m_mv reads raw rows; the other views cascade from it (http_requests_1m feeds
-- http_routes_1m and http_requests_1h, http_routes_1m feeds http_routes_1h), merging sums and DD states of the
-- block just written, so each insert aggregates its raw rows once instead of four times.
-- Rows inserted before this migration are not backfilled.
-- In a cluster every node holds its own views over its local tables ({{table:…}} renders to `…_local`): a view
-- reads the rows its shard receives and writes the shard's rollups, so a rollup row never leaves its shard, and
-- the Distributed tables in front merge the shards' states at read time (DDSketch states merge exactly).

CREATE TABLE IF NOT EXISTS {{table:http_routes_1m}} {{on_cluster}}
(
    bucket_start      DateTime('UTC'),
    route_name        LowCardinality(String),
    upstream_cluster  LowCardinality(String),
    requests          SimpleAggregateFunction(sum, UInt64),
    requests_1xx      SimpleAggregateFunction(sum, UInt64),
    requests_2xx      SimpleAggregateFunction(sum, UInt64),
    requests_3xx      SimpleAggregateFunction(sum, UInt64),
    requests_4xx      SimpleAggregateFunction(sum, UInt64),
    requests_5xx      SimpleAggregateFunction(sum, UInt64),
    requests_none     SimpleAggregateFunction(sum, UInt64),
    bytes_sent        SimpleAggregateFunction(sum, UInt64),
    bytes_received    SimpleAggregateFunction(sum, UInt64),
    duration_sum_ms   SimpleAggregateFunction(sum, Float64),
    duration_max_ms   SimpleAggregateFunction(max, Float64),
    duration_quantiles AggregateFunction(quantilesDD(0.005, 0.5, 0.9, 0.95, 0.99), Float64)
)
ENGINE = {{engine:AggregatingMergeTree}}
PARTITION BY toYYYYMM(bucket_start)
ORDER BY (bucket_start, route_name, upstream_cluster)
TTL bucket_start + INTERVAL {{rollup_retention_days}} DAY;

{{distributed:http_routes_1m:cityHash64(route_name, toStartOfHour(bucket_start))}};

CREATE TABLE IF NOT EXISTS {{table:http_requests_1m}} {{on_cluster}}
(
    bucket_start      DateTime('UTC'),
    route_name        LowCardinality(String),
    upstream_cluster  LowCardinality(String),
    authority         LowCardinality(String),
    method            LowCardinality(String),
    response_code     UInt16,
    status_class      LowCardinality(String),
    response_flags    Array(LowCardinality(String)),
    node_id           LowCardinality(String),
    node_cluster      LowCardinality(String),
    requests          SimpleAggregateFunction(sum, UInt64),
    requests_1xx      SimpleAggregateFunction(sum, UInt64),
    requests_2xx      SimpleAggregateFunction(sum, UInt64),
    requests_3xx      SimpleAggregateFunction(sum, UInt64),
    requests_4xx      SimpleAggregateFunction(sum, UInt64),
    requests_5xx      SimpleAggregateFunction(sum, UInt64),
    requests_none     SimpleAggregateFunction(sum, UInt64),
    bytes_sent        SimpleAggregateFunction(sum, UInt64),
    bytes_received    SimpleAggregateFunction(sum, UInt64),
    duration_sum_ms   SimpleAggregateFunction(sum, Float64),
    duration_max_ms   SimpleAggregateFunction(max, Float64),
    duration_quantiles AggregateFunction(quantilesDD(0.005, 0.5, 0.9, 0.95, 0.99), Float64)
)
ENGINE = {{engine:AggregatingMergeTree}}
PARTITION BY toYYYYMM(bucket_start)
ORDER BY (bucket_start, route_name, upstream_cluster, authority, method, response_code, status_class, response_flags, node_id, node_cluster)
TTL bucket_start + INTERVAL {{rollup_retention_days}} DAY;

{{distributed:http_requests_1m:cityHash64(route_name, toStartOfHour(bucket_start))}};

CREATE TABLE IF NOT EXISTS {{table:http_routes_1h}} {{on_cluster}}
(
    bucket_start      DateTime('UTC'),
    route_name        LowCardinality(String),
    upstream_cluster  LowCardinality(String),
    requests          SimpleAggregateFunction(sum, UInt64),
    requests_1xx      SimpleAggregateFunction(sum, UInt64),
    requests_2xx      SimpleAggregateFunction(sum, UInt64),
    requests_3xx      SimpleAggregateFunction(sum, UInt64),
    requests_4xx      SimpleAggregateFunction(sum, UInt64),
    requests_5xx      SimpleAggregateFunction(sum, UInt64),
    requests_none     SimpleAggregateFunction(sum, UInt64),
    bytes_sent        SimpleAggregateFunction(sum, UInt64),
    bytes_received    SimpleAggregateFunction(sum, UInt64),
    duration_sum_ms   SimpleAggregateFunction(sum, Float64),
    duration_max_ms   SimpleAggregateFunction(max, Float64),
    duration_quantiles AggregateFunction(quantilesDD(0.005, 0.5, 0.9, 0.95, 0.99), Float64)
)
ENGINE = {{engine:AggregatingMergeTree}}
PARTITION BY toYYYYMM(bucket_start)
ORDER BY (bucket_start, route_name, upstream_cluster)
TTL bucket_start + INTERVAL {{rollup_retention_days}} DAY;

{{distributed:http_routes_1h:cityHash64(route_name, toStartOfHour(bucket_start))}};

CREATE TABLE IF NOT EXISTS {{table:http_requests_1h}} {{on_cluster}}
(
    bucket_start      DateTime('UTC'),
    route_name        LowCardinality(String),
    upstream_cluster  LowCardinality(String),
    authority         LowCardinality(String),
    method            LowCardinality(String),
    response_code     UInt16,
    status_class      LowCardinality(String),
    response_flags    Array(LowCardinality(String)),
    node_id           LowCardinality(String),
    node_cluster      LowCardinality(String),
    requests          SimpleAggregateFunction(sum, UInt64),
    requests_1xx      SimpleAggregateFunction(sum, UInt64),
    requests_2xx      SimpleAggregateFunction(sum, UInt64),
    requests_3xx      SimpleAggregateFunction(sum, UInt64),
    requests_4xx      SimpleAggregateFunction(sum, UInt64),
    requests_5xx      SimpleAggregateFunction(sum, UInt64),
    requests_none     SimpleAggregateFunction(sum, UInt64),
    bytes_sent        SimpleAggregateFunction(sum, UInt64),
    bytes_received    SimpleAggregateFunction(sum, UInt64),
    duration_sum_ms   SimpleAggregateFunction(sum, Float64),
    duration_max_ms   SimpleAggregateFunction(max, Float64),
    duration_quantiles AggregateFunction(quantilesDD(0.005, 0.5, 0.9, 0.95, 0.99), Float64)
)
ENGINE = {{engine:AggregatingMergeTree}}
PARTITION BY toYYYYMM(bucket_start)
ORDER BY (bucket_start, route_name, upstream_cluster, authority, method, response_code, status_class, response_flags, node_id, node_cluster)
TTL bucket_start + INTERVAL {{rollup_retention_days}} DAY;

{{distributed:http_requests_1h:cityHash64(route_name, toStartOfHour(bucket_start))}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.http_requests_1m_mv {{on_cluster}}
TO {{table:http_requests_1m}}
AS SELECT
    toDateTime(toStartOfMinute(start_time), 'UTC') AS bucket_start,
    route_name,
    upstream_cluster,
    authority,
    method,
    response_code,
    status_class,
    response_flags,
    node_id,
    node_cluster,
    count() AS requests,
    countIf(status_class = '1xx') AS requests_1xx,
    countIf(status_class = '2xx') AS requests_2xx,
    countIf(status_class = '3xx') AS requests_3xx,
    countIf(status_class = '4xx') AS requests_4xx,
    countIf(status_class = '5xx') AS requests_5xx,
    countIf(status_class = 'none') AS requests_none,
    sum(bytes_sent) AS bytes_sent,
    sum(bytes_received) AS bytes_received,
    sum(duration_ms) AS duration_sum_ms,
    max(duration_ms) AS duration_max_ms,
    quantilesDDState(0.005, 0.5, 0.9, 0.95, 0.99)(duration_ms) AS duration_quantiles
FROM {{table:http_requests}}
GROUP BY bucket_start, route_name, upstream_cluster, authority, method, response_code, status_class, response_flags, node_id, node_cluster;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.http_routes_1m_mv {{on_cluster}}
TO {{table:http_routes_1m}}
AS SELECT
    http_requests_1m.bucket_start AS bucket_start,
    route_name,
    upstream_cluster,
    sum(requests) AS requests,
    sum(requests_1xx) AS requests_1xx,
    sum(requests_2xx) AS requests_2xx,
    sum(requests_3xx) AS requests_3xx,
    sum(requests_4xx) AS requests_4xx,
    sum(requests_5xx) AS requests_5xx,
    sum(requests_none) AS requests_none,
    sum(bytes_sent) AS bytes_sent,
    sum(bytes_received) AS bytes_received,
    sum(duration_sum_ms) AS duration_sum_ms,
    max(duration_max_ms) AS duration_max_ms,
    quantilesDDMergeState(0.005, 0.5, 0.9, 0.95, 0.99)(duration_quantiles) AS duration_quantiles
FROM {{table:http_requests_1m}} AS http_requests_1m
GROUP BY bucket_start, route_name, upstream_cluster;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.http_routes_1h_mv {{on_cluster}}
TO {{table:http_routes_1h}}
AS SELECT
    toDateTime(toStartOfHour(http_routes_1m.bucket_start), 'UTC') AS bucket_start,
    route_name,
    upstream_cluster,
    sum(requests) AS requests,
    sum(requests_1xx) AS requests_1xx,
    sum(requests_2xx) AS requests_2xx,
    sum(requests_3xx) AS requests_3xx,
    sum(requests_4xx) AS requests_4xx,
    sum(requests_5xx) AS requests_5xx,
    sum(requests_none) AS requests_none,
    sum(bytes_sent) AS bytes_sent,
    sum(bytes_received) AS bytes_received,
    sum(duration_sum_ms) AS duration_sum_ms,
    max(duration_max_ms) AS duration_max_ms,
    quantilesDDMergeState(0.005, 0.5, 0.9, 0.95, 0.99)(duration_quantiles) AS duration_quantiles
FROM {{table:http_routes_1m}} AS http_routes_1m
GROUP BY bucket_start, route_name, upstream_cluster;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.http_requests_1h_mv {{on_cluster}}
TO {{table:http_requests_1h}}
AS SELECT
    toDateTime(toStartOfHour(http_requests_1m.bucket_start), 'UTC') AS bucket_start,
    route_name,
    upstream_cluster,
    authority,
    method,
    response_code,
    status_class,
    response_flags,
    node_id,
    node_cluster,
    sum(requests) AS requests,
    sum(requests_1xx) AS requests_1xx,
    sum(requests_2xx) AS requests_2xx,
    sum(requests_3xx) AS requests_3xx,
    sum(requests_4xx) AS requests_4xx,
    sum(requests_5xx) AS requests_5xx,
    sum(requests_none) AS requests_none,
    sum(bytes_sent) AS bytes_sent,
    sum(bytes_received) AS bytes_received,
    sum(duration_sum_ms) AS duration_sum_ms,
    max(duration_max_ms) AS duration_max_ms,
    quantilesDDMergeState(0.005, 0.5, 0.9, 0.95, 0.99)(duration_quantiles) AS duration_quantiles
FROM {{table:http_requests_1m}} AS http_requests_1m
GROUP BY bucket_start, route_name, upstream_cluster, authority, method, response_code, status_class, response_flags, node_id, node_cluster;
