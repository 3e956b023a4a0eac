-- Exactly once: the collector sends every batch with an insert_deduplication_token (the batch's id in its
-- write-ahead log) and resends the same bytes with the same token after a timeout, a crash or a restart. A
-- ReplicatedMergeTree (cluster) remembers the tokens of its last blocks by default (replicated_deduplication_window);
-- a plain MergeTree only with non_replicated_deduplication_window. The rollup tables need it too: with
-- deduplicate_blocks_in_dependent_materialized_views=1 (set on each insert) a view's block inherits the token, and
-- a target table without a window would count a deduplicated retry twice. Each insert of the collector is one
-- block per partition it touches (at most retention + 2), so 1,000 blocks cover every retry with room to spare.
ALTER TABLE {{table:http_requests}} {{on_cluster}} MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE {{table:tcp_connections}} {{on_cluster}} MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE {{table:http_requests_1m}} {{on_cluster}} MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE {{table:http_routes_1m}} {{on_cluster}} MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE {{table:http_requests_1h}} {{on_cluster}} MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE {{table:http_routes_1h}} {{on_cluster}} MODIFY SETTING non_replicated_deduplication_window = 1000;

-- Dead letters: rows ClickHouse refused for good and entries outside the accepted start_time window. The rows
-- themselves stay in files on the collector that wrote them (GATESCOPE_DATA_DIR/dead-letters, replayed with
-- `gatescope dead-letters replay`); this table says which exist, for the API and every process that cannot see
-- that disk. One row per file and state; the newest state of a file wins (in a cluster a file's rows all go to
-- one shard).
CREATE TABLE IF NOT EXISTS {{table:ingest_dead_letters}} {{on_cluster}}
(
    collector      LowCardinality(String),
    id             String,
    table_name     LowCardinality(String),
    reason         LowCardinality(String),
    error_code     Int32,
    error_name     LowCardinality(String),
    error_message  String,
    entries        UInt64,
    created_at     DateTime64(3, 'UTC'),
    state          LowCardinality(String),
    updated_at     DateTime64(3, 'UTC')
)
ENGINE = {{engine:ReplacingMergeTree(updated_at)}}
ORDER BY (collector, id);

{{distributed:ingest_dead_letters:cityHash64(collector, id)}};
