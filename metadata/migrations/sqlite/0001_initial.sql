-- Floe metadata schema, version 1 (SQLite). Documented in docs/schema.md.
-- Applied once by the store at start-up (one writer connection); never edit an applied
-- migration, add a new numbered file instead (the checksum of applied files is verified).

-- One row: the cluster id, minted by the first process that starts on this database.
CREATE TABLE cluster (
    singleton  INTEGER PRIMARY KEY DEFAULT 1 CHECK (singleton = 1),
    cluster_id TEXT NOT NULL
) STRICT;

-- Topics, live and deleted. Deleted rows stay (their index rows and objects are still
-- referenced until the compactor removes them), so a name is unique among live topics only.
CREATE TABLE topics (
    topic_id      BLOB PRIMARY KEY,
    name          TEXT NOT NULL,
    configs       TEXT NOT NULL DEFAULT '{}',  -- JSON object of explicitly set overrides
    created_at_ms INTEGER NOT NULL,
    deleted_at_ms INTEGER                       -- NULL while live
) STRICT;
CREATE UNIQUE INDEX topics_live_name ON topics (name) WHERE deleted_at_ms IS NULL;

CREATE TABLE partitions (
    topic_id         BLOB NOT NULL REFERENCES topics (topic_id),
    partition        INTEGER NOT NULL CHECK (partition >= 0),
    high_watermark   INTEGER NOT NULL DEFAULT 0 CHECK (high_watermark >= 0),
    log_start_offset INTEGER NOT NULL DEFAULT 0 CHECK (log_start_offset >= 0),
    leader_epoch     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (topic_id, partition),
    CHECK (log_start_offset <= high_watermark)
) STRICT;

-- Every object the metadata references: WAL objects (agents) and segments (compactor).
CREATE TABLE objects (
    object_key      TEXT PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('wal', 'segment')),
    size_bytes      INTEGER NOT NULL CHECK (size_bytes >= 0),
    state           TEXT NOT NULL DEFAULT 'live' CHECK (state IN ('live', 'replaced', 'deleting')),
    created_at_ms   INTEGER NOT NULL,
    replaced_at_ms  INTEGER,                     -- set when state leaves 'live' (grace period)
    commit_outcomes TEXT                        -- WAL only: JSON per-chunk outcomes, for idempotent retries
) STRICT;
CREATE INDEX objects_not_live ON objects (state, replaced_at_ms) WHERE state <> 'live';

-- The offset index: which object and byte range hold base_offset ..= last_offset.
-- No foreign keys: this is the sequencer's hot insert path.
CREATE TABLE offset_index (
    topic_id           BLOB NOT NULL,
    partition          INTEGER NOT NULL,
    base_offset        INTEGER NOT NULL,
    last_offset        INTEGER NOT NULL,
    kind               TEXT NOT NULL DEFAULT 'data' CHECK (kind IN ('data', 'control')),
    object_key         TEXT,                    -- NULL for synthesized control markers
    byte_offset        INTEGER NOT NULL DEFAULT 0,
    byte_len           INTEGER NOT NULL DEFAULT 0,
    batch_count        INTEGER NOT NULL DEFAULT 1,
    first_timestamp_ms INTEGER NOT NULL,
    max_timestamp_ms   INTEGER NOT NULL,
    producer_id        INTEGER,                  -- control rows: the marker's producer
    producer_epoch     INTEGER,
    control_type       TEXT CHECK (control_type IN ('commit', 'abort')),
    PRIMARY KEY (topic_id, partition, base_offset),
    CHECK (last_offset >= base_offset),
    CHECK ((kind = 'data') = (object_key IS NOT NULL))
) STRICT;
CREATE INDEX offset_index_object ON offset_index (object_key);

-- Idempotent and transactional producers. Not used by version 1 code.
CREATE TABLE producers (
    producer_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    producer_epoch   INTEGER NOT NULL DEFAULT 0,
    transactional_id TEXT UNIQUE,
    created_at_ms    INTEGER NOT NULL,
    last_used_ms     INTEGER NOT NULL
) STRICT;

-- Per (partition, producer): what deduplication needs. recent_batches is a JSON array of the
-- last five batches [first_sequence, last_sequence, base_offset, last_offset].
CREATE TABLE producer_partitions (
    topic_id          BLOB NOT NULL,
    partition         INTEGER NOT NULL,
    producer_id       INTEGER NOT NULL,
    producer_epoch    INTEGER NOT NULL,
    last_sequence     INTEGER NOT NULL,
    last_offset       INTEGER NOT NULL,
    last_timestamp_ms INTEGER NOT NULL,
    recent_batches    TEXT NOT NULL DEFAULT '[]',
    updated_at_ms     INTEGER NOT NULL,
    PRIMARY KEY (topic_id, partition, producer_id)
) STRICT;

CREATE TABLE transactions (
    transactional_id TEXT PRIMARY KEY,
    producer_id      INTEGER NOT NULL,
    producer_epoch   INTEGER NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('empty', 'ongoing', 'prepare_commit',
                         'prepare_abort', 'complete_commit', 'complete_abort', 'dead')),
    timeout_ms       INTEGER NOT NULL,
    started_at_ms    INTEGER,
    updated_at_ms    INTEGER NOT NULL
) STRICT;

-- Partitions in the ongoing transaction; first_offset (once data is committed) bounds the
-- partition's last stable offset.
CREATE TABLE transaction_partitions (
    transactional_id TEXT NOT NULL REFERENCES transactions (transactional_id) ON DELETE CASCADE,
    topic_id         BLOB NOT NULL,
    partition        INTEGER NOT NULL,
    first_offset     INTEGER,
    PRIMARY KEY (transactional_id, topic_id, partition)
) STRICT;
CREATE INDEX transaction_partitions_tp ON transaction_partitions (topic_id, partition);

-- Offsets sent with TxnOffsetCommit, applied to group_offsets when the transaction commits.
CREATE TABLE transaction_offsets (
    transactional_id TEXT NOT NULL REFERENCES transactions (transactional_id) ON DELETE CASCADE,
    group_id         TEXT NOT NULL,
    topic_id         BLOB NOT NULL,
    partition        INTEGER NOT NULL,
    committed_offset INTEGER NOT NULL,
    leader_epoch     INTEGER,
    metadata         TEXT,
    PRIMARY KEY (transactional_id, group_id, topic_id, partition)
) STRICT;

-- Offset ranges of aborted transactions, for Fetch's aborted_transactions list.
CREATE TABLE aborted_transactions (
    topic_id     BLOB NOT NULL,
    partition    INTEGER NOT NULL,
    producer_id  INTEGER NOT NULL,
    first_offset INTEGER NOT NULL,
    last_offset  INTEGER NOT NULL,
    PRIMARY KEY (topic_id, partition, first_offset, producer_id),
    CHECK (last_offset >= first_offset)
) STRICT;
CREATE INDEX aborted_transactions_last ON aborted_transactions (topic_id, partition, last_offset);

-- Consumer groups, classic protocol and KIP-848 ('consumer').
CREATE TABLE consumer_groups (
    group_id         TEXT PRIMARY KEY,
    group_type       TEXT NOT NULL CHECK (group_type IN ('classic', 'consumer')),
    protocol_type    TEXT,
    protocol_name    TEXT,
    state            TEXT NOT NULL,
    generation_id    INTEGER NOT NULL DEFAULT 0,   -- classic generation / KIP-848 group epoch
    leader_member_id TEXT,
    assignment_epoch INTEGER NOT NULL DEFAULT 0,
    created_at_ms    INTEGER NOT NULL,
    updated_at_ms    INTEGER NOT NULL
) STRICT;

CREATE TABLE group_members (
    group_id             TEXT NOT NULL REFERENCES consumer_groups (group_id) ON DELETE CASCADE,
    member_id            TEXT NOT NULL,
    group_instance_id    TEXT,
    client_id            TEXT NOT NULL,
    client_host          TEXT NOT NULL,
    rack_id              TEXT,
    session_timeout_ms   INTEGER NOT NULL,
    rebalance_timeout_ms INTEGER NOT NULL,
    member_epoch         INTEGER NOT NULL DEFAULT 0,
    protocols            BLOB,                -- classic: JoinGroup protocols (name, metadata)
    assignment           BLOB,                -- classic: SyncGroup assignment bytes
    subscription         TEXT,                 -- KIP-848: JSON subscribed topic names / regex
    assigned_partitions  TEXT,                 -- KIP-848: JSON {topic_id: [partitions]}
    last_heartbeat_ms    INTEGER NOT NULL,
    PRIMARY KEY (group_id, member_id)
) STRICT;

-- Committed offsets, keyed by topic id so a re-created topic starts with none.
CREATE TABLE group_offsets (
    group_id            TEXT NOT NULL,
    topic_id            BLOB NOT NULL,
    partition           INTEGER NOT NULL,
    committed_offset    INTEGER NOT NULL,
    leader_epoch        INTEGER,
    metadata            TEXT,
    commit_timestamp_ms INTEGER NOT NULL,
    expire_timestamp_ms INTEGER,
    PRIMARY KEY (group_id, topic_id, partition)
) STRICT;
