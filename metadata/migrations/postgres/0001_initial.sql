-- Floe metadata schema, version 1 (PostgreSQL). Documented in docs/schema.md.
-- Applied once by the store at start-up under sqlx's advisory lock; never edit an applied
-- migration, add a new numbered file instead (the checksum of applied files is verified).

-- One row: the cluster id, minted by the first process that starts on this database.
CREATE TABLE cluster (
    singleton  BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    cluster_id TEXT NOT NULL
);

-- Topics, live and deleted. Deleted rows stay (their index rows and objects are still
-- referenced until the compactor removes them), so a name is unique among live topics only.
CREATE TABLE topics (
    topic_id      UUID PRIMARY KEY,
    name          TEXT NOT NULL,
    configs       TEXT NOT NULL DEFAULT '{}',  -- JSON object of explicitly set overrides
    created_at_ms BIGINT NOT NULL,
    deleted_at_ms BIGINT                       -- NULL while live
);
CREATE UNIQUE INDEX topics_live_name ON topics (name) WHERE deleted_at_ms IS NULL;

CREATE TABLE partitions (
    topic_id         UUID NOT NULL REFERENCES topics (topic_id),
    partition        INT NOT NULL CHECK (partition >= 0),
    high_watermark   BIGINT NOT NULL DEFAULT 0 CHECK (high_watermark >= 0),
    log_start_offset BIGINT NOT NULL DEFAULT 0 CHECK (log_start_offset >= 0),
    leader_epoch     INT NOT NULL DEFAULT 0,
    PRIMARY KEY (topic_id, partition),
    CHECK (log_start_offset <= high_watermark)
);

-- Every object the metadata references: WAL objects (agents) and segments (compactor).
CREATE TABLE objects (
    object_key      TEXT PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('wal', 'segment')),
    size_bytes      BIGINT NOT NULL CHECK (size_bytes >= 0),
    state           TEXT NOT NULL DEFAULT 'live' CHECK (state IN ('live', 'replaced', 'deleting')),
    created_at_ms   BIGINT NOT NULL,
    replaced_at_ms  BIGINT,                     -- set when state leaves 'live' (grace period)
    commit_outcomes TEXT                        -- WAL only: JSON per-chunk outcomes, for idempotent retries
);
CREATE INDEX objects_not_live ON objects (state, replaced_at_ms) WHERE state <> 'live';

-- The offset index: which object and byte range hold base_offset ..= last_offset.
-- No foreign keys: this is the sequencer's hot insert path.
CREATE TABLE offset_index (
    topic_id           UUID NOT NULL,
    partition          INT NOT NULL,
    base_offset        BIGINT NOT NULL,
    last_offset        BIGINT NOT NULL,
    kind               TEXT NOT NULL DEFAULT 'data' CHECK (kind IN ('data', 'control')),
    object_key         TEXT,                    -- NULL for synthesized control markers
    byte_offset        BIGINT NOT NULL DEFAULT 0,
    byte_len           BIGINT NOT NULL DEFAULT 0,
    batch_count        INT NOT NULL DEFAULT 1,
    first_timestamp_ms BIGINT NOT NULL,
    max_timestamp_ms   BIGINT NOT NULL,
    producer_id        BIGINT,                  -- control rows: the marker's producer
    producer_epoch     SMALLINT,
    control_type       TEXT CHECK (control_type IN ('commit', 'abort')),
    PRIMARY KEY (topic_id, partition, base_offset),
    CHECK (last_offset >= base_offset),
    CHECK ((kind = 'data') = (object_key IS NOT NULL))
);
CREATE INDEX offset_index_object ON offset_index (object_key);

-- Idempotent and transactional producers. Not used by version 1 code.
CREATE TABLE producers (
    producer_id      BIGSERIAL PRIMARY KEY,
    producer_epoch   SMALLINT NOT NULL DEFAULT 0,
    transactional_id TEXT UNIQUE,
    created_at_ms    BIGINT NOT NULL,
    last_used_ms     BIGINT NOT NULL
);

-- Per (partition, producer): what deduplication needs. recent_batches is a JSON array of the
-- last five batches [first_sequence, last_sequence, base_offset, last_offset].
CREATE TABLE producer_partitions (
    topic_id          UUID NOT NULL,
    partition         INT NOT NULL,
    producer_id       BIGINT NOT NULL,
    producer_epoch    SMALLINT NOT NULL,
    last_sequence     INT NOT NULL,
    last_offset       BIGINT NOT NULL,
    last_timestamp_ms BIGINT NOT NULL,
    recent_batches    TEXT NOT NULL DEFAULT '[]',
    updated_at_ms     BIGINT NOT NULL,
    PRIMARY KEY (topic_id, partition, producer_id)
);

CREATE TABLE transactions (
    transactional_id TEXT PRIMARY KEY,
    producer_id      BIGINT NOT NULL,
    producer_epoch   SMALLINT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('empty', 'ongoing', 'prepare_commit',
                         'prepare_abort', 'complete_commit', 'complete_abort', 'dead')),
    timeout_ms       INT NOT NULL,
    started_at_ms    BIGINT,
    updated_at_ms    BIGINT NOT NULL
);

-- Partitions in the ongoing transaction; first_offset (once data is committed) bounds the
-- partition's last stable offset.
CREATE TABLE transaction_partitions (
    transactional_id TEXT NOT NULL REFERENCES transactions (transactional_id) ON DELETE CASCADE,
    topic_id         UUID NOT NULL,
    partition        INT NOT NULL,
    first_offset     BIGINT,
    PRIMARY KEY (transactional_id, topic_id, partition)
);
CREATE INDEX transaction_partitions_tp ON transaction_partitions (topic_id, partition);

-- Offsets sent with TxnOffsetCommit, applied to group_offsets when the transaction commits.
CREATE TABLE transaction_offsets (
    transactional_id TEXT NOT NULL REFERENCES transactions (transactional_id) ON DELETE CASCADE,
    group_id         TEXT NOT NULL,
    topic_id         UUID NOT NULL,
    partition        INT NOT NULL,
    committed_offset BIGINT NOT NULL,
    leader_epoch     INT,
    metadata         TEXT,
    PRIMARY KEY (transactional_id, group_id, topic_id, partition)
);

-- Offset ranges of aborted transactions, for Fetch's aborted_transactions list.
CREATE TABLE aborted_transactions (
    topic_id     UUID NOT NULL,
    partition    INT NOT NULL,
    producer_id  BIGINT NOT NULL,
    first_offset BIGINT NOT NULL,
    last_offset  BIGINT NOT NULL,
    PRIMARY KEY (topic_id, partition, first_offset, producer_id),
    CHECK (last_offset >= first_offset)
);
CREATE INDEX aborted_transactions_last ON aborted_transactions (topic_id, partition, last_offset);

-- Consumer groups, classic protocol and KIP-848 ('consumer').
CREATE TABLE consumer_groups (
    group_id         TEXT PRIMARY KEY,
    group_type       TEXT NOT NULL CHECK (group_type IN ('classic', 'consumer')),
    protocol_type    TEXT,
    protocol_name    TEXT,
    state            TEXT NOT NULL,
    generation_id    INT NOT NULL DEFAULT 0,   -- classic generation / KIP-848 group epoch
    leader_member_id TEXT,
    assignment_epoch INT NOT NULL DEFAULT 0,
    created_at_ms    BIGINT NOT NULL,
    updated_at_ms    BIGINT NOT NULL
);

CREATE TABLE group_members (
    group_id             TEXT NOT NULL REFERENCES consumer_groups (group_id) ON DELETE CASCADE,
    member_id            TEXT NOT NULL,
    group_instance_id    TEXT,
    client_id            TEXT NOT NULL,
    client_host          TEXT NOT NULL,
    rack_id              TEXT,
    session_timeout_ms   INT NOT NULL,
    rebalance_timeout_ms INT NOT NULL,
    member_epoch         INT NOT NULL DEFAULT 0,
    protocols            BYTEA,                -- classic: JoinGroup protocols (name, metadata)
    assignment           BYTEA,                -- classic: SyncGroup assignment bytes
    subscription         TEXT,                 -- KIP-848: JSON subscribed topic names / regex
    assigned_partitions  TEXT,                 -- KIP-848: JSON {topic_id: [partitions]}
    last_heartbeat_ms    BIGINT NOT NULL,
    PRIMARY KEY (group_id, member_id)
);

-- Committed offsets, keyed by topic id so a re-created topic starts with none.
CREATE TABLE group_offsets (
    group_id            TEXT NOT NULL,
    topic_id            UUID NOT NULL,
    partition           INT NOT NULL,
    committed_offset    BIGINT NOT NULL,
    leader_epoch        INT,
    metadata            TEXT,
    commit_timestamp_ms BIGINT NOT NULL,
    expire_timestamp_ms BIGINT,
    PRIMARY KEY (group_id, topic_id, partition)
);
