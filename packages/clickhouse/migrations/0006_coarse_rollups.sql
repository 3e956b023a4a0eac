-- Coarser rollups, so long ranges merge few quantile states. Measured on the embedded engine (10 M rows over 24 h,
-- 50 routes): reading a quantilesDD(0.005) state costs ≈ 13-17 µs (its ~400 buckets are deserialized one by one),
-- the engine's time for a 24 h question is that times the states it reads, and the hourly rollup holds ~1,300 of
-- them per day. DDSketch states merge exactly, so a state of 4 hours or a day gives the same quantiles as the
-- hours it stands for (see 0002).
--   http_totals_1h   no dimension at all: one state per hour. Serves questions with no filter and no grouping
--                    (the overview's series and totals): a 24 h timeseries reads 25 states instead of ~1,300.
--   http_routes_4h   the lean family (route_name, upstream_cluster) per 4 hours and per day. A routes question
--   http_routes_1d   over a long range reads whole days and 4-hour blocks inside it and hours only at its edges
--                    (packages/query plan.ts `coarseSegments`): 24 h reads ≤ 10 states per route, 7 days ≤ 16.
-- Each view cascades from the table before it (http_routes_1h -> http_totals_1h, http_routes_1h ->
-- http_routes_4h -> http_routes_1d), merging the sums and states of the block just written.
-- index_granularity: a state is ~4 KB, so with the default (10 MiB granules) one granule holds a whole part and
-- reading one hour of it deserializes every state of the part; small granules let a range read its own rows.
-- non_replicated_deduplication_window: as in 0003 (a deduplicated retry must not count twice in a view).
--
-- Rows stored before this migration are backfilled from http_routes_1h at the end. Exact when nothing is inserted
-- meanwhile (the all-in-one process migrates before it ingests); in scale-out, stop the collectors while
-- `gatescope migrate` applies this file, or rows stored during its few seconds may be counted twice in these tables.

CREATE TABLE IF NOT EXISTS {{table:http_totals_1h}} {{on_cluster}}
(
    bucket_start      DateTime('UTC'),
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
ORDER BY (bucket_start)
TTL bucket_start + INTERVAL {{rollup_retention_days}} DAY
SETTINGS index_granularity = 8, non_replicated_deduplication_window = 1000;

{{distributed:http_totals_1h:cityHash64(bucket_start)}};

CREATE TABLE IF NOT EXISTS {{table:http_routes_4h}} {{on_cluster}}
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
TTL bucket_start + INTERVAL {{rollup_retention_days}} DAY
SETTINGS index_granularity = 64, non_replicated_deduplication_window = 1000;

{{distributed:http_routes_4h:cityHash64(route_name, toStartOfHour(bucket_start))}};

CREATE TABLE IF NOT EXISTS {{table:http_routes_1d}} {{on_cluster}}
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
TTL bucket_start + INTERVAL {{rollup_retention_days}} DAY
SETTINGS index_granularity = 64, non_replicated_deduplication_window = 1000;

{{distributed:http_routes_1d:cityHash64(route_name, toStartOfHour(bucket_start))}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.http_totals_1h_mv {{on_cluster}}
TO {{table:http_totals_1h}}
AS SELECT
    http_routes_1h.bucket_start AS bucket_start,
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
FROM {{table:http_routes_1h}} AS http_routes_1h
GROUP BY bucket_start;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.http_routes_4h_mv {{on_cluster}}
TO {{table:http_routes_4h}}
AS SELECT
    toStartOfInterval(http_routes_1h.bucket_start, INTERVAL 4 HOUR, 'UTC') AS bucket_start,
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
FROM {{table:http_routes_1h}} AS http_routes_1h
GROUP BY bucket_start, route_name, upstream_cluster;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.http_routes_1d_mv {{on_cluster}}
TO {{table:http_routes_1d}}
AS SELECT
    toDateTime(toStartOfDay(http_routes_4h.bucket_start, 'UTC'), 'UTC') AS bucket_start,
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
FROM {{table:http_routes_4h}} AS http_routes_4h
GROUP BY bucket_start, route_name, upstream_cluster;

-- The backfill (the views above already take every insert from here on). http_routes_1d fills from the 4-hour
-- rows as they are written (its view), so it is not backfilled on its own.
INSERT INTO {{database}}.http_totals_1h SETTINGS distributed_foreground_insert = 1
SELECT
    http_routes_1h.bucket_start AS bucket_start,
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
FROM {{database}}.http_routes_1h AS http_routes_1h
GROUP BY bucket_start;

INSERT INTO {{database}}.http_routes_4h SETTINGS distributed_foreground_insert = 1
SELECT
    toStartOfInterval(http_routes_1h.bucket_start, INTERVAL 4 HOUR, 'UTC') AS bucket_start,
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
FROM {{database}}.http_routes_1h AS http_routes_1h
GROUP BY bucket_start, route_name, upstream_cluster;
