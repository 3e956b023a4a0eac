-- Alerting (@gatescope/alerts, the evaluator in services/alerts, the API's /api/v1/alerts*).
--
-- Definitions (rules, receivers) and the evaluator's state are small tables written as new versions of a row:
-- readers take the newest row per key (`ORDER BY updated_at DESC LIMIT 1 BY key`), a deletion is a row with
-- deleted = 1. ReplacingMergeTree folds old versions away in the background.
-- alert_receiver_secrets holds receiver URLs and signing secrets apart from everything else: the reader and
-- ad-hoc SQL users are refused it (REVOKE in users.ts; the embedded engine's SQL guard refuses the table), and the
-- API never returns it.
-- History and deliveries are append-only logs with a TTL.
-- alert_lease is the evaluator's lease (lock.ts, the same protocol as schema_lock): one evaluator at a time.

CREATE TABLE IF NOT EXISTS {{table:alert_rules}} {{on_cluster}}
(
    name        String,
    origin      LowCardinality(String),
    definition  String,
    deleted     UInt8,
    updated_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {{engine:ReplacingMergeTree(updated_at)}}
ORDER BY name;

{{distributed:alert_rules:cityHash64(name)}};

CREATE TABLE IF NOT EXISTS {{table:alert_receivers}} {{on_cluster}}
(
    name        String,
    origin      LowCardinality(String),
    definition  String,
    deleted     UInt8,
    updated_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {{engine:ReplacingMergeTree(updated_at)}}
ORDER BY name;

{{distributed:alert_receivers:cityHash64(name)}};

CREATE TABLE IF NOT EXISTS {{table:alert_receiver_secrets}} {{on_cluster}}
(
    name        String,
    url         String,
    secret      String,
    deleted     UInt8,
    updated_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {{engine:ReplacingMergeTree(updated_at)}}
ORDER BY name;

{{distributed:alert_receiver_secrets:cityHash64(name)}};

CREATE TABLE IF NOT EXISTS {{table:alert_state}} {{on_cluster}}
(
    rule          String,
    fingerprint   String,
    labels        Map(String, String),
    annotations   Map(String, String),
    state         LowCardinality(String),
    value         Nullable(Float64),
    requests      UInt64,
    active_at     Nullable(DateTime64(3, 'UTC')),
    fired_at      Nullable(DateTime64(3, 'UTC')),
    resolved_at   Nullable(DateTime64(3, 'UTC')),
    evaluated_at  DateTime64(3, 'UTC'),
    updated_at    DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {{engine:ReplacingMergeTree(updated_at)}}
ORDER BY (rule, fingerprint);

{{distributed:alert_state:cityHash64(rule)}};

CREATE TABLE IF NOT EXISTS {{table:alert_groups}} {{on_cluster}}
(
    receiver      String,
    group_key     String,
    labels        Map(String, String),
    created_at    DateTime64(3, 'UTC'),
    last_sent_at  Nullable(DateTime64(3, 'UTC')),
    sent_firing   Array(String),
    deleted       UInt8,
    updated_at    DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {{engine:ReplacingMergeTree(updated_at)}}
ORDER BY (receiver, group_key);

{{distributed:alert_groups:cityHash64(receiver, group_key)}};

CREATE TABLE IF NOT EXISTS {{table:alert_history}} {{on_cluster}}
(
    at           DateTime64(3, 'UTC'),
    rule         String,
    fingerprint  String,
    labels       Map(String, String),
    from_state   LowCardinality(String),
    to_state     LowCardinality(String),
    value        Nullable(Float64),
    requests     UInt64
)
ENGINE = {{engine:MergeTree}}
PARTITION BY toYYYYMM(at)
ORDER BY (at, rule, fingerprint)
TTL toDateTime(at) + INTERVAL 400 DAY;

{{distributed:alert_history:cityHash64(rule)}};

CREATE TABLE IF NOT EXISTS {{table:alert_deliveries}} {{on_cluster}}
(
    at               DateTime64(3, 'UTC'),
    notification_id  String,
    receiver         String,
    group_key        String,
    status           LowCardinality(String),
    alerts           UInt32,
    attempt          UInt16,
    outcome          LowCardinality(String),
    http_status      UInt16,
    latency_ms       Float64,
    error            String
)
ENGINE = {{engine:MergeTree}}
PARTITION BY toYYYYMM(at)
ORDER BY (at, notification_id, attempt)
TTL toDateTime(at) + INTERVAL 90 DAY;

{{distributed:alert_deliveries:cityHash64(notification_id)}};

CREATE TABLE IF NOT EXISTS {{table:alert_lease}} {{on_cluster}}
(
    epoch       UInt64,
    owner       String,
    kind        LowCardinality(String),
    expires_at  DateTime64(3, 'UTC'),
    written_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {{engine:MergeTree}}
ORDER BY (epoch, written_at)
TTL toDateTime(written_at) + INTERVAL 7 DAY
SETTINGS non_replicated_deduplication_window = 10000, replicated_deduplication_window = 10000;

{{distributed:alert_lease:epoch}};
