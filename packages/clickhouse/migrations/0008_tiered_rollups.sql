-- Tiered rollups: long windows merge fewer quantile states.
--
-- Reading a quantilesDD(0.005) state costs ≈ 8-22 µs on the embedded engine (its buckets are deserialised one by
-- one), and a question's time is that times the states it reads. Two things made long windows read far more than
-- they need:
-- 1. Granules. The rollups of 0002 had the default index_granularity (8,192 rows): http_routes_1h held ~6 days per
--    granule, http_routes_1m ~2.7 hours, http_requests_1m ~19 minutes (10 M rows over 24 h, 50 routes). A read
--    deserialises every state of every granule it touches, so reading one hour of http_routes_1h read the whole
--    part (measured: 918 states read for 50 wanted). Each of the four is rebuilt here with small granules
--    (index_granularity 64 for the lean route tables, about one bucket of 50 routes; 256 for the wide request
--    tables) and PRIMARY KEY bucket_start (the index keeps one timestamp per granule, not the whole sort key).
--    index_granularity cannot be altered, so each table is copied into a new one and the two are swapped
--    (EXCHANGE TABLES): the views keep writing to and reading from the names, now the rebuilt tables. Smaller
--    granules cost inserts more marks: +30-50 % of a 10k-row insert's CPU on the embedded engine (measured).
-- 2. Bucket count. A 24 h question reads 25 hourly states per route; a 1 h alert window 61 per-minute ones. Above
--    the per-minute and hourly rollups come coarser tiers, each fed by a view from the inserts of the tier below
--    (a late row stored into an old minute reaches its 10-minute and 6-hour buckets the same way):
--      http_routes_10m, http_requests_10m   from http_routes_1m / http_requests_1m
--    Each view costs every insert a merge of the block the tier below just received (measured on the embedded
--    engine, 10k-row inserts: +20-50 % CPU per tier; 40k-row inserts, far less). http_requests_6h was measured
--    too and left out: the dearest (+49 %) for the rarest question (a day filtered beyond route and upstream);
--    so was http_routes_6h: a 24 h routes read of 3 six-hour blocks plus hourly edges measured 0.81-0.86x the
--    speed of the 25 hourly states alone (the UNION ALL of the parts and the larger states cost more than the
--    states saved), for a merge on every insert.
--    A window is read as the coarsest whole blocks it contains plus finer edges (packages/query plan.ts
--    `tierParts`): 1 h = 5 ten-minute blocks + minute edges; 6 h = whole hours + 10-minute and minute edges.
--    DDSketch states merge exactly, so the numbers are those of the single-table read.
-- TTL: GATESCOPE_ROLLUP_RETENTION_DAYS, as every rollup (the runner manages it by the _10m suffix).
-- non_replicated_deduplication_window: as in 0003 (a deduplicated retry must not count twice in a view).
--
-- The copies and backfills read the existing rows once: exact when nothing is inserted meanwhile (the all-in-one
-- process migrates before it ingests); in scale-out, stop the collectors while `gatescope migrate` applies this
-- file (README: Scale-out). Each rebuild starts by dropping a leftover `_rebuild` table, so a migration that
-- failed half-way can be run again: before the swap the leftover is a partial copy, after it the old table.

-- http_routes_1m: rebuilt with small granules.
DROP TABLE IF EXISTS {{database}}.http_routes_1m_rebuild {{on_cluster}} SYNC;

DROP TABLE IF EXISTS {{table:http_routes_1m_rebuild}} {{on_cluster}} SYNC;

CREATE TABLE IF NOT EXISTS {{table:http_routes_1m_rebuild}} {{on_cluster}} AS {{table:http_routes_1m}}
ENGINE = {{engine:AggregatingMergeTree}}
PARTITION BY toYYYYMM(bucket_start)
PRIMARY KEY bucket_start
ORDER BY (bucket_start, route_name, upstream_cluster)
TTL bucket_start + INTERVAL {{rollup_retention_days}} DAY
SETTINGS index_granularity = 64, non_replicated_deduplication_window = 1000;

{{distributed:http_routes_1m_rebuild:cityHash64(route_name, toStartOfHour(bucket_start))}};

INSERT INTO {{database}}.http_routes_1m_rebuild SETTINGS distributed_foreground_insert = 1
SELECT * FROM {{database}}.http_routes_1m;

EXCHANGE TABLES {{table:http_routes_1m}} AND {{table:http_routes_1m_rebuild}} {{on_cluster}};

DROP TABLE IF EXISTS {{database}}.http_routes_1m_rebuild {{on_cluster}} SYNC;

DROP TABLE IF EXISTS {{table:http_routes_1m_rebuild}} {{on_cluster}} SYNC;

-- http_routes_1h: rebuilt with small granules.
DROP TABLE IF EXISTS {{database}}.http_routes_1h_rebuild {{on_cluster}} SYNC;

DROP TABLE IF EXISTS {{table:http_routes_1h_rebuild}} {{on_cluster}} SYNC;

CREATE TABLE IF NOT EXISTS {{table:http_routes_1h_rebuild}} {{on_cluster}} AS {{table:http_routes_1h}}
ENGINE = {{engine:AggregatingMergeTree}}
PARTITION BY toYYYYMM(bucket_start)
PRIMARY KEY bucket_start
ORDER BY (bucket_start, route_name, upstream_cluster)
TTL bucket_start + INTERVAL {{rollup_retention_days}} DAY
SETTINGS index_granularity = 64, non_replicated_deduplication_window = 1000;

{{distributed:http_routes_1h_rebuild:cityHash64(route_name, toStartOfHour(bucket_start))}};

INSERT INTO {{database}}.http_routes_1h_rebuild SETTINGS distributed_foreground_insert = 1
SELECT * FROM {{database}}.http_routes_1h;

EXCHANGE TABLES {{table:http_routes_1h}} AND {{table:http_routes_1h_rebuild}} {{on_cluster}};

DROP TABLE IF EXISTS {{database}}.http_routes_1h_rebuild {{on_cluster}} SYNC;

DROP TABLE IF EXISTS {{table:http_routes_1h_rebuild}} {{on_cluster}} SYNC;

-- http_requests_1m: rebuilt with small granules.
DROP TABLE IF EXISTS {{database}}.http_requests_1m_rebuild {{on_cluster}} SYNC;

DROP TABLE IF EXISTS {{table:http_requests_1m_rebuild}} {{on_cluster}} SYNC;

CREATE TABLE IF NOT EXISTS {{table:http_requests_1m_rebuild}} {{on_cluster}} AS {{table:http_requests_1m}}
ENGINE = {{engine:AggregatingMergeTree}}
PARTITION BY toYYYYMM(bucket_start)
PRIMARY KEY bucket_start
ORDER BY (bucket_start, route_name, upstream_cluster, authority, method, response_code, status_class, response_flags, node_id, node_cluster)
TTL bucket_start + INTERVAL {{rollup_retention_days}} DAY
SETTINGS index_granularity = 256, non_replicated_deduplication_window = 1000;

{{distributed:http_requests_1m_rebuild:cityHash64(route_name, toStartOfHour(bucket_start))}};

INSERT INTO {{database}}.http_requests_1m_rebuild SETTINGS distributed_foreground_insert = 1
SELECT * FROM {{database}}.http_requests_1m;

EXCHANGE TABLES {{table:http_requests_1m}} AND {{table:http_requests_1m_rebuild}} {{on_cluster}};

DROP TABLE IF EXISTS {{database}}.http_requests_1m_rebuild {{on_cluster}} SYNC;

DROP TABLE IF EXISTS {{table:http_requests_1m_rebuild}} {{on_cluster}} SYNC;

-- http_requests_1h: rebuilt with small granules.
DROP TABLE IF EXISTS {{database}}.http_requests_1h_rebuild {{on_cluster}} SYNC;

DROP TABLE IF EXISTS {{table:http_requests_1h_rebuild}} {{on_cluster}} SYNC;

CREATE TABLE IF NOT EXISTS {{table:http_requests_1h_rebuild}} {{on_cluster}} AS {{table:http_requests_1h}}
ENGINE = {{engine:AggregatingMergeTree}}
PARTITION BY toYYYYMM(bucket_start)
PRIMARY KEY bucket_start
ORDER BY (bucket_start, route_name, upstream_cluster, authority, method, response_code, status_class, response_flags, node_id, node_cluster)
TTL bucket_start + INTERVAL {{rollup_retention_days}} DAY
SETTINGS index_granularity = 256, non_replicated_deduplication_window = 1000;

{{distributed:http_requests_1h_rebuild:cityHash64(route_name, toStartOfHour(bucket_start))}};

INSERT INTO {{database}}.http_requests_1h_rebuild SETTINGS distributed_foreground_insert = 1
SELECT * FROM {{database}}.http_requests_1h;

EXCHANGE TABLES {{table:http_requests_1h}} AND {{table:http_requests_1h_rebuild}} {{on_cluster}};

DROP TABLE IF EXISTS {{database}}.http_requests_1h_rebuild {{on_cluster}} SYNC;

DROP TABLE IF EXISTS {{table:http_requests_1h_rebuild}} {{on_cluster}} SYNC;

-- http_routes_10m: fed from http_routes_1m's inserts.
CREATE TABLE IF NOT EXISTS {{table:http_routes_10m}} {{on_cluster}} AS {{table:http_routes_1m}}
ENGINE = {{engine:AggregatingMergeTree}}
PARTITION BY toYYYYMM(bucket_start)
PRIMARY KEY bucket_start
ORDER BY (bucket_start, route_name, upstream_cluster)
TTL bucket_start + INTERVAL {{rollup_retention_days}} DAY
SETTINGS index_granularity = 64, non_replicated_deduplication_window = 1000;

{{distributed:http_routes_10m:cityHash64(route_name, toStartOfHour(bucket_start))}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.http_routes_10m_mv {{on_cluster}}
TO {{table:http_routes_10m}}
AS SELECT
    toDateTime(toStartOfTenMinutes(http_routes_1m.bucket_start), 'UTC') AS bucket_start,
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

-- The backfill (the view above takes every insert from here on).
INSERT INTO {{database}}.http_routes_10m SETTINGS distributed_foreground_insert = 1
SELECT
    toDateTime(toStartOfTenMinutes(http_routes_1m.bucket_start), 'UTC') AS bucket_start,
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
FROM {{database}}.http_routes_1m AS http_routes_1m
GROUP BY bucket_start, route_name, upstream_cluster;

-- http_requests_10m: fed from http_requests_1m's inserts.
CREATE TABLE IF NOT EXISTS {{table:http_requests_10m}} {{on_cluster}} AS {{table:http_requests_1m}}
ENGINE = {{engine:AggregatingMergeTree}}
PARTITION BY toYYYYMM(bucket_start)
PRIMARY KEY bucket_start
ORDER BY (bucket_start, route_name, upstream_cluster, authority, method, response_code, status_class, response_flags, node_id, node_cluster)
TTL bucket_start + INTERVAL {{rollup_retention_days}} DAY
SETTINGS index_granularity = 256, non_replicated_deduplication_window = 1000;

{{distributed:http_requests_10m:cityHash64(route_name, toStartOfHour(bucket_start))}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{database}}.http_requests_10m_mv {{on_cluster}}
TO {{table:http_requests_10m}}
AS SELECT
    toDateTime(toStartOfTenMinutes(http_requests_1m.bucket_start), 'UTC') AS bucket_start,
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

-- The backfill (the view above takes every insert from here on).
INSERT INTO {{database}}.http_requests_10m SETTINGS distributed_foreground_insert = 1
SELECT
    toDateTime(toStartOfTenMinutes(http_requests_1m.bucket_start), 'UTC') AS bucket_start,
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
FROM {{database}}.http_requests_1m AS http_requests_1m
GROUP BY bucket_start, route_name, upstream_cluster, authority, method, response_code, status_class, response_flags, node_id, node_cluster;
