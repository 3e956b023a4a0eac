-- The delivery ledger: per gateway node (node_id, node_cluster, log_name), per minute and collector, what came in
-- and what became of it. Written by the collectors (a few small inserts a second, whatever the entry rate), read
-- by /api/v1/ingest/nodes and the alert metrics ingest_silence_seconds / ingest_drop_rate.
--
-- Rows are deltas; readers always aggregate (sum, sumMap, min, max), so a row is exact whether ClickHouse merged
-- it yet or not. Signed counts: a batch's outcome moves entries out of entries_in_flight (-n) into entries_stored
-- or entries_dropped[reason]; a replayed dead letter moves them out of its reason (-n) again. So over any rows
-- entries_received = entries_stored + sum(entries_dropped) + entries_in_flight.
--
-- Exactly once: every insert carries an insert_deduplication_token and is retried with the same rows and token;
-- a batch's outcome uses a token derived from the batch's own (stable across restarts), so re-sending it after a
-- crash is deduplicated. A plain MergeTree deduplicates only with non_replicated_deduplication_window (a re-send
-- follows its first attempt within a few inserts; 1,000 blocks leave room to spare); a Replicated one by default.
-- first_seen of a row without a message is 2299-12-31 (min ignores it); last_seen / streams_seen 1970-01-01.
-- streams_seen: the latest heartbeat of a collector holding a stream of the node open (an idle Envoy keeps its
-- stream and sends nothing): readers ignore the open streams of a collector whose heartbeat stopped.

CREATE TABLE IF NOT EXISTS {{table:ingest_ledger}} {{on_cluster}}
(
    minute             DateTime('UTC'),
    node_id            LowCardinality(String),
    node_cluster       LowCardinality(String),
    log_name           LowCardinality(String),
    collector          LowCardinality(String),
    messages           SimpleAggregateFunction(sum, UInt64),
    entries_received   SimpleAggregateFunction(sum, Int64),
    entries_stored     SimpleAggregateFunction(sum, Int64),
    entries_in_flight  SimpleAggregateFunction(sum, Int64),
    entries_dropped    SimpleAggregateFunction(sumMap, Map(String, Int64)),
    messages_rejected  SimpleAggregateFunction(sumMap, Map(String, Int64)),
    streams_opened     SimpleAggregateFunction(sum, UInt64),
    streams_closed     SimpleAggregateFunction(sum, UInt64),
    first_seen         SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen          SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    streams_seen       SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = {{engine:AggregatingMergeTree}}
PARTITION BY toYYYYMM(minute)
ORDER BY (node_id, node_cluster, log_name, minute, collector)
TTL minute + INTERVAL {{rollup_retention_days}} DAY
SETTINGS non_replicated_deduplication_window = 1000;

{{distributed:ingest_ledger:cityHash64(node_id, node_cluster, log_name)}};
