-- The hourly totals: one row per hour and nothing else, so questions with no filter and no grouping (the overview's
-- series and totals, an unfiltered alert) merge one quantile state per hour instead of one per route and hour.
-- Measured on the embedded engine (10 M rows over 24 h, 50 routes): reading a quantilesDD(0.005) state costs
-- ≈ 13-17 µs (its ~400 buckets are deserialized one by one) and the engine's time for a 24 h question is that times
-- the states it reads: an unfiltered 24 h timeseries read ~1,300 states from http_routes_1h, it reads 25 here.
-- DDSketch states merge exactly, so the numbers are those of the hourly rollup (see 0002).
-- The view cascades from http_routes_1h, merging the sums and states of the block just written.
-- index_granularity = 8: a state is ~4 KB, so with the default (10 MiB granules) a granule holds thousands of rows
-- and reading one hour of it deserializes every state in it; small granules let a range read its own rows.
-- non_replicated_deduplication_window: as in 0003 (a deduplicated retry must not count twice in a view).
--
-- Rows stored before this migration are backfilled from http_routes_1h at the end. Exact when nothing is inserted
-- meanwhile (the all-in-one process migrates before it ingests); in scale-out, stop the collectors while
-- `gatescope migrate` applies this file, or rows stored during its few seconds may be counted twice here.

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

-- The backfill (the view above takes every insert from here on).
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
